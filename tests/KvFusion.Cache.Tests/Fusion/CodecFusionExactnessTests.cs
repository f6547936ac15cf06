using KvFusion.Cache.Codecs;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tests.Support;
using KvFusion.Engine.Generation;

namespace KvFusion.Cache.Tests.Fusion;

/// <summary>Issue 9's check: decoding an encoded chunk and fusing it with codec raw equals fusion without a codec, bit for bit.</summary>
[Collection(TinyModelGroup.Name)]
public sealed class CodecFusionExactnessTests(TinyModelFixture fixture)
{
    private static readonly string[] Chunks =
    [
        "The json module provides an API similar to pickle for converting in-memory Python objects to a serialized representation known as JavaScript Object Notation.",
        "A list comprehension consists of brackets containing an expression followed by a for clause, then zero or more for or if clauses.",
        "The with statement is used to wrap the execution of a block with methods defined by a context manager.",
    ];

    [SkippableTheory]
    [InlineData("reuse")]
    [InlineData("blend:0.15")]
    public async Task Fusion_through_raw_containers_equals_fusion_without_a_codec_bit_for_bit(string modeText)
    {
        var (mode, blend) = FusionModeCatalog.Resolve(FusionModeSpec.Parse(modeText));
        var request = new FusionRequest
        {
            Prefix = "You answer questions about Python.",
            Chunks = Chunks.Select(ChunkInput.FromText).ToList(),
            Query = "Explain how the json module serializes",
            Mode = mode,
            Blend = blend,
            ReserveTokens = 16,
        };
        var plain = new InMemoryKvStore();
        using var direct = new FusionEngine(fixture.Model, plain);
        var expected = await Fuse(direct, request);

        // The same precomputed entries, stored as raw containers: the difference can only be the codec's.
        var containers = ContainerKvStore.ForModel(fixture.Model, new InMemoryBlobStore(), new ContainerKvStoreOptions { Codec = KvCodecSpec.Raw });
        foreach (var key in plain.Keys)
        {
            await containers.PutAsync((await plain.GetAsync(key))!);
        }

        using var coded = new FusionEngine(fixture.Model, containers);
        var actual = await Fuse(coded, request);

        Assert.Equal(Chunks.Length, containers.EntriesWritten);
        Assert.Equal(0, containers.CorruptBlobsDropped);
        Assert.Equal(0, actual.Report.ChunksPrecomputed);
        Assert.Equal(expected.Logits.Select(BitConverter.SingleToInt32Bits), actual.Logits.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(expected.Greedy, actual.Greedy);
    }

    private static async Task<(float[] Logits, int[] Greedy, FusionReport Report)> Fuse(FusionEngine engine, FusionRequest request)
    {
        using var ctx = await engine.FuseAsync(request);
        var logits = (float[])ctx.Logits.Clone();
        var tokens = new List<int>();
        await foreach (var t in ctx.GenerateAsync(new SamplingOptions { MaxTokens = 8, StopTokens = [] }))
        {
            if (t.Id >= 0)
            {
                tokens.Add(t.Id);
            }
        }

        return (logits, tokens.ToArray(), ctx.Report);
    }
}
