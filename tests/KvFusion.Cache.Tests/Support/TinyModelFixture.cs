using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Tests.Support;

/// <summary>The tiny-pydocs model on a CPU backend, shared by the fusion tests.</summary>
public sealed class TinyModelFixture : IDisposable
{
    private readonly CpuModelFixture _models = new();

    public CpuBackend Backend => _models.Backend;

    public TransformerModel Model => _models.Tiny;

    public void Dispose() => _models.Dispose();
}

[CollectionDefinition(Name)]
public sealed class TinyModelGroup : ICollectionFixture<TinyModelFixture>
{
    public const string Name = "tiny model";
}
