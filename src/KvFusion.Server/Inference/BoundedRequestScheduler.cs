using System.Diagnostics;
using KvFusion.Server.Hosting;
using Microsoft.Extensions.Options;

namespace KvFusion.Server.Inference;

/// <summary>
/// At most <see cref="RequestQueueOptions.MaxActive"/> requests on the engine and
/// <see cref="RequestQueueOptions.Capacity"/> waiting, first come first served; a request past both is refused at once.
/// </summary>
public sealed class BoundedRequestScheduler : IRequestScheduler, IDisposable
{
    private readonly SemaphoreSlim _places;
    private readonly int _capacity;
    private readonly TimeSpan _retryAfter;
    private int _waiting;
    private int _active;

    /// <summary>Creates the queue.</summary>
    public BoundedRequestScheduler(IOptions<KvFusionServerOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var q = options.Value.Queue;
        _places = new SemaphoreSlim(q.MaxActive, q.MaxActive);
        _capacity = q.Capacity;
        _retryAfter = TimeSpan.FromSeconds(q.RetryAfterSeconds);
    }

    /// <inheritdoc />
    public int Active => Volatile.Read(ref _active);

    /// <inheritdoc />
    public int Waiting => Volatile.Read(ref _waiting);

    /// <inheritdoc />
    public async ValueTask<RequestSlot> EnterAsync(CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        if (!_places.Wait(0, CancellationToken.None))
        {
            if (Interlocked.Increment(ref _waiting) > _capacity)
            {
                Interlocked.Decrement(ref _waiting);
                throw new RequestQueueFullException(_retryAfter);
            }

            try
            {
                await _places.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
        }

        Interlocked.Increment(ref _active);
        return new RequestSlot(Release, Stopwatch.GetElapsedTime(start));
    }

    /// <inheritdoc />
    public void Dispose() => _places.Dispose();

    private void Release()
    {
        Interlocked.Decrement(ref _active);
        _places.Release();
    }
}
