using System.Runtime.InteropServices;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Codecs.CacheGen;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tests.Container;
using Microsoft.Extensions.Logging;

namespace KvFusion.Cache.Tests.Storage;

/// <summary>
/// DESIGN.md "Container": a bad blob is a typed error, counted as a miss, removed from the tier and logged; it never
/// reaches the model. Each damage is done to a real container in a real blob store.
/// </summary>
public sealed class ContainerKvStoreTests
{
    private static readonly KvContainerExpectation Expected = new(ContainerTestData.Model, ContainerTestData.Tokenizer, 3, 2, 8);

    public static TheoryData<string> Stores => ["memory", "directory"];

    public static TheoryData<string, string> Damages()
    {
        var data = new TheoryData<string, string>();
        foreach (var store in new[] { "memory", "directory" })
        {
            foreach (var damage in new[] { "flip a payload byte", "flip a header byte", "flip the last byte", "truncate", "truncate to the magic", "empty", "append a byte" })
            {
                data.Add(store, damage);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Entries_round_trip_bit_for_bit_through_raw_containers(string kind)
    {
        using var temp = new TempDirectory();
        var (store, blobs, _) = Create(kind, temp);
        var entry = ContainerTestData.Entry();

        await store.PutAsync(entry);
        Assert.True(await store.ContainsAsync(entry.Key));
        Assert.True(await blobs.ContainsAsync(entry.Key));
        var back = await store.GetAsync(entry.Key);

        Assert.NotNull(back);
        Assert.Equal(entry.Key, back.Key);
        Assert.Equal(entry.Tokens, back.Tokens);
        Assert.True(Bits(entry.Keys).SequenceEqual(Bits(back.Keys)));
        Assert.True(Bits(entry.Values).SequenceEqual(Bits(back.Values)));
        Assert.Equal(0, store.CorruptBlobsDropped);
        Assert.Equal(1, store.EntriesWritten);
        Assert.Equal(entry.ByteSize, store.Fp16BytesWritten);
        Assert.True(store.BytesWritten > entry.ByteSize);
        Assert.Null(await store.GetAsync(ContainerTestData.Entry(seed: 2).Key));
    }

    [Theory]
    [MemberData(nameof(Damages))]
    public async Task A_damaged_blob_is_a_logged_miss_that_is_counted_and_removed(string kind, string damage)
    {
        using var temp = new TempDirectory();
        var (store, blobs, log) = Create(kind, temp);
        var entry = ContainerTestData.Entry();
        await store.PutAsync(entry);
        var blob = (await blobs.GetAsync(entry.Key))!.Value.ToArray();
        var header = KvContainerReader.Inspect(blob).HeaderBytes;
        byte[] bad = damage switch
        {
            "flip a payload byte" => Flip(blob, (int)header + ((blob.Length - (int)header) / 2)),
            "flip a header byte" => Flip(blob, (int)header / 2),
            "flip the last byte" => Flip(blob, blob.Length - 1),
            "truncate" => blob[..(blob.Length - 3)],
            "truncate to the magic" => blob[..4],
            "empty" => [],
            "append a byte" => [.. blob, 0],
            _ => throw new ArgumentOutOfRangeException(nameof(damage)),
        };
        await blobs.PutAsync(entry.Key, bad);

        Assert.Null(await store.GetAsync(entry.Key));

        Assert.Equal(1, store.CorruptBlobsDropped);
        Assert.False(await blobs.ContainsAsync(entry.Key));
        Assert.False(await store.ContainsAsync(entry.Key));
        var warning = Assert.Single(log.Entries);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains(entry.Key.ToString(), warning.Message, StringComparison.Ordinal);
        Assert.IsType<KvContainerException>(warning.Error);
        // A miss, not a failure: the entry can be stored again and read.
        await store.PutAsync(entry);
        Assert.NotNull(await store.GetAsync(entry.Key));
        Assert.Equal(1, store.CorruptBlobsDropped);
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task A_valid_container_under_another_key_is_dropped(string kind)
    {
        using var temp = new TempDirectory();
        var (store, blobs, log) = Create(kind, temp);
        var a = ContainerTestData.Entry(seed: 1);
        var b = ContainerTestData.Entry(seed: 2);
        await store.PutAsync(a);
        await blobs.PutAsync(b.Key, (await blobs.GetAsync(a.Key))!.Value);

        Assert.Null(await store.GetAsync(b.Key));
        Assert.Equal(1, store.CorruptBlobsDropped);
        Assert.False(await blobs.ContainsAsync(b.Key));
        Assert.NotNull(await store.GetAsync(a.Key));
        Assert.Contains(a.Key.ToString(), Assert.Single(log.Entries).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_container_of_another_model_or_shape_is_dropped()
    {
        var blobs = new InMemoryBlobStore();
        var writer = new ContainerKvStore(blobs, Expected);
        var entry = ContainerTestData.Entry();
        await writer.PutAsync(entry);

        var otherModel = new ContainerKvStore(blobs, Expected with { ModelFingerprint = new string('0', 64) });
        Assert.Null(await otherModel.GetAsync(entry.Key));
        Assert.Equal(1, otherModel.CorruptBlobsDropped);

        await writer.PutAsync(entry);
        var otherShape = new ContainerKvStore(blobs, Expected with { HeadDim = 16 });
        Assert.Null(await otherShape.GetAsync(entry.Key));
        Assert.Equal(1, otherShape.CorruptBlobsDropped);
    }

    [Fact]
    public async Task With_a_profile_cachegen_blobs_carry_no_statistics_and_a_reader_without_it_keeps_them()
    {
        var profile = CacheGenProfile.Build([ContainerTestData.Entry(tokens: 16, seed: 5), ContainerTestData.Entry(tokens: 16, seed: 6)], 2);
        var profiles = new KvCodecProfiles();
        profiles.Add(profile);
        var blobs = new InMemoryBlobStore();
        var entry = ContainerTestData.Entry(tokens: 16, seed: 7);
        var withProfile = new ContainerKvStore(blobs, Expected, new ContainerKvStoreOptions { Codec = KvCodecSpec.CacheGen(2), Profiles = profiles });
        var inlineBlobs = new InMemoryBlobStore();
        await new ContainerKvStore(inlineBlobs, Expected, new ContainerKvStoreOptions { Codec = KvCodecSpec.CacheGen(2) }).PutAsync(entry);

        await withProfile.PutAsync(entry);

        var blob = (await blobs.GetAsync(entry.Key))!.Value;
        Assert.True(blob.Length < (await inlineBlobs.GetAsync(entry.Key))!.Value.Length);
        Assert.NotNull(await withProfile.GetAsync(entry.Key));

        // A reader without the profile cannot decode the blob, but the blob is valid: it is a miss that keeps it.
        var log = new ListLogger();
        var without = new ContainerKvStore(blobs, Expected, new ContainerKvStoreOptions(), log);
        Assert.Null(await without.GetAsync(entry.Key));
        Assert.Equal(1, without.UndecodableBlobsKept);
        Assert.Equal(0, without.CorruptBlobsDropped);
        Assert.True(await blobs.ContainsAsync(entry.Key));
        var warning = Assert.Single(log.Entries);
        Assert.Equal(KvContainerError.MissingProfile, Assert.IsType<KvContainerException>(warning.Error).Error);
        Assert.Contains(profile.Id, warning.Message, StringComparison.Ordinal);
        Assert.NotNull(await withProfile.GetAsync(entry.Key));
    }

    [Fact]
    public async Task Putting_an_entry_of_another_model_or_shape_is_refused()
    {
        var store = new ContainerKvStore(new InMemoryBlobStore(), Expected with { LayerCount = 4 });

        await Assert.ThrowsAsync<ArgumentException>(async () => await store.PutAsync(ContainerTestData.Entry()));
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new ContainerKvStore(new InMemoryBlobStore(), Expected, new ContainerKvStoreOptions { MaxDegreeOfParallelism = 0 }));
        Assert.Throws<ArgumentException>(() => new ContainerKvStore(new InMemoryBlobStore(), Expected, new ContainerKvStoreOptions { Codec = new KvCodecSpec(KvCodecKind.CacheGen, 9) }));
        Assert.Throws<ArgumentException>(() => new ContainerKvStoreOptions { Limits = null! }.Validate());
        Assert.Throws<ArgumentException>(() => new ContainerKvStoreOptions { Profiles = null! }.Validate());
    }

    [Fact]
    public async Task The_configured_limits_apply_to_every_blob_read()
    {
        var blobs = new InMemoryBlobStore();
        var entry = ContainerTestData.Entry(tokens: 7);
        await new ContainerKvStore(blobs, Expected).PutAsync(entry);
        var strict = new ContainerKvStore(blobs, Expected, new ContainerKvStoreOptions { Limits = KvContainerLimits.Default with { MaxTokens = 4 } });

        Assert.Null(await strict.GetAsync(entry.Key));
        Assert.Equal(1, strict.CorruptBlobsDropped);
    }

    private static ReadOnlySpan<ushort> Bits(ReadOnlySpan<Half> values) => MemoryMarshal.Cast<Half, ushort>(values);

    private static byte[] Flip(byte[] blob, int at)
    {
        var copy = (byte[])blob.Clone();
        copy[at] ^= 0x10;
        return copy;
    }

    private static (ContainerKvStore Store, IKvBlobStore Blobs, ListLogger Log) Create(string kind, TempDirectory temp)
    {
        IKvBlobStore blobs = kind == "memory" ? new InMemoryBlobStore() : new DirectoryBlobStore(temp.Combine("store"));
        var log = new ListLogger();
        return (new ContainerKvStore(blobs, Expected, new ContainerKvStoreOptions { Codec = KvCodecSpec.Raw }, log), blobs, log);
    }

    private sealed class ListLogger : ILogger<ContainerKvStore>
    {
        public List<(LogLevel Level, string Message, Exception? Error)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((logLevel, formatter(state, exception), exception));
    }
}
