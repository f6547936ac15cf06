using System.Runtime.ExceptionServices;

namespace KvFusion.Engine.Compute.Cpu;

/// <summary>
/// A fork/join pool of dedicated threads for the CPU kernels. A parallel region is a function pointer, a state
/// pointer and a task count, so running one allocates nothing; idle workers spin briefly (decode issues dozens of
/// regions per token, microseconds apart) and then sleep. The calling thread is worker 0 and takes tasks too.
/// Pools are process-wide, one per thread count, shared by reference count (<see cref="Acquire"/>, and
/// <see cref="Dispose"/> to let go), so several backends in one process do not each start a set of spinning threads.
/// Regions of one pool run one at a time; a task that throws does not stop the others, and the caller gets the
/// exception once every task of the region has returned.
/// </summary>
internal sealed unsafe class CpuWorkerPool : IDisposable
{
    private const int SpinIterations = 20_000;

    // A ticket index no region reaches: the ticket of a finished region is set to it before the next region's
    // parameters are written.
    private const long ClosedIndex = int.MaxValue;

    private static readonly Lock SharedGate = new();
    private static readonly Dictionary<int, CpuWorkerPool> SharedPools = [];
    private static int s_liveWorkerThreads;

    // The pool whose region this thread is running tasks of: workers for their whole life, a caller during Run.
    // A Run on that same pool from here would wait for a region that waits for it.
    [ThreadStatic]
    private static CpuWorkerPool? t_running;

    private readonly Thread[] _threads;
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Lock _runGate = new();
    private readonly Lock _errorGate = new();

    // Published by Run before the ticket; read by workers after they read the ticket.
    private delegate*<void*, int, int, void> _function;
    private void* _state;
    private int _taskCount;

    // High 32 bits: generation; low 32 bits: next task index. Claiming a task is a CAS on the whole word, so a
    // worker that wakes late can never take a task of a newer region with an older function.
    private long _ticket;
    private int _completed;
    private int _sleepers;
    private volatile bool _stopping;
    private List<ExceptionDispatchInfo>? _errors;

    // Guarded by SharedGate.
    private int _references;

    private CpuWorkerPool(int threadCount)
    {
        ThreadCount = threadCount;
        _threads = new Thread[threadCount - 1];
        for (var i = 0; i < _threads.Length; i++)
        {
            var index = i + 1;
            _threads[i] = new Thread(() => WorkerLoop(index))
            {
                IsBackground = true,
                Name = $"kvfusion-cpu-{index}",
                Priority = ThreadPriority.AboveNormal,
            };
            _threads[i].Start();
        }
    }

    /// <summary>Threads that run tasks, the caller included.</summary>
    public int ThreadCount { get; }

    /// <summary>Dedicated worker threads of this pool (the caller is not one).</summary>
    internal int WorkerThreadCount => _threads.Length;

    /// <summary>Backends holding this pool.</summary>
    internal int References
    {
        get
        {
            lock (SharedGate)
            {
                return _references;
            }
        }
    }

    /// <summary>Workers that have stopped spinning and are about to sleep or asleep.</summary>
    internal int SleepingWorkers => Volatile.Read(ref _sleepers);

    /// <summary>Whether the pool's threads have been stopped (its last holder released it).</summary>
    internal bool IsStopped => _stopping;

    /// <summary>Worker threads alive in the process, over all pools.</summary>
    internal static int LiveWorkerThreads => Volatile.Read(ref s_liveWorkerThreads);

    /// <summary>The process-wide pool of <paramref name="threadCount"/> threads, started on first use; pair with <see cref="Dispose"/>.</summary>
    public static CpuWorkerPool Acquire(int threadCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
        lock (SharedGate)
        {
            if (!SharedPools.TryGetValue(threadCount, out var pool))
            {
                pool = new CpuWorkerPool(threadCount);
                SharedPools[threadCount] = pool;
            }

            pool._references++;
            return pool;
        }
    }

    /// <summary>Drops one hold on the pool (one <see cref="Acquire"/>); the last one stops its threads.</summary>
    public void Dispose()
    {
        lock (SharedGate)
        {
            if (_references == 0)
            {
                throw new InvalidOperationException("The worker pool was released more often than acquired.");
            }

            if (--_references > 0)
            {
                return;
            }

            SharedPools.Remove(ThreadCount);
        }

        Stop();
    }

    /// <summary>
    /// Runs function(state, task, worker) for task in [0, taskCount) and returns when all are done. If tasks threw,
    /// rethrows after every task has returned (so no worker still uses the caller's state): the exception itself
    /// when one did, an <see cref="AggregateException"/> when several did.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called from a task of a pool (this one would wait for itself; two pools could wait for each other).</exception>
    public void Run(int taskCount, delegate*<void*, int, int, void> function, void* state)
    {
        if (taskCount <= 0)
        {
            return;
        }

        // Any pool, not only this one: pools share no gate, so a task of A running B while a task of B runs A
        // would wait for each other forever.
        if (t_running is { } outer)
        {
            throw new InvalidOperationException(ReferenceEquals(outer, this)
                ? "A task of the CPU worker pool called Run on the same pool; nested parallel regions are not supported."
                : "A task of a CPU worker pool called Run on another pool; nested parallel regions are not supported.");
        }

        ObjectDisposedException.ThrowIf(_stopping, this);
        t_running = this;
        try
        {
            if (taskCount == 1)
            {
                function(state, 0, 0);
            }
            else if (ThreadCount == 1)
            {
                RunInline(taskCount, function, state);
            }
            else
            {
                RunParallel(taskCount, function, state);
            }
        }
        finally
        {
            t_running = null;
        }
    }

