using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Transformer;

namespace KvFusion.TestSupport;

/// <summary>
/// One CPU backend and the shared models loaded on it lazily, once per test collection (a test assembly declares
/// the collection with <c>ICollectionFixture&lt;CpuModelFixture&gt;</c>).
/// </summary>
public sealed class CpuModelFixture : IDisposable
{
    private readonly Dictionary<string, TransformerModel> _models = [];
    private readonly Lock _gate = new();

    public CpuBackend Backend { get; } = new();

    /// <summary>tiny-pydocs, the real trained model.</summary>
    public TransformerModel Tiny => Model("tiny-pydocs");

    /// <summary>A model of ../shared/models by folder name ("tiny-pydocs", "zoo/mistral").</summary>
    public TransformerModel Model(string name)
    {
        lock (_gate)
        {
            if (!_models.TryGetValue(name, out var m))
            {
                m = TransformerModel.Load(SharedModels.Path(name), Backend);
                _models[name] = m;
            }

            return m;
        }
    }

    public void Dispose()
    {
        foreach (var m in _models.Values)
        {
            m.Dispose();
        }

        Backend.Dispose();
    }
}
