using KvFusion.SemanticKernel.Embeddings;

namespace KvFusion.SemanticKernel.Tests.Embeddings;

/// <summary>One generator for the tests that share it: loading the ONNX model is the slow part.</summary>
public sealed class EmbeddingGeneratorFixture : IDisposable
{
    public KvFusionEmbeddingGenerator Generator { get; } = new();

    public void Dispose() => Generator.Dispose();
}
