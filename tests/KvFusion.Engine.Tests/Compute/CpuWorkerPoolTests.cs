using System.Runtime.InteropServices;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Tests.Compute;

/// <summary>
/// The worker pool's failure modes: exceptions on a worker or on the caller, nested regions, workers that slept,
/// and pools shared between backends. Tasks rendezvous through a pinned int array so each test knows which thread
/// ran what; every wait is bounded so a broken pool fails the test instead of hanging it.
/// </summary>
public sealed unsafe class CpuWorkerPoolTests
{
    private const int WorkerStarted = 0;
    private const int WorkerFinished = 1;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static CpuWorkerPool? s_nestedPool;

    [Fact]
    public void An_exception_on_a_worker_thread_reaches_the_caller_of_Run()
    {
        using var pool = CpuWorkerPool.Acquire(2);
        var flags = GC.AllocateArray<int>(4, pinned: true);
        var state = Address(flags);
        var e = Assert.Throws<InvalidDataException>(() => pool.Run(2, &WorkerThrows, state));
        Assert.Equal("worker", e.Message);

        // The pool still works afterwards.
        RunsOnBothThreads(pool);
    }

    [Fact]
    public void An_exception_on_the_caller_is_rethrown_only_after_the_workers_have_finished_the_region()
    {
        using var pool = CpuWorkerPool.Acquire(2);
        var flags = GC.AllocateArray<int>(4, pinned: true);
        var state = Address(flags);
        var e = Assert.Throws<InvalidDataException>(() => pool.Run(2, &CallerThrowsWhileWorkerRuns, state));
        Assert.Equal("caller", e.Message);
        Assert.Equal(1, Volatile.Read(ref flags[WorkerFinished]));

        RunsOnBothThreads(pool);
    }

    [Fact]
    public void Exceptions_of_several_tasks_arrive_together_as_an_AggregateException()
    {
        using var pool = CpuWorkerPool.Acquire(2);
        var flags = GC.AllocateArray<int>(4, pinned: true);
        var state = Address(flags);
        var e = Assert.Throws<AggregateException>(() => pool.Run(2, &BothThrow, state));
        Assert.Equal(2, e.InnerExceptions.Count);
        Assert.All(e.InnerExceptions, x => Assert.IsType<InvalidDataException>(x));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(8)]
    public void Run_called_from_a_task_of_the_same_pool_throws_instead_of_waiting_for_itself(int tasks)
    {
        using var pool = CpuWorkerPool.Acquire(2);
        s_nestedPool = pool;
        Exception? error = null;
        var run = new Thread(() =>
        {
            try
            {
                pool.Run(tasks, &CallsRunAgain, null);
            }
            catch (Exception e)
            {
                error = e;
            }
        })
        {
            IsBackground = true,
        };
        run.Start();
        Assert.True(run.Join(Patience), "A nested Run did not return.");
        Assert.NotNull(error);
        IReadOnlyList<Exception> inner = error is AggregateException a ? a.InnerExceptions : [error];
        Assert.All(inner, x => Assert.IsType<InvalidOperationException>(x));
    }

    [Fact]
    public void A_region_after_the_workers_went_to_sleep_runs_on_every_thread()
    {
        using var pool = CpuWorkerPool.Acquire(2);
        for (var i = 0; i < 5; i++)
        {
            // The region starts only once every worker has given up spinning, so it must wake them.
            var deadline = Environment.TickCount64 + (long)Patience.TotalMilliseconds;
            while (pool.SleepingWorkers < pool.WorkerThreadCount)
            {
                Assert.True(Environment.TickCount64 < deadline, "The workers never went to sleep.");
                Thread.Sleep(1);
            }

            RunsOnBothThreads(pool);
        }
    }

    [Fact]
    public void A_one_thread_pool_runs_every_task_and_then_throws_like_a_parallel_region()
    {
        using var pool = CpuWorkerPool.Acquire(1);
        var flags = GC.AllocateArray<int>(4, pinned: true);
        var e = Assert.Throws<AggregateException>(() => pool.Run(4, &EvenTasksThrow, Address(flags)));
        Assert.Equal(2, e.InnerExceptions.Count);
        Assert.Equal([1, 1, 1, 1], flags);
    }

    [Fact]
    public void Run_called_from_a_task_of_another_pool_throws_instead_of_risking_a_deadlock()
    {
        using var outer = CpuWorkerPool.Acquire(2);
        using var inner = CpuWorkerPool.Acquire(3);
        s_nestedPool = inner;
        var e = Assert.Throws<AggregateException>(() => outer.Run(2, &CallsRunAgain, null));
        Assert.All(e.InnerExceptions, x => Assert.Contains("another pool", x.Message, StringComparison.Ordinal));
    }

