using System.Buffers;
using System.IO.Pipelines;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;
using static KvFusion.Cache.Tests.Container.ContainerTestData;

namespace KvFusion.Cache.Tests.Container;

public sealed class KvContainerRoundTripTests
{
    private static readonly KvContainerReadOptions Sequential = new() { MaxDegreeOfParallelism = 1 };
    private static readonly KvContainerReadOptions Parallel4 = new() { MaxDegreeOfParallelism = 4 };

    [Fact]
    public void Raw_round_trips_bit_exactly_over_a_span()
    {
        var entry = Entry();
        var blob = KvContainerWriter.ToArray(entry, KvCodecSpec.Raw);
        AssertSame(entry, KvContainerReader.Read(blob));
        var read = KvContainerReader.Read(blob);
        Assert.Equal(entry.Tokens, read.Tokens);
        Assert.True(read.HasTokenIds);
    }

    [Fact]
    public async Task Buffer_writer_and_stream_writer_write_the_same_bytes()
    {
        var entry = Entry(layers: 5);
        var blob = KvContainerWriter.ToArray(entry, KvCodecSpec.Raw);
        var buffer = new ArrayBufferWriter<byte>(1);
        var result = KvContainerWriter.Write(buffer, entry, KvCodecSpec.Raw, new KvContainerWriteOptions { MaxDegreeOfParallelism = 1 });
        Assert.Equal(blob, buffer.WrittenSpan.ToArray());
        using var stream = new MemoryStream();
        var asyncResult = await KvContainerWriter.WriteAsync(stream, entry, KvCodecSpec.Raw, new KvContainerWriteOptions { MaxDegreeOfParallelism = 3 });
        Assert.Equal(blob, stream.ToArray());
        Assert.Equal(result with { EncodeTime = TimeSpan.Zero }, asyncResult with { EncodeTime = TimeSpan.Zero });
    }

    [Fact]
    public void Write_result_accounts_for_every_byte()
    {
        var entry = Entry(layers: 4, heads: 3, tokens: 9, headDim: 16);
        var buffer = new ArrayBufferWriter<byte>();
        var r = KvContainerWriter.Write(buffer, entry, KvCodecSpec.Raw);
        Assert.Equal(buffer.WrittenCount, r.TotalBytes);
        Assert.Equal(r.TotalBytes, r.HeaderBytes + r.PayloadBytes + r.SectionFramingBytes);
        Assert.Equal(entry.ByteSize, r.PayloadBytes);
        Assert.Equal(8 * 24, r.SectionFramingBytes);
        Assert.Equal(0, r.StatisticsBytes);
        Assert.True(r.EncodeTime >= TimeSpan.Zero);
        var inspection = KvContainerReader.Inspect(buffer.WrittenMemory);
        Assert.Equal(r.HeaderBytes, inspection.HeaderBytes);
        Assert.Equal(r.TotalBytes, inspection.TotalBytes);
    }

