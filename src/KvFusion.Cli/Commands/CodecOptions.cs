using System.CommandLine;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Storage;
using KvFusion.Diagnostics.Benchmarks;
using KvFusion.Engine.Transformer;
using Microsoft.Extensions.Logging;

namespace KvFusion.Cli.Commands;

/// <summary>The <c>--codec NAME[:LEVEL]</c> option and the stores it selects.</summary>
internal static class CodecOptions
{
    public static Option<string?> Codec(string description) => new("--codec") { Description = description };

    /// <summary>The codec <paramref name="text"/> names, or null when it is absent.</summary>
    /// <exception cref="CliException">It names no codec; the message lists the valid ones.</exception>
    public static KvCodecSpec? Parse(string? text) =>
        text is null ? null
        : KvCodecSpec.TryParse(text, out var spec, out var error) ? spec
        : throw new CliException($"--codec: {error}");

    /// <summary>A list of codecs (<c>raw,lz4,cachegen:2</c>), or every codec for null.</summary>
    public static IReadOnlyList<KvCodecSpec> ParseList(string? text)
    {
        if (text is null)
        {
            return KvCodecSpec.All;
        }

        var specs = new List<KvCodecSpec>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            specs.Add(KvCodecSpec.TryParse(part, out var spec, out var error) ? spec : throw new CliException($"--codecs: {error}"));
        }

        return specs.Count > 0 ? specs.Distinct().ToList() : throw new CliException("--codecs: give at least one codec.");
    }

    /// <summary>Fails with a one-line error when the codec cannot encode yet (codecs still being built).</summary>
    public static void EnsureAvailable(KvCodecSpec codec, TransformerModel model)
    {
        if (!CodecBenchmark.IsAvailable(codec, model, out var reason))
        {
            throw new CliException($"--codec {codec}: {reason}");
        }
    }

    /// <summary>
    /// The store fusion reads chunks and prefix blocks from: without a codec the in-memory store of decoded entries;
    /// with one, containers in memory, so every put encodes and every get decodes (and TTFT includes the decode).
    /// </summary>
    public static IKvStore Store(KvCodecSpec? codec, TransformerModel model)
    {
        if (codec is not { } spec)
        {
            return new InMemoryKvStore();
        }

        EnsureAvailable(spec, model);
        return ContainerKvStore.ForModel(model, new InMemoryBlobStore(), new ContainerKvStoreOptions { Codec = spec }, CommonOptions.Logs.CreateLogger<ContainerKvStore>());
    }

    /// <summary>A line on what the container store wrote, or null for the in-memory store.</summary>
    public static string? Describe(IKvStore store) => store is ContainerKvStore c && c.EntriesWritten > 0
        ? $"codec {c.Options.Codec}: {c.EntriesWritten} entries, {c.BytesWritten:N0} container bytes for {c.Fp16BytesWritten:N0} fp16 bytes ({(double)c.Fp16BytesWritten / c.BytesWritten:F2}x), {c.CorruptBlobsDropped} corrupt blobs dropped"
        : null;
}
