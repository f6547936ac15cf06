using System.Diagnostics;

namespace KvFusion.Benchmarks;

/// <summary>
/// Checks whether N busy threads really run in parallel. cpu.md: for stretches of about 20 minutes the second core
/// is taken by someone else, two threads each run at half speed and 2-thread numbers collapse; a 2-thread measurement
/// taken then says nothing about the engines, so it is flagged.
/// </summary>
internal static class ParallelismProbe
{
    /// <summary>Below this the threads are mostly time-sliced on fewer cores than asked for.</summary>
    public const double WarningThreshold = 0.8;

    // About 60-100 ms of work per thread on a ~3 GHz core: long enough to dwarf thread start-up, short enough to
    // repeat before every 2-thread round.
    private const long Iterations = 100_000_000;
    private const int Repeats = 3;

    /// <summary>
    /// Time of a fixed arithmetic loop on one thread divided by the time of <paramref name="threads"/> threads each
    /// running the same loop at once: 1.0 = fully parallel, 1/threads = all on one core. Median of a few repeats.
    /// </summary>
    public static double Efficiency(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 2);
        var samples = new double[Repeats];
        for (var r = 0; r < Repeats; r++)
        {
            var single = TimeConcurrent(1);
            var multi = TimeConcurrent(threads);
            samples[r] = single / multi;
        }

        return Statistics.Median(samples);
    }

    private static double TimeConcurrent(int threads)
    {
        // Dedicated threads (not the thread pool, which may hold back threads) released together by a barrier; the
        // clock runs from the release until the last one finishes.
        using var barrier = new Barrier(threads + 1);
        var sink = new long[threads];
        var workers = new Thread[threads];
        for (var i = 0; i < threads; i++)
        {
            var index = i;
            workers[i] = new Thread(() =>
            {
                barrier.SignalAndWait();
                sink[index] = Spin(Iterations, (ulong)index + 1);
            })
            { IsBackground = true, Name = $"parallel-probe-{i}" };
            workers[i].Start();
        }

        barrier.SignalAndWait();
        var start = Stopwatch.GetTimestamp();
        foreach (var w in workers)
        {
            w.Join();
        }

        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        GC.KeepAlive(sink);
        return seconds;
    }

    // A dependent integer chain: pure core work, no memory traffic, so only the core's availability sets its speed.
    private static long Spin(long iterations, ulong seed)
    {
        var x = seed;
        for (long i = 0; i < iterations; i++)
        {
            x = (x * 6364136223846793005UL) + 1442695040888963407UL;
        }

        return (long)x;
    }
}
