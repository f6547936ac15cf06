using System.Numerics.Tensors;
using Microsoft.Extensions.VectorData;

namespace KvFusion.SemanticKernel.VectorStores;

/// <summary>Scores a stored vector against a query with one distance function, as the abstractions define them.</summary>
internal readonly struct VectorScorer
{
    private readonly Kind _kind;

    public VectorScorer(string? distanceFunction)
    {
        _kind = (distanceFunction ?? DistanceFunction.CosineSimilarity) switch
        {
            DistanceFunction.CosineSimilarity => Kind.CosineSimilarity,
            DistanceFunction.CosineDistance => Kind.CosineDistance,
            DistanceFunction.DotProductSimilarity => Kind.DotProduct,
            DistanceFunction.NegativeDotProductSimilarity => Kind.NegativeDotProduct,
            DistanceFunction.EuclideanDistance => Kind.Euclidean,
            DistanceFunction.EuclideanSquaredDistance => Kind.EuclideanSquared,
            var other => throw new NotSupportedException($"Distance function '{other}' is not supported by ChunkVectorStore."),
        };
    }

    /// <summary>Similarities rank high first; distances rank low first.</summary>
    public bool HigherIsBetter => _kind is Kind.CosineSimilarity or Kind.DotProduct;

    /// <summary>The score; norms are precomputed so cosine costs one SIMD dot product.</summary>
    public float Score(ReadOnlySpan<float> query, float queryNorm, ReadOnlySpan<float> candidate, float candidateNorm)
    {
        switch (_kind)
        {
            case Kind.CosineSimilarity:
                return Cosine(query, queryNorm, candidate, candidateNorm);
            case Kind.CosineDistance:
                return 1f - Cosine(query, queryNorm, candidate, candidateNorm);
            case Kind.DotProduct:
                return TensorPrimitives.Dot(query, candidate);
            case Kind.NegativeDotProduct:
                return -TensorPrimitives.Dot(query, candidate);
            case Kind.Euclidean:
                return TensorPrimitives.Distance(query, candidate);
            default:
                var distance = TensorPrimitives.Distance(query, candidate);
                return distance * distance;
        }
    }

    /// <summary>The score as a rank where higher is always better, for one heap over every function.</summary>
    public float Rank(float score) => HigherIsBetter ? score : -score;

    /// <summary>Whether a score passes <see cref="VectorSearchOptions{TRecord}.ScoreThreshold"/>.</summary>
    public bool Passes(float score, double? threshold)
        => threshold is not double limit || (HigherIsBetter ? score >= limit : score <= limit);

    private static float Cosine(ReadOnlySpan<float> query, float queryNorm, ReadOnlySpan<float> candidate, float candidateNorm)
    {
        // A zero vector has no direction: it is similar to nothing.
        if (queryNorm == 0f || candidateNorm == 0f)
        {
            return 0f;
        }
        return TensorPrimitives.Dot(query, candidate) / (queryNorm * candidateNorm);
    }

    private enum Kind
    {
        CosineSimilarity,
        CosineDistance,
        DotProduct,
        NegativeDotProduct,
        Euclidean,
        EuclideanSquared,
    }
}
