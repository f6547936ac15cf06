using System.Runtime.InteropServices;
using KvFusion.Cuda.Backend;
using KvFusion.Cuda.Tests.Support;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cuda.Tests.Backend;

/// <summary>
/// The backend concurrency contract on the GPU: sessions on several threads sharing one CUDA backend (one stream,
/// one set of scratch and staging buffers) get bit for bit the results they get one at a time; and MatMul rejects
/// a bias it cannot read before it queues anything. Skipped without a GPU.
/// </summary>
public sealed class CudaConcurrentSessionsTests : IClassFixture<CudaBackendFixture>
{
    private readonly CudaBackendFixture _fixture;

    public CudaConcurrentSessionsTests(CudaBackendFixture fixture) => _fixture = fixture;

    private CudaBackend Backend => _fixture.BackendOrSkip;

    [SkippableTheory]
    [InlineData("zoo/mistral", 4, 12, 4)]
    [InlineData("tiny-pydocs", 4, 24, 3)]
    public void Sessions_run_concurrently_on_one_backend_equal_the_same_sessions_run_one_at_a_time(string name, int sessions, int decodeSteps, int rounds)
    {
        var backend = Backend;
        using var model = TransformerModel.Load(SharedModelPath(name), backend);
        var expected = new float[sessions][];
        for (var s = 0; s < sessions; s++)
        {
            expected[s] = RunSession(model, s, decodeSteps);
        }

        var failures = new List<string>();
        for (var round = 0; round < rounds; round++)
        {
            var actual = new float[sessions][];
            var errors = new Exception?[sessions];
            using var start = new Barrier(sessions);
            var threads = Enumerable.Range(0, sessions).Select(index => new Thread(() =>
            {
                try
                {
                    start.SignalAndWait();
                    actual[index] = RunSession(model, index, decodeSteps);
                }
                catch (Exception e)
                {
                    errors[index] = e;
                }
            })).ToArray();
            foreach (var t in threads)
            {
                t.Start();
            }

            foreach (var t in threads)
            {
                t.Join();
            }

            for (var s = 0; s < sessions; s++)
            {
                Assert.Null(errors[s]);
                if (!MemoryMarshal.Cast<float, int>(expected[s]).SequenceEqual(MemoryMarshal.Cast<float, int>(actual[s])))
                {
                    failures.Add($"round {round} session {s}");
                }
            }
        }

        Assert.True(failures.Count == 0, $"Concurrent sessions differ from the same sessions run alone: {string.Join("; ", failures)}");
    }

    [SkippableFact]
    public void MatMul_rejects_a_bias_whose_length_is_not_the_weights_output_features()
    {
        var backend = Backend;
        using var x = backend.Allocate(TensorDType.F32, 2, 8);
        using var w = backend.Allocate(TensorDType.F32, 5, 8);
        using var y = backend.Allocate(TensorDType.F32, 2, 5);
        using var shortBias = backend.Allocate(TensorDType.F32, 1, 4);
        using var longBias = backend.Allocate(TensorDType.F32, 1, 6);
        Assert.Equal("bias", Assert.Throws<ArgumentException>(() => backend.MatMul(x, 2, w, shortBias, y, accumulate: false)).ParamName);
        Assert.Equal("bias", Assert.Throws<ArgumentException>(() => backend.MatMul(x, 2, w, longBias, y, accumulate: false)).ParamName);
        using var wide = backend.Allocate(TensorDType.F32, 5, 9);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => backend.MatMul(x, 2, wide, null, y, accumulate: false)).ParamName);
        using var ints = backend.Allocate(TensorDType.I32, 5, 8);
        Assert.Throws<ArgumentException>(() => backend.MatMul(x, 2, ints, null, y, accumulate: false));
        backend.Synchronize();
    }

    /// <summary>A prompt prefilled in chunks, then decode steps of fixed tokens; every logit computed, in order.</summary>
    private static float[] RunSession(TransformerModel model, int index, int decodeSteps)
    {
        var vocab = model.Config.VocabSize;
        var random = new Random(1000 + index);
        var prompt = Enumerable.Range(0, 40 + (23 * index)).Select(_ => random.Next(vocab)).ToArray();
        var logits = new float[(decodeSteps + 1) * vocab];
        using var session = model.CreateSession(prompt.Length + decodeSteps);
        session.Prefill(prompt, logits.AsSpan(0, vocab), chunk: 16 + (9 * index));
        for (var step = 0; step < decodeSteps; step++)
        {
            session.Decode(random.Next(vocab), logits.AsSpan((step + 1) * vocab, vocab));
        }

        return logits;
    }

    private static string SharedModelPath(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "models", name);
            if (File.Exists(Path.Combine(candidate, "config.json")))
            {
                return candidate;
            }
        }

        throw new SkipException("../shared/models is not present beside the checkout");
    }
}
