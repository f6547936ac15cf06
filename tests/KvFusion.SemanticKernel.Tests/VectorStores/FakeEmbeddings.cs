using Microsoft.Extensions.AI;

namespace KvFusion.SemanticKernel.Tests.VectorStores;

/// <summary>
/// A deterministic three-dimensional embedding generator for store tests: a text's vector counts its letters a, b and c,
/// so expected neighbours are known without a model.
/// </summary>
public sealed class LetterCountEmbeddings : IEmbeddingGenerator<string, Embedding<float>>
{
    public int Calls { get; private set; }

    public static float[] VectorOf(string text)
        => [text.Count(c => c == 'a'), text.Count(c => c == 'b'), text.Count(c => c == 'c')];

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values,
        EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        Calls++;
        var result = new GeneratedEmbeddings<Embedding<float>>(values.Select(v => new Embedding<float>(VectorOf(v))));
        return Task.FromResult(result);
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}
