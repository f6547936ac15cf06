using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Tests.Support;

/// <summary>The tiny-pydocs model on a CPU backend, shared by the fusion tests.</summary>
public sealed class TinyModelFixture : IDisposable
{
    private readonly Lazy<TransformerModel> _model;

    public TinyModelFixture()
    {
        _model = new Lazy<TransformerModel>(() => TransformerModel.Load(ModelPath("tiny-pydocs"), Backend));
    }

    public CpuBackend Backend { get; } = new();

    public TransformerModel Model => _model.Value;

    public static string ModelPath(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "models", name);
            if (File.Exists(Path.Combine(candidate, "config.json")))
            {
                return candidate;
            }
        }

        throw new SkipException($"shared/models/{name} is not present beside the checkout");
    }

    public void Dispose()
    {
        if (_model.IsValueCreated)
        {
            _model.Value.Dispose();
        }

        Backend.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class TinyModelGroup : ICollectionFixture<TinyModelFixture>
{
    public const string Name = "tiny model";
}
