#pragma warning disable MEVD9001 // The provider services are the abstractions' own helpers for reading record definitions.
using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using Microsoft.Extensions.VectorData.ProviderServices;

namespace KvFusion.SemanticKernel.VectorStores;

/// <summary>Reads a record type's attributes or a definition into a model this store can hold.</summary>
internal sealed class ChunkCollectionModelBuilder()
    : CollectionModelBuilder(new CollectionModelBuildingOptions { SupportsMultipleVectors = true, RequiresAtLeastOneVector = false })
{
    internal const string SupportedKeyTypes = "string, Guid, int, long";
    internal const string SupportedVectorTypes = "ReadOnlyMemory<float>, float[], Embedding<float>";

    internal static readonly string[] SupportedDistanceFunctions =
    [
        DistanceFunction.CosineSimilarity, DistanceFunction.CosineDistance, DistanceFunction.DotProductSimilarity,
        DistanceFunction.NegativeDotProductSimilarity, DistanceFunction.EuclideanDistance, DistanceFunction.EuclideanSquaredDistance,
    ];

    internal static bool IsNativeVectorType(Type type)
        => type == typeof(ReadOnlyMemory<float>) || type == typeof(ReadOnlyMemory<float>?) || type == typeof(float[])
           || type == typeof(Embedding<float>);

    internal static bool IsSupportedKeyType(Type type)
        => type == typeof(string) || type == typeof(Guid) || type == typeof(int) || type == typeof(long);

    protected override bool IsDataPropertyTypeValid(Type type, [NotNullWhen(false)] out string? supportedTypes)
    {
        // Data values are stored as JSON, so any type System.Text.Json round-trips is fine.
        supportedTypes = "any type System.Text.Json can serialize";
        return true;
    }

    protected override bool IsVectorPropertyTypeValid(Type type, [NotNullWhen(false)] out string? supportedTypes)
    {
        supportedTypes = SupportedVectorTypes;
        return IsNativeVectorType(type);
    }

    protected override bool SupportsKeyAutoGeneration(Type keyPropertyType) => keyPropertyType == typeof(Guid);

    protected override void ValidateKeyProperty(KeyPropertyModel keyProperty)
    {
        base.ValidateKeyProperty(keyProperty);
        if (!IsSupportedKeyType(keyProperty.Type))
        {
            throw new NotSupportedException(
                $"Key property '{keyProperty.ModelName}' is of type {keyProperty.Type.Name}; ChunkVectorStore keys are {SupportedKeyTypes}.");
        }
    }

    protected override void ValidateProperty(PropertyModel propertyModel, VectorStoreCollectionDefinition? definition)
    {
        base.ValidateProperty(propertyModel, definition);
        if (propertyModel is VectorPropertyModel vector)
        {
            var function = vector.DistanceFunction ?? DistanceFunction.CosineSimilarity;
            if (!SupportedDistanceFunctions.Contains(function))
            {
                throw new NotSupportedException(
                    $"Vector property '{vector.ModelName}' uses distance function '{function}'; ChunkVectorStore supports {string.Join(", ", SupportedDistanceFunctions)}.");
            }
            if (vector.Dimensions <= 0)
            {
                throw new ArgumentException($"Vector property '{vector.ModelName}' must have a positive number of dimensions.");
            }
        }
    }
}