    private static void RunInline(int taskCount, delegate*<void*, int, int, void> function, void* state)
    {
        // Same semantics as a parallel region: every task runs, the errors come after.
        List<ExceptionDispatchInfo>? errors = null;
        for (var t = 0; t < taskCount; t++)
        {
            try
            {
                function(state, t, 0);
            }
            catch (Exception e)
            {
                (errors ??= []).Add(ExceptionDispatchInfo.Capture(e));
            }
        }

        ThrowIfAny(errors);
    }

    private void RunParallel(int taskCount, delegate*<void*, int, int, void> function, void* state)
    {
        List<ExceptionDispatchInfo>? errors;
        lock (_runGate)
        {
            // Close the previous region's ticket before its parameters change: a worker that read that ticket late
            // would otherwise see the new task count, claim an index past the old one with a CAS that still
            // succeeds, and run the old function on the previous caller's state.
            var previous = Volatile.Read(ref _ticket) >> 32;
            Interlocked.Exchange(ref _ticket, (previous << 32) | ClosedIndex);
            _function = function;
            _state = state;
            _taskCount = taskCount;
            Volatile.Write(ref _completed, 0);
            var generation = previous + 1;

            // A full fence between publishing the ticket and reading the sleeper count, matching the worker's
            // Interlocked increment of the count before its last look at the ticket (Dekker): otherwise the store
            // can pass the load, a worker can go to sleep unseen, and the region runs on fewer threads.
            Interlocked.Exchange(ref _ticket, generation << 32);
            var sleepers = Volatile.Read(ref _sleepers);
            if (sleepers > 0)
            {
                _wake.Release(sleepers);
            }

            Execute(generation, 0);
            var spin = default(SpinWait);
            while (Volatile.Read(ref _completed) < taskCount)
            {
                spin.SpinOnce(-1);
            }

            errors = _errors;
            _errors = null;
        }

        ThrowIfAny(errors);
    }

    private static void ThrowIfAny(List<ExceptionDispatchInfo>? errors)
    {
        if (errors is null)
        {
            return;
        }

        if (errors.Count == 1)
        {
            errors[0].Throw();
        }

        var inner = new Exception[errors.Count];
        for (var i = 0; i < inner.Length; i++)
        {
            inner[i] = errors[i].SourceException;
        }

        throw new AggregateException("Several tasks of a CPU parallel region failed.", inner);
    }

    private void Stop()
    {
        _stopping = true;
        if (_threads.Length > 0)
        {
            _wake.Release(_threads.Length);
        }

        foreach (var t in _threads)
        {
            t.Join();
        }

        _wake.Dispose();
    }

    private void Execute(long generation, int worker)
    {
        while (true)
        {
            var ticket = Volatile.Read(ref _ticket);
            if (ticket >> 32 != generation)
            {
                return;
            }

            var function = _function;
            var state = _state;
            var index = (int)(ticket & 0xFFFF_FFFF);
            if (index >= _taskCount)
            {
                return;
            }

            if (Interlocked.CompareExchange(ref _ticket, ticket + 1, ticket) != ticket)
            {
                continue;
            }

            // A task's exception goes to the caller of Run: on a worker thread it would end the process, on the
            // caller it would leave the region while workers still use its state.
            try
            {
                function(state, index, worker);
            }
            catch (Exception e)
            {
                RecordError(e);
            }

            Interlocked.Increment(ref _completed);
        }
    }

    private void RecordError(Exception e)
    {
        var info = ExceptionDispatchInfo.Capture(e);
        lock (_errorGate)
        {
            (_errors ??= []).Add(info);
        }
    }

    private void WorkerLoop(int worker)
    {
        t_running = this;
        Interlocked.Increment(ref s_liveWorkerThreads);
        try
        {
            long seen = 0;
            while (!_stopping)
            {
                var generation = Volatile.Read(ref _ticket) >> 32;
                if (generation != seen)
                {
                    seen = generation;
                    Execute(generation, worker);
                    continue;
                }

                var spun = 0;
                while (spun < SpinIterations && Volatile.Read(ref _ticket) >> 32 == seen && !_stopping)
                {
                    Thread.SpinWait(8);
                    spun++;
                }

                if (Volatile.Read(ref _ticket) >> 32 != seen || _stopping)
                {
                    continue;
                }

                // The Interlocked increment is a full fence before the last look at the ticket (see RunParallel).
                Interlocked.Increment(ref _sleepers);
                if (Volatile.Read(ref _ticket) >> 32 == seen && !_stopping)
                {
                    _wake.Wait();
                }

                Interlocked.Decrement(ref _sleepers);
            }
        }
        finally
        {
            Interlocked.Decrement(ref s_liveWorkerThreads);
        }
    }
}
