using Microsoft.Extensions.VectorData;

namespace KvFusion.SemanticKernel.Tests.VectorStores;

/// <summary>A small record with three-dimensional vectors, so expected scores can be computed by hand.</summary>
public sealed class Hotel
{
    [VectorStoreKey]
    public string Id { get; set; } = string.Empty;

    [VectorStoreData(IsIndexed = true)]
    public string City { get; set; } = string.Empty;

    [VectorStoreData(IsIndexed = true)]
    public int Rating { get; set; }

    [VectorStoreData]
    public List<string> Tags { get; set; } = [];

    [VectorStoreData]
    public string? Description { get; set; }

    [VectorStoreVector(3, DistanceFunction = DistanceFunction.CosineSimilarity)]
    public ReadOnlyMemory<float> Embedding { get; set; }
}

public sealed class EuclideanPoint
{
    [VectorStoreKey]
    public Guid Id { get; set; }

    [VectorStoreData]
    public string Label { get; set; } = string.Empty;

    [VectorStoreVector(2, DistanceFunction = DistanceFunction.EuclideanDistance)]
    public float[]? Position { get; set; }
}

public sealed class NumberedNote
{
    [VectorStoreKey]
    public long Id { get; set; }

    [VectorStoreData]
    public string Text { get; set; } = string.Empty;

    [VectorStoreVector(2, DistanceFunction = DistanceFunction.DotProductSimilarity)]
    public Microsoft.Extensions.AI.Embedding<float>? Embedding { get; set; }
}

public sealed class DecimalKeyed
{
    [VectorStoreKey]
    public decimal Id { get; set; }

    [VectorStoreVector(2)]
    public ReadOnlyMemory<float> Embedding { get; set; }
}

/// <summary>A record without attributes, described by a <see cref="VectorStoreCollectionDefinition"/>.</summary>
public sealed class PlainNote
{
    public int Number { get; set; }

    public string Body { get; set; } = string.Empty;

    public ReadOnlyMemory<float> Vector { get; set; }
}

/// <summary>A record whose vector is generated from its text by the configured embedding generator.</summary>
public sealed class GeneratedNote
{
    [VectorStoreKey]
    public string Id { get; set; } = string.Empty;

    [VectorStoreData]
    public string Body { get; set; } = string.Empty;

    [VectorStoreVector(3)]
    public string? Embedding { get; set; }
}
