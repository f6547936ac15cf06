namespace KvFusion.Engine.Compute.Cpu;

/// <summary>
/// A fork/join pool of dedicated threads for the CPU kernels. A parallel region is a function pointer, a state
/// pointer and a task count, so running one allocates nothing; idle workers spin briefly (decode issues dozens of
/// regions per token, microseconds apart) and then sleep. The calling thread is worker 0 and takes tasks too.
/// </summary>
internal sealed unsafe class CpuWorkerPool : IDisposable
{
    private const int SpinIterations = 20_000;

    private readonly Thread[] _threads;
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Lock _runGate = new();

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

    public CpuWorkerPool(int threadCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
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

    /// <summary>Runs function(state, task, worker) for task in [0, taskCount) and returns when all are done.</summary>
    public void Run(int taskCount, delegate*<void*, int, int, void> function, void* state)
    {
        if (taskCount <= 0)
        {
            return;
        }

        if (taskCount == 1 || ThreadCount == 1)
        {
            for (var t = 0; t < taskCount; t++)
            {
                function(state, t, 0);
            }

            return;
        }

        lock (_runGate)
        {
            _function = function;
            _state = state;
            _taskCount = taskCount;
            Volatile.Write(ref _completed, 0);
            var generation = (Volatile.Read(ref _ticket) >> 32) + 1;
            Volatile.Write(ref _ticket, generation << 32);
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
        }
    }

    public void Dispose()
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

            function(state, index, worker);
            Interlocked.Increment(ref _completed);
        }
    }

    private void WorkerLoop(int worker)
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

            Interlocked.Increment(ref _sleepers);
            if (Volatile.Read(ref _ticket) >> 32 == seen && !_stopping)
            {
                _wake.Wait();
            }

            Interlocked.Decrement(ref _sleepers);
        }
    }
}
