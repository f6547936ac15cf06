using KvFusion.Engine.Compute.Cpu;
using KvFusion.Diagnostics.Benchmarks;
using KvFusion.Engine.Generation;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;

namespace KvFusion.Benchmarks;

/// <summary>Our engine on the CPU backend with a fixed thread count, measured through <see cref="EngineBenchmark.MeasureOnce"/>.</summary>
internal sealed class KvFusionEngine : IBenchEngine
{
    private readonly CpuBackend _backend;
    private readonly TransformerModel _model;
    private readonly InferenceSession _session;

    public KvFusionEngine(string modelDirectory, int threads, int capacity)
    {
        _backend = new CpuBackend(threads);
        try
        {
            _model = TransformerModel.Load(modelDirectory, _backend);
            _session = _model.CreateSession(capacity);
        }
        catch
        {
            _model?.Dispose();
            _backend.Dispose();
            throw;
        }
    }

    public int VocabSize => _model.Config.VocabSize;

    public ModelConfig Config => _model.Config;

    /// <summary>BLAKE3 of the weights and tokenizer: what identifies the model, unlike its folder name.</summary>
    public ModelFingerprint Fingerprint => _model.Fingerprint;

    public int ContextLength => _model.Config.MaxPositionEmbeddings;

    public Measurement Measure(int[] prompt, int decodeSteps, CancellationToken cancellationToken)
    {
        // MeasureOnce resets the session first, so every run starts from an empty cache like llama.cpp's.
        var (prefill, ttft, decode) = EngineBenchmark.MeasureOnce(_session, prompt, decodeSteps, cancellationToken);
        return new Measurement(prefill, ttft, decode);
    }

    public int[] Greedy(int[] prompt, int decodeSteps, CancellationToken cancellationToken)
    {
        var tokens = new int[decodeSteps + 1];
        var logits = new float[VocabSize];
        _session.Reset();
        _session.Prefill(prompt, logits, cancellationToken: cancellationToken);
        tokens[0] = TokenSampler.ArgMax(logits);
        for (var i = 0; i < decodeSteps; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            _session.Decode(tokens[i], logits);
            tokens[i + 1] = TokenSampler.ArgMax(logits);
        }

        return tokens;
    }

    public void Dispose()
    {
        _session.Dispose();
        _model.Dispose();
        _backend.Dispose();
    }
}