    [Fact]
    public async Task Raw_round_trips_over_a_stream()
    {
        var entry = Entry(layers: 6);
        var blob = KvContainerWriter.ToArray(entry, KvCodecSpec.Raw);
        using var stream = new MemoryStream(blob);
        AssertSame(entry, await KvContainerReader.ReadAsync(stream, options: Parallel4));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task Raw_round_trips_over_a_stream_that_returns_one_byte_per_read(int degree)
    {
        var entry = Entry(layers: 4, tokens: 3);
        var blob = KvContainerWriter.ToArray(entry, KvCodecSpec.Raw);
        using var stream = new TrickleStream(blob);
        AssertSame(entry, await KvContainerReader.ReadAsync(stream, options: new KvContainerReadOptions { MaxDegreeOfParallelism = degree }));
    }

    [Fact]
    public async Task Raw_round_trips_over_a_pipe_fed_in_small_pieces()
    {
        var entry = Entry(layers: 5, tokens: 11);
        var blob = KvContainerWriter.ToArray(entry, KvCodecSpec.Raw);
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 64, resumeWriterThreshold: 32, useSynchronizationContext: false));
        var writer = Task.Run(async () =>
        {
            for (var at = 0; at < blob.Length; at += 13)
            {
                await pipe.Writer.WriteAsync(blob.AsMemory(at, Math.Min(13, blob.Length - at)));
            }

            await pipe.Writer.CompleteAsync();
        });
        var read = await KvContainerReader.ReadAsync(pipe.Reader, options: Parallel4);
        await writer;
        AssertSame(entry, read);
    }

    [Fact]
    public async Task Raw_round_trips_over_a_pipe_reader_of_a_stream()
    {
        var entry = Entry();
        var blob = KvContainerWriter.ToArray(entry, KvCodecSpec.Raw);
        var reader = PipeReader.Create(new TrickleStream(blob, 5));
        AssertSame(entry, await KvContainerReader.ReadAsync(reader, options: Sequential));
        await reader.CompleteAsync();
    }

    [Fact]
    public void Token_ids_are_optional()
    {
        var entry = Entry();
        var blob = KvContainerWriter.ToArray(entry, KvCodecSpec.Raw, new KvContainerWriteOptions { IncludeTokenIds = false });
        Assert.Null(KvContainerReader.ReadHeader(blob).TokenIds);
        var read = KvContainerReader.Read(blob);
        AssertSame(entry, read);
        Assert.False(read.HasTokenIds);
        Assert.Empty(read.Tokens);
        Assert.Equal(entry.TokenCount, read.TokenCount);
        Assert.Equal(blob.Length + 4 + (4 * entry.TokenCount), KvContainerWriter.ToArray(entry, KvCodecSpec.Raw).Length);
    }

    [Fact]
    public void An_entry_read_without_token_ids_is_written_without_them()
    {
        var entry = Entry(tokenIds: false);
        var blob = KvContainerWriter.ToArray(entry, KvCodecSpec.Raw);
        Assert.Null(KvContainerReader.ReadHeader(blob).TokenIds);
        AssertSame(entry, KvContainerReader.Read(blob));
    }

    [Fact]
    public async Task Hidden_states_round_trip_after_the_kv_sections()
    {
        var entry = Entry(layers: 4);
        var hidden = Hidden(entry, 24, [1, 3]);
        var blob = KvContainerWriter.ToArray(entry, hidden, KvCodecSpec.Raw);
        var header = KvContainerReader.ReadHeader(blob);
        Assert.Equal([1, 3], header.HiddenStateLayers);
        Assert.Equal(24, header.HiddenSize);
        Assert.Equal(10, header.SectionCount);

        foreach (var contents in new[]
        {
            KvContainerReader.ReadWithHiddenStates(blob, options: Sequential),
            KvContainerReader.ReadWithHiddenStates(blob, options: Parallel4),
            await KvContainerReader.ReadWithHiddenStatesAsync(new TrickleStream(blob, 7), options: Parallel4),
            await KvContainerReader.ReadWithHiddenStatesAsync(PipeReader.Create(new MemoryStream(blob)), options: Sequential),
        })
        {
            AssertSame(entry, contents.Entry);
            Assert.NotNull(contents.HiddenStates);
            Assert.Equal(hidden.Layers, contents.HiddenStates.Layers);
            Assert.Equal(hidden.HiddenSize, contents.HiddenStates.HiddenSize);
            for (var i = 0; i < hidden.Layers.Count; i++)
            {
                Assert.True(Bits(hidden.State(i)).SequenceEqual(Bits(contents.HiddenStates.State(i))));
            }
        }

        var sections = KvContainerReader.Inspect(blob).Sections;
        Assert.Equal(KvSectionKind.HiddenStates, sections[8].Kind);
        Assert.Equal(1, sections[8].Layer);
        Assert.Equal(3, sections[9].Layer);
        Assert.Equal(2L * entry.TokenCount * 24, sections[9].PayloadBytes);
    }

    [Fact]
    public void Without_hidden_states_the_contents_have_none()
    {
        var entry = Entry();
        var contents = KvContainerReader.ReadWithHiddenStates(KvContainerWriter.ToArray(entry, KvCodecSpec.Raw));
        Assert.Null(contents.HiddenStates);
        Assert.Empty(contents.Header.HiddenStateLayers);
        Assert.Equal(0, contents.Header.HiddenSize);
    }

    [Fact]
    public void Header_describes_the_entry()
    {
        var entry = Entry(layers: 2, heads: 3, tokens: 4, headDim: 5);
        var header = KvContainerReader.ReadHeader(KvContainerWriter.ToArray(entry, KvCodecSpec.Raw));
        Assert.Equal(1, header.FormatVersion);
        Assert.Equal(entry.Key, header.Key);
        Assert.Equal(Model, header.ModelFingerprint);
        Assert.Equal(Tokenizer, header.TokenizerFingerprint);
        Assert.Equal(new KvEntryShape(2, 3, 5, 4), header.Shape);
        Assert.Equal(KvCodecSpec.Raw, header.Codec);
        Assert.Equal(0, header.CodecParameters.Length);
        Assert.Equal(entry.Tokens, header.TokenIds);
        Assert.Equal(4, header.SectionCount);
    }

    [Fact]
    public void Inspect_lists_every_section_where_it_is()
    {
        var entry = Entry(layers: 3);
        var blob = KvContainerWriter.ToArray(entry, KvCodecSpec.Raw);
        var inspection = KvContainerReader.Inspect(blob);
        Assert.Equal(6, inspection.Sections.Count);
        var at = inspection.HeaderBytes;
        for (var i = 0; i < 6; i++)
        {
            var s = inspection.Sections[i];
            Assert.Equal(i, s.Index);
            Assert.Equal(i / 2, s.Layer);
            Assert.Equal(i % 2 == 0 ? KvSectionKind.Keys : KvSectionKind.Values, s.Kind);
            Assert.Equal(at, s.Offset);
            Assert.Equal(ContainerBytes.SectionChecksum(blob, blob.AsSpan((int)s.Offset + 24, (int)s.PayloadBytes)), s.Checksum);
            at += 24 + s.PayloadBytes;
        }

        Assert.Equal(blob.Length, at);
    }

    [Fact]
    public void A_prefix_block_key_round_trips()
    {
        var e = Entry();
        var key = new CacheKey(CacheEntryKind.PrefixBlock, e.Key.Id, string.Empty);
        var entry = new CachedKv(key, e.ModelFingerprint, e.TokenizerFingerprint, [.. e.Tokens], e.LayerCount, e.KvHeads, e.HeadDim, e.Keys.ToArray(), e.Values.ToArray());
        Assert.Equal(key, KvContainerReader.Read(KvContainerWriter.ToArray(entry, KvCodecSpec.Raw)).Key);
    }

    [Fact]
    public void Matching_expectation_reads()
    {
        var entry = Entry();
        var blob = KvContainerWriter.ToArray(entry, KvCodecSpec.Raw);
        AssertSame(entry, KvContainerReader.Read(blob, new KvContainerExpectation(Model, Tokenizer, entry.LayerCount, entry.KvHeads, entry.HeadDim)));
    }

    [Fact]
    public async Task Parallel_and_sequential_decode_give_the_same_entry()
    {
        var entry = Entry(layers: 12, heads: 4, tokens: 33, headDim: 16, seed: 5);
        var hidden = Hidden(entry, 40, [0, 5, 11]);
        foreach (var codec in AvailableCodecs())
        {
            var blob = KvContainerWriter.ToArray(entry, hidden, codec, new KvContainerWriteOptions { MaxDegreeOfParallelism = 3 });
            Assert.Equal(blob, KvContainerWriter.ToArray(entry, hidden, codec, new KvContainerWriteOptions { MaxDegreeOfParallelism = 1 }));
            var sequential = KvContainerReader.ReadWithHiddenStates(blob, options: Sequential);
            var parallel = KvContainerReader.ReadWithHiddenStates(blob, options: Parallel4);
            var streamed = await KvContainerReader.ReadWithHiddenStatesAsync(new MemoryStream(blob), options: Parallel4);
            foreach (var other in new[] { parallel, streamed })
            {
                AssertSame(sequential.Entry, other.Entry);
                for (var i = 0; i < 3; i++)
                {
                    Assert.True(Bits(sequential.HiddenStates!.State(i)).SequenceEqual(Bits(other.HiddenStates!.State(i))));
                }
            }

            if (codec.IsLossless)
            {
                AssertSame(entry, sequential.Entry);
            }
        }
    }
}
