using System.Diagnostics;
using KvFusion.Engine.Generation;
using LLama;
using LLama.Common;
using LLama.Native;

namespace KvFusion.Benchmarks;

/// <summary>
/// llama.cpp through LLamaSharp 0.30.0 with a fixed thread count, driven at the batch level (no executor, no
/// sampler chain) so it does the same work as our engine: one batch for the whole prompt with logits for the last
/// token only (as llama-bench's pp), argmax, then single-token decodes.
/// </summary>
internal sealed class LlamaCppEngine : IBenchEngine
{
    private readonly LLamaContext _context;
    private readonly LLamaBatch _batch = new();

    private LlamaCppEngine(LLamaContext context) => _context = context;

    /// <summary>Creates a context on shared weights. <paramref name="batchSize"/> must cover the longest prompt.</summary>
    public static LlamaCppEngine Create(LLamaWeights weights, string ggufPath, int threads, int contextSize, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var parameters = CreateParameters(ggufPath, threads, contextSize, batchSize);
        return new LlamaCppEngine(weights.CreateContext(parameters));
    }

    /// <summary>
    /// The settings of cpu.md's anchor where LLamaSharp exposes them: CPU only, F16 KV cache (llama.cpp's default),
    /// no flash attention, memory-mapped weights; batch and micro-batch cover the prompt so it is one decode call.
    /// </summary>
    public static ModelParams CreateParameters(string ggufPath, int threads, int contextSize, int batchSize) => new(ggufPath)
    {
        ContextSize = (uint)contextSize,
        BatchSize = (uint)batchSize,
        UBatchSize = (uint)batchSize,
        Threads = threads,
        BatchThreads = threads,
        GpuLayerCount = 0,
        LoadMode = LLamaLoadMode.MemoryMap,
        FlashAttention = false,
    };

    public Measurement Measure(int[] prompt, int decodeSteps, CancellationToken cancellationToken) =>
        Run(prompt, decodeSteps, null, cancellationToken);

    public int[] Greedy(int[] prompt, int decodeSteps, CancellationToken cancellationToken)
    {
        var tokens = new int[decodeSteps + 1];
        Run(prompt, decodeSteps, tokens, cancellationToken);
        return tokens;
    }

    private Measurement Run(int[] prompt, int decodeSteps, int[]? tokens, CancellationToken cancellationToken)
    {
        var handle = _context.NativeHandle;

        // A fresh sequence each run, like our engine's session reset. Outside the timed region.
        handle.MemoryClear(true);
        _batch.Clear();
        for (var i = 0; i < prompt.Length; i++)
        {
            _batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        }

        var start = Stopwatch.GetTimestamp();
        Check(_context.Decode(_batch));
        handle.Synchronize();
        var prefill = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var next = TokenSampler.ArgMax(handle.GetLogitsIth(prompt.Length - 1));
        var ttft = Stopwatch.GetElapsedTime(start).TotalSeconds;
        tokens?[0] = next;

        var decodeStart = Stopwatch.GetTimestamp();
        for (var step = 0; step < decodeSteps; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            _batch.Clear();
            _batch.Add(next, prompt.Length + step, LLamaSeqId.Zero, true);
            Check(_context.Decode(_batch));
            next = TokenSampler.ArgMax(handle.GetLogitsIth(0));
            tokens?[step + 1] = next;
        }

        var decode = Stopwatch.GetElapsedTime(decodeStart).TotalSeconds;
        return new Measurement(prefill, ttft, decode);
    }

    public void Dispose() => _context.Dispose();

    private static void Check(DecodeResult result)
    {
        if (result != DecodeResult.Ok)
        {
            throw new InvalidOperationException($"llama_decode failed: {result}.");
        }
    }
}