    [Fact]
    public void Backends_with_the_same_thread_count_share_one_pool_that_stops_with_the_last_of_them()
    {
        // A thread count no other test uses, so the pool is this test's alone.
        const int threads = 5;
        CpuWorkerPool pool;
        using (var a = new CpuBackend(threads))
        {
            using var b = new CpuBackend(threads);
            pool = a.Pool;
            Assert.Same(pool, b.Pool);
            Assert.Equal(2, pool.References);
            Assert.Equal(threads - 1, pool.WorkerThreadCount);
            var shared = ParallelMatMul(b);
            a.Dispose();
            Assert.False(pool.IsStopped);
            Assert.Equal(1, pool.References);
            Assert.Equal(shared, ParallelMatMul(b));
        }

        Assert.True(pool.IsStopped);
        using var c = new CpuBackend(threads);
        Assert.NotSame(pool, c.Pool);
        Assert.False(c.Pool.IsStopped);
    }

    /// <summary>A MatMul large enough to run as a parallel region.</summary>
    private static float[] ParallelMatMul(CpuBackend backend)
    {
        const int m = 64, n = 96, k = 80;
        var random = new Random(5);
        var x = Enumerable.Range(0, m * k).Select(_ => (float)random.NextDouble()).ToArray();
        var w = Enumerable.Range(0, n * k).Select(_ => (float)random.NextDouble()).ToArray();
        using var xt = backend.Allocate(TensorDType.F32, m, k);
        using var wt = backend.Allocate(TensorDType.F32, n, k);
        using var yt = backend.Allocate(TensorDType.F32, m, n);
        backend.Upload(x, xt, 0);
        backend.Upload(w, wt, 0);
        backend.MatMul(xt, m, wt, null, yt, accumulate: false);
        var y = new float[m * n];
        backend.Download(yt, 0, m, y);
        return y;
    }

    /// <summary>Two tasks that each wait for the other's thread: done only if the caller and the worker both take one.</summary>
    private static void RunsOnBothThreads(CpuWorkerPool pool)
    {
        var flags = GC.AllocateArray<int>(4, pinned: true);
        pool.Run(2, &Rendezvous, Address(flags));

        Assert.Equal(1, flags[2]);
        Assert.Equal(1, flags[3]);
    }

    /// <summary>The address of a pinned array's first element (pinned arrays do not move).</summary>
    private static int* Address(int[] pinned) => (int*)Marshal.UnsafeAddrOfPinnedArrayElement(pinned, 0);

    private static bool WaitFor(int* flag)
    {
        var deadline = Environment.TickCount64 + (long)Patience.TotalMilliseconds;
        while (Volatile.Read(ref *flag) == 0)
        {
            if (Environment.TickCount64 > deadline)
            {
                return false;
            }

            Thread.Yield();
        }

        return true;
    }

    private static void Rendezvous(void* state, int task, int worker)
    {
        var flags = (int*)state;
        var mine = worker == 0 ? 2 : 3;
        Volatile.Write(ref flags[mine], 1);
        if (!WaitFor(&flags[mine == 2 ? 3 : 2]))
        {
            throw new TimeoutException("The other thread never took a task of the region.");
        }
    }

    private static void WorkerThrows(void* state, int task, int worker)
    {
        var flags = (int*)state;
        if (worker == 0)
        {
            WaitFor(&flags[WorkerStarted]);
            return;
        }

        Volatile.Write(ref flags[WorkerStarted], 1);
        throw new InvalidDataException("worker");
    }

    private static void CallerThrowsWhileWorkerRuns(void* state, int task, int worker)
    {
        var flags = (int*)state;
        if (worker == 0)
        {
            WaitFor(&flags[WorkerStarted]);
            throw new InvalidDataException("caller");
        }

        Volatile.Write(ref flags[WorkerStarted], 1);
        Thread.Sleep(300);
        Volatile.Write(ref flags[WorkerFinished], 1);
    }

    private static void BothThrow(void* state, int task, int worker)
    {
        var flags = (int*)state;
        Volatile.Write(ref flags[worker == 0 ? 2 : 3], 1);
        WaitFor(&flags[worker == 0 ? 3 : 2]);
        throw new InvalidDataException(worker == 0 ? "caller" : "worker");
    }

    private static void CallsRunAgain(void* state, int task, int worker)
    {
        s_nestedPool!.Run(2, &Nothing, null);
    }

    private static void EvenTasksThrow(void* state, int task, int worker)
    {
        ((int*)state)[task] = 1;
        if (task % 2 == 0)
        {
            throw new InvalidDataException($"task {task}");
        }
    }

    private static void Nothing(void* state, int task, int worker)
    {
    }
}
