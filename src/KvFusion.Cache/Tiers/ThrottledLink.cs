namespace KvFusion.Cache.Tiers;

/// <summary>
/// A simulated network link: transfers share one pipe of <see cref="BitsPerSecond"/> (each waits for the ones
/// before it) and every operation pays <see cref="Latency"/> on top. Rate and latency can change while it runs, as
/// in a bandwidth trace; a change applies to transfers that start after it.
/// </summary>
public sealed class ThrottledLink
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private double _bitsPerSecond;
    private TimeSpan _latency;
    private long _freeAtTicks;
    private long _bytes;
    private long _transfers;

    /// <summary>Creates a link of the given rate and latency.</summary>
    public ThrottledLink(double bitsPerSecond, TimeSpan latency, TimeProvider? timeProvider = null)
    {
        _time = timeProvider ?? TimeProvider.System;
        BitsPerSecond = bitsPerSecond;
        Latency = latency;
    }

    /// <summary>The rate the pipe carries, in bits per second (greater than zero).</summary>
    public double BitsPerSecond
    {
        get { lock (_gate) { return _bitsPerSecond; } }
        set
        {
            if (!(value > 0) || double.IsInfinity(value))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "A link's rate must be a finite number of bits per second above zero.");
            }

            lock (_gate)
            {
                _bitsPerSecond = value;
            }
        }
    }

    /// <summary>The time every operation waits on top of its transfer (round trip); zero or more.</summary>
    public TimeSpan Latency
    {
        get { lock (_gate) { return _latency; } }
        set
        {
            if (value < TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "A link's latency cannot be negative.");
            }

            lock (_gate)
            {
                _latency = value;
            }
        }
    }

    /// <summary>Bytes carried so far.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Transfers made so far (including those of no bytes).</summary>
    public long Transfers => Interlocked.Read(ref _transfers);

    /// <summary>
    /// Carries <paramref name="bytes"/> across the link: waits for the pipe, for the bytes at the link's rate, and
    /// for its latency. A cancelled transfer keeps the pipe time it reserved (the bytes were on the wire).
    /// </summary>
    public Task TransferAsync(long bytes, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        long doneTicks;
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            var start = Math.Max(now, _freeAtTicks);
            var wire = (long)Math.Ceiling(bytes * 8.0 / _bitsPerSecond * _time.TimestampFrequency);
            _freeAtTicks = start + wire;
            doneTicks = _freeAtTicks + (long)(_latency.TotalSeconds * _time.TimestampFrequency);
            Interlocked.Add(ref _bytes, bytes);
            Interlocked.Increment(ref _transfers);
            var wait = doneTicks - now;
            if (wait <= 0)
            {
                return Task.CompletedTask;
            }

            return Task.Delay(TimeSpan.FromSeconds(wait / (double)_time.TimestampFrequency), _time, cancellationToken);
        }
    }
}
