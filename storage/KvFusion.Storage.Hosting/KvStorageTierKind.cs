namespace KvFusion.Storage.Hosting;

/// <summary>A tier that can sit under host memory.</summary>
public enum KvStorageTierKind
{
    /// <summary>RocksDB on local disk.</summary>
    RocksDb,

    /// <summary>Redis or Redis Cluster.</summary>
    Redis,
}
