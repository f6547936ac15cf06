using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Transformer;

namespace KvFusion.Engine.Tests.Support;

/// <summary>One CPU backend and lazily loaded shared models for a test collection.</summary>
public sealed class SharedFixture : IDisposable
{
    private readonly Dictionary<string, TransformerModel> _models = [];
    private readonly Lock _gate = new();

    public CpuBackend Backend { get; } = new();

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

[CollectionDefinition(Name)]
public sealed class SharedModelsGroup : ICollectionFixture<SharedFixture>
{
    public const string Name = "shared models";
}
