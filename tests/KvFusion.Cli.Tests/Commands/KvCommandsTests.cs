using System.Text.Json;

namespace KvFusion.Cli.Tests.Commands;

/// <summary>
/// <c>kv export</c>, <c>kv inspect</c> and <c>kv import</c> as a user runs them (their own process): a valid container
/// passes, and every bad input (missing, corrupt, truncated, another model, a bad codec) is one line naming the file.
/// </summary>
[Collection(ConsoleCommands.Name)]
public sealed class KvCommandsTests : IClassFixture<KvCommandsTests.ExportedChunks>
{
    private readonly ExportedChunks _exported;

    public KvCommandsTests(ExportedChunks exported) => _exported = exported;

    [SkippableFact]
    public async Task Export_writes_one_valid_container_per_chunk_that_inspect_verifies_and_import_stores()
    {
        var files = _exported.Files;
        Assert.Equal(2, files.Count);
        Assert.All(files, f => Assert.Matches("^[0-9a-f]{64}\\.kvc$", Path.GetFileName(f)));
        Assert.Contains("ratio to fp16", _exported.Output, StringComparison.Ordinal);

        var inspect = await Kvfusion.RunAsync("kv", "inspect", files[0]);
        Assert.True(inspect.ExitCode == 0, inspect.StandardError);
        foreach (var field in new[] { "format version", "model fingerprint", "tokenizer fingerprint", "tokens", "layers", "kv heads", "head dim", "codec", "sections", "valid" })
        {
            Assert.Contains(field, inspect.StandardOutput, StringComparison.Ordinal);
        }

        using var store = new TempDirectory();
        var import = await Kvfusion.RunAsync("kv", "import", files[0], "--store", store.Path, "--model", SharedModels.Path("tiny-pydocs"));
        Assert.True(import.ExitCode == 0, import.StandardError);
        var stored = Assert.Single(Directory.GetFiles(store.Path));
        Assert.StartsWith("chunk-" + Path.GetFileNameWithoutExtension(files[0]) + "-", Path.GetFileName(stored), StringComparison.Ordinal);
        Assert.Equal(File.ReadAllBytes(files[0]), File.ReadAllBytes(stored));
    }

    [SkippableTheory]
    [InlineData("inspect")]
    [InlineData("import")]
    public async Task A_missing_file_is_one_line_naming_it(string command)
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("absent.kvc");

        var line = OneErrorLine(await Run(command, path, temp));

