using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;

namespace KvFusion.Server.Inference;

/// <summary>
/// One tenant's view of the model: its namespace, its store and a fusion engine that stores there, sharing the one
/// compute queue with every other tenant.
/// </summary>
public sealed class TenantEngine
{
    internal TenantEngine(string tenant, KvNamespace ns, ContainerKvStore store, FusionEngine engine)
    {
        Tenant = tenant;
        Namespace = ns;
        Store = store;
        Engine = engine;
    }

    /// <summary>The tenant.</summary>
    public string Tenant { get; }

    /// <summary>Where the tenant's entries of this model live in the tiers.</summary>
    public KvNamespace Namespace { get; }

    /// <summary>The tenant's store of this model's entries.</summary>
    public ContainerKvStore Store { get; }

    /// <summary>The engine that fuses from and precomputes into <see cref="Store"/>.</summary>
    public FusionEngine Engine { get; }

    /// <summary>The tenant's blobs (containers as stored).</summary>
    public IKvBlobStore Blobs => Store.Blobs;
}
