using System.Globalization;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;

namespace KvFusion.Cache.Tiers;

/// <summary>Settings of a <see cref="KvTierManager"/>.</summary>
public sealed record KvTierManagerOptions
{
    /// <summary>The longest one operation on a lower tier may take before the tier is marked down (default 2 s).</summary>
    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Where read times are recorded (per tier, against the bytes read; a miss is a read of none) for the loading
    /// controller; null: nowhere.
    /// </summary>
    public Loading.LoadCostModel? CostModel { get; init; }

    /// <summary>How often a tier marked down is probed (default 1 s).</summary>
    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Writes queued for one lower tier at most; a put waits for room beyond that (back-pressure).</summary>
    public int WriteQueueCapacity { get; init; } = 1024;

    /// <summary>Bytes queued for one lower tier at most; a put waits for room beyond that. A blob larger than this is
    /// admitted alone, when the queue is empty.</summary>
    public long WriteQueueBytes { get; init; } = 512L << 20;

    /// <summary>
    /// Keys remembered per tier that is down, to catch it up when it is back. Beyond this the oldest are forgotten,
    /// counted and logged: that tier then lacks those entries until they are written again.
    /// </summary>
    public int MaxCatchUpEntries { get; init; } = 1_000_000;

    /// <summary>Check every blob read from a lower tier (structure and checksums) before it is promoted or returned;
    /// a blob that fails is deleted from that tier and the next tier is tried.</summary>
    public bool VerifyReads { get; init; } = true;

    /// <summary>The limits and profiles blobs are verified with (a container naming a profile absent here is passed on unverified).</summary>
    public KvContainerLimits Limits { get; init; } = KvContainerLimits.Default;

    /// <summary>Profiles for verification (see <see cref="Limits"/>).</summary>
    public KvCodecProfiles Profiles { get; init; } = KvCodecProfiles.None;

    /// <summary>Copy a hit in a lower tier into the tiers above it (memory always).</summary>
    public bool PromoteToUpperTiers { get; init; } = true;

    /// <summary>Dispose the tiers when the manager is disposed.</summary>
    public bool OwnsTiers { get; init; } = true;

    /// <summary>How long disposal waits for queued writes to reach their tiers.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        Positive(OperationTimeout, nameof(OperationTimeout));
        Positive(ProbeInterval, nameof(ProbeInterval));
        Positive(DrainTimeout, nameof(DrainTimeout));
        if (WriteQueueCapacity < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(WriteQueueCapacity)} must be at least 1; got {WriteQueueCapacity}."));
        }

        if (WriteQueueBytes < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(WriteQueueBytes)} must be at least 1; got {WriteQueueBytes}."));
        }

        if (MaxCatchUpEntries < 0)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(MaxCatchUpEntries)} must be 0 or more; got {MaxCatchUpEntries}."));
        }

        if (Limits is null)
        {
            throw new ArgumentException($"{nameof(Limits)} must be set.");
        }

        if (Profiles is null)
        {
            throw new ArgumentException($"{nameof(Profiles)} must be set (KvCodecProfiles.None for none).");
        }
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{name} must be positive; got {value}."));
        }
    }
}
