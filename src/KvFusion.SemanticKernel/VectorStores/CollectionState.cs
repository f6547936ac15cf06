namespace KvFusion.SemanticKernel.VectorStores;

/// <summary>
/// One collection's records, shared by every <see cref="ChunkVectorStoreCollection{TKey,TRecord}"/> over the same name.
/// Guarded by <see cref="Lock"/>: readers share it, writers and re-decoding hold it alone.
/// </summary>
internal sealed class CollectionState(string name) : IDisposable
{
    public string Name { get; } = name;

    public ReaderWriterLockSlim Lock { get; } = new(LockRecursionPolicy.NoRecursion);

    public bool Exists { get; set; }

    /// <summary>Records decoded for the schema <see cref="Schema"/>, by storage key.</summary>
    public Dictionary<string, StoredRecord> Records { get; } = new(StringComparer.Ordinal);

    /// <summary>Payloads loaded from disk that no collection view has decoded yet.</summary>
    public Dictionary<string, byte[]>? Undecoded { get; set; }

    /// <summary>The signature of the record model the records were decoded with; null before the first view.</summary>
    public string? Schema { get; set; }

    public void Dispose() => Lock.Dispose();
}