        Assert.Equal($"kvfusion: error: {path}: container file not found.", line);
    }

    [SkippableTheory]
    [InlineData("inspect", "flip a payload byte", "checksum mismatch")]
    [InlineData("inspect", "flip a header byte", "")]
    [InlineData("inspect", "truncate", "")]
    [InlineData("inspect", "not a container", "")]
    [InlineData("import", "flip a payload byte", "checksum mismatch")]
    [InlineData("import", "truncate", "")]
    public async Task A_corrupt_or_truncated_file_is_one_line_naming_it_and_what_is_wrong(string command, string damage, string problem)
    {
        using var temp = new TempDirectory();
        var blob = File.ReadAllBytes(_exported.Files[0]);
        var bad = damage switch
        {
            "flip a payload byte" => Flip(blob, blob.Length / 2),
            "flip a header byte" => Flip(blob, 12),
            "truncate" => blob[..(blob.Length - 100)],
            _ => "not a KV container, just text"u8.ToArray(),
        };
        var path = temp.Combine("bad.kvc");
        File.WriteAllBytes(path, bad);

        var line = OneErrorLine(await Run(command, path, temp));

        Assert.StartsWith($"kvfusion: error: {path}: ", line, StringComparison.Ordinal);
        Assert.Contains(problem, line, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(temp.Path, "chunk-*", SearchOption.AllDirectories));
    }

    [SkippableFact]
    public async Task Importing_a_container_of_another_model_is_refused()
    {
        // The zoo's Mistral with tiny-pydocs' tokenizer: same vocabulary, other weights and KV shape.
        using var other = TempDirectory.CopyOf(SharedModels.Path("zoo/mistral"));
        File.Copy(Path.Combine(SharedModels.Path("tiny-pydocs"), "tokenizer.json"), other.Combine("tokenizer.json"), overwrite: true);
        using var store = new TempDirectory();

        var line = OneErrorLine(await Kvfusion.RunAsync("kv", "import", _exported.Files[0], "--store", store.Path, "--model", other.Path));

        Assert.StartsWith($"kvfusion: error: {_exported.Files[0]}: ", line, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(store.Path));
    }

    [Theory]
    [InlineData("Codec 'zstd' is unknown", "kv", "export", "--chunks-from", "x.jsonl", "--out", "o", "--codec", "zstd")]
    [InlineData("the cachegen level must be 1..3", "kv", "export", "--chunks-from", "x.jsonl", "--out", "o", "--codec", "cachegen:9")]
    [InlineData("raw has no levels", "eval", "fusion", "--cases", "x.jsonl", "--codec", "raw:1")]
    [InlineData("Codec 'gzip' is unknown", "bench", "fusion", "--codec", "gzip")]
    [InlineData("--codecs: Codec 'bogus' is unknown", "bench", "codec", "--codecs", "raw,bogus")]
    [InlineData("Option '--codec' is required", "kv", "export", "--chunks-from", "x.jsonl", "--out", "o")]
    public async Task A_bad_codec_is_one_line_listing_the_valid_ones(string problem, params string[] args)
    {
        var line = OneErrorLine(await Kvfusion.RunAsync(args));

        Assert.Contains(problem, line, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Bench_codec_on_the_tiny_model_writes_the_json_other_tools_read()
    {
        using var temp = new TempDirectory();
        var json = temp.Combine("codec.json");
        var png = temp.Combine("codec.png");

        var run = await Kvfusion.RunAsync(
            "bench", "codec", "--model", SharedModels.Path("tiny-pydocs"), "--cases", RepositoryRoot.Combine("tests", "data", "fusion-cases-tiny.jsonl"),
            "--limit", "1", "--codecs", "raw,lz4", "--repetitions", "1", "--json", json, "--png", png);

        Assert.True(run.ExitCode == 0, run.StandardError);
        Assert.True(new FileInfo(png).Length > 1000);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
        var root = doc.RootElement;
        Assert.Equal("tiny-pydocs", root.GetProperty("model").GetString());
        var codecs = root.GetProperty("codecs").EnumerateArray().ToList();
        var raw = Assert.Single(codecs, c => c.GetProperty("codec").GetString() == "raw");
        foreach (var name in new[] { "ratio_to_fp16", "bits_per_value", "statistics_share", "encode_mb_s_per_core", "decode_mb_s_per_core", "blend_mean_kl", "reuse_mean_kl", "blend_top1_agreement", "reuse_top1_agreement", "bytes" })
        {
            Assert.Equal(JsonValueKind.Number, raw.GetProperty(name).ValueKind);
        }

        var baseline = root.GetProperty("baseline");
        // Raw is lossless: fused quality through it is the uncompressed quality exactly.
        Assert.Equal(baseline.GetProperty("blend_mean_kl").GetDouble(), raw.GetProperty("blend_mean_kl").GetDouble());
        Assert.Equal(baseline.GetProperty("reuse_mean_kl").GetDouble(), raw.GetProperty("reuse_mean_kl").GetDouble());
        Assert.InRange(raw.GetProperty("bits_per_value").GetDouble(), 16, 16.5);
        // lz4 is measured once it is built, and listed as skipped until then.
        var lz4Measured = codecs.Any(c => c.GetProperty("codec").GetString() == "lz4");
        var lz4Skipped = root.GetProperty("skipped").EnumerateArray().Any(s => s.GetProperty("codec").GetString() == "lz4");
        Assert.True(lz4Measured ^ lz4Skipped);
    }

    private static Task<Kvfusion> Run(string command, string path, TempDirectory temp) => command == "inspect"
        ? Kvfusion.RunAsync("kv", "inspect", path)
        : Kvfusion.RunAsync("kv", "import", path, "--store", temp.Combine("store"), "--model", SharedModels.Path("tiny-pydocs"));

    /// <summary>Exit code 1 and exactly one line on standard error, <c>kvfusion: error: …</c>, with no stack trace.</summary>
    private static string OneErrorLine(Kvfusion run)
    {
        Assert.True(run.ExitCode == 1, $"exit code {run.ExitCode}; standard error:\n{run.StandardError}");
        Assert.DoesNotContain("Unhandled exception", run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StandardError, StringComparison.Ordinal);
        var line = Assert.Single(run.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith("kvfusion: error: ", line, StringComparison.Ordinal);
        return line;
    }

    private static byte[] Flip(byte[] blob, int at)
    {
        var copy = (byte[])blob.Clone();
        copy[at] ^= 0x01;
        return copy;
    }

    /// <summary>Two chunks exported once with codec raw on tiny-pydocs, for the tests that need a real container.</summary>
    public sealed class ExportedChunks : IDisposable
    {
        private readonly TempDirectory _temp = new();
        private readonly Lazy<(IReadOnlyList<string> Files, string Output)> _export;

        public ExportedChunks() => _export = new(Export);

        /// <summary>The container files (skips when ../shared is absent).</summary>
        public IReadOnlyList<string> Files => _export.Value.Files;

        /// <summary>What export printed.</summary>
        public string Output => _export.Value.Output;

        public void Dispose() => _temp.Dispose();

        private (IReadOnlyList<string>, string) Export()
        {
            var model = SharedModels.Path("tiny-pydocs");
            var chunks = _temp.Combine("chunks.jsonl");
            File.WriteAllLines(chunks, ["\"The json module provides an API similar to pickle.\"", "{\"text\": \"A list comprehension consists of brackets.\"}", "\"The json module provides an API similar to pickle.\""]);
            var outDir = _temp.Combine("out");
            var run = Kvfusion.RunAsync("kv", "export", "--model", model, "--chunks-from", chunks, "--codec", "raw", "--out", outDir).GetAwaiter().GetResult();
            Assert.True(run.ExitCode == 0, run.StandardError);
            return (Directory.GetFiles(outDir).Order(StringComparer.Ordinal).ToList(), run.StandardOutput);
        }
    }
}
