namespace KvFusion.SemanticKernel.VectorStores;

/// <summary>
/// A record as the store holds it: the persisted payload plus its decoded key and data values (indexed as the model's
/// properties, for filters) and its vectors with their norms (indexed as the model's vector properties, for search).
/// Immutable once built, so a search can read it after leaving the lock.
/// </summary>
internal sealed class StoredRecord(string storageKey, byte[] payload, object?[] values, float[]?[] vectors, float[] norms)
{
    public string StorageKey { get; } = storageKey;

    public byte[] Payload { get; } = payload;

    public object?[] Values { get; } = values;

    public float[]?[] Vectors { get; } = vectors;

    public float[] Norms { get; } = norms;
}
