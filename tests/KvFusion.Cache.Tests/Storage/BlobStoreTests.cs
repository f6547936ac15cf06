using KvFusion.Cache.Keys;
using KvFusion.Cache.Storage;

namespace KvFusion.Cache.Tests.Storage;

public sealed class BlobStoreTests
{
    private static readonly CacheKey Chunk = new(CacheEntryKind.Chunk, new string('a', 64), "sink:prefix:0123456789abcdef");
    private static readonly CacheKey Prefix = new(CacheEntryKind.PrefixBlock, new string('b', 64), "");

    public static TheoryData<string> Stores => ["memory", "directory"];

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Put_get_contains_and_remove_round_trip(string kind)
    {
        using var temp = new TempDirectory();
        var store = Create(kind, temp);
        byte[] blob = [1, 2, 3, 4, 5];

        Assert.Null(await store.GetAsync(Chunk));
        Assert.False(await store.ContainsAsync(Chunk));
        await store.PutAsync(Chunk, blob);
        await store.PutAsync(Prefix, new byte[] { 9 });
        blob[0] = 42; // the store took a copy

        Assert.True(await store.ContainsAsync(Chunk));
        Assert.Equal([1, 2, 3, 4, 5], (await store.GetAsync(Chunk))!.Value.ToArray());
        Assert.Equal([9], (await store.GetAsync(Prefix))!.Value.ToArray());

        await store.PutAsync(Chunk, new byte[] { 7, 7 });
        Assert.Equal([7, 7], (await store.GetAsync(Chunk))!.Value.ToArray());

        Assert.True(await store.RemoveAsync(Chunk));
        Assert.False(await store.RemoveAsync(Chunk));
        Assert.Null(await store.GetAsync(Chunk));
        Assert.True(await store.ContainsAsync(Prefix));
    }

    [Fact]
    public async Task Directory_store_names_files_inside_its_folder_only_and_leaves_no_temporary_files()
    {
        using var temp = new TempDirectory();
        var store = new DirectoryBlobStore(temp.Path);
        await store.PutAsync(Chunk, new byte[] { 1 });
        await store.PutAsync(Chunk, new byte[] { 2 });
        await store.PutAsync(Prefix, new byte[] { 3 });

        var names = Directory.GetFiles(temp.Path).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(new[] { $"chunk-{Chunk.Id}-sink_3aprefix_3a0123456789abcdef.kvc", $"prefix-{Prefix.Id}.kvc" }, names);
        Assert.Equal(temp.Path, Path.GetDirectoryName(store.PathOf(Chunk)));
    }

    [Theory]
    [InlineData("../../etc")]
    [InlineData("ABCDEF")]
    [InlineData("")]
    [InlineData("ab/cd")]
    public void Directory_store_refuses_ids_that_are_not_lowercase_hex(string id) =>
        Assert.Throws<ArgumentException>(() => DirectoryBlobStore.FileNameOf(new CacheKey(CacheEntryKind.Chunk, id, "sink:bos")));

    [Fact]
    public void Directory_store_keeps_distinct_variants_distinct_and_long_ones_short()
    {
        var id = new string('c', 64);
        var names = new[] { "sink:bos", "sink_3abos", "sink/bos", "../x", new string('v', 300), new string('v', 301) }
            .Select(v => DirectoryBlobStore.FileNameOf(new CacheKey(CacheEntryKind.Chunk, id, v)))
            .ToList();

        Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
        Assert.All(names, n => Assert.True(n.Length < 255 && n.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_' or '.'), n));
        Assert.All(names, n => Assert.DoesNotContain("..", n, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Directory_store_refuses_a_blob_above_its_limit_without_reading_it()
    {
        using var temp = new TempDirectory();
        var store = new DirectoryBlobStore(temp.Path, new DirectoryBlobStoreOptions { MaxBlobBytes = 4 });
        await store.PutAsync(Chunk, new byte[5]);

        await Assert.ThrowsAsync<KvBlobException>(async () => await store.GetAsync(Chunk));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Directory_store_options_are_validated(long max) =>
        Assert.Throws<ArgumentException>(() => new DirectoryBlobStoreOptions { MaxBlobBytes = max }.Validate());

    private static IKvBlobStore Create(string kind, TempDirectory temp) =>
        kind == "memory" ? new InMemoryBlobStore() : new DirectoryBlobStore(temp.Combine("store"));
}
