using KvFusion.Cache.Codecs;

namespace KvFusion.Cache.Tiers;

/// <summary>
/// A tier under host memory and the codec its entries are stored with. With a codec, the manager re-encodes each
/// container written down to that tier that uses another codec (e.g. lossless lz4 on local disk, cachegen for a
/// shared tier reached over the network); with none, blobs are stored as they were written.
/// </summary>
/// <remarks>
/// With <paramref name="Levels"/>, each chunk written down to the tier is also stored at those codecs, each under its
/// level key (<see cref="KvStoredLevels"/>), for the loading controller to choose from by bandwidth; removing the chunk
/// removes its levels.
/// </remarks>
/// <param name="Tier">The tier.</param>
/// <param name="Codec">The tier's codec, or null to store blobs as given.</param>
/// <param name="Levels">Extra levels the tier keeps of every chunk; none when null or empty.</param>
public sealed record KvLowerTier(IKvTier Tier, KvCodecSpec? Codec = null, IReadOnlyList<KvCodecSpec>? Levels = null);
