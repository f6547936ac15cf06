using System.Text.Json;
using Blake3;

namespace KvFusion.Engine.Models;

/// <summary>
/// BLAKE3 fingerprints of a model's weight files and of its tokenizer.json (DESIGN.md, "Keys"). They are computed
/// once and cached in <c>.kvfusion-fingerprint.json</c> beside the model, or in the user cache directory when the
/// model directory is read-only; a cache entry is used only while every file's size and modification time match.
/// </summary>
public sealed record ModelFingerprint(string Model, string Tokenizer)
{
    /// <summary>Name of the cache file written beside the model.</summary>
    public const string CacheFileName = ".kvfusion-fingerprint.json";

    /// <summary>Gets the fingerprints of a model directory, from the cache when it is current.</summary>
    public static ModelFingerprint Get(string directory, IReadOnlyList<string> weightFiles, string? tokenizerPath)
    {
        var files = weightFiles.Order(StringComparer.Ordinal).ToList();
        var stamp = Stamp(files, tokenizerPath);
        foreach (var cachePath in CandidateCachePaths(directory))
        {
            if (TryRead(cachePath, stamp) is { } cached)
            {
                return cached;
            }
        }

        var fp = new ModelFingerprint(HashFiles(files), tokenizerPath is null ? new string('0', 64) : HashFiles([tokenizerPath]));
        foreach (var cachePath in CandidateCachePaths(directory))
        {
            if (TryWrite(cachePath, stamp, fp))
            {
                break;
            }
        }

        return fp;
    }

    /// <summary>BLAKE3 over the bytes of the files in order, as lowercase hex.</summary>
    public static string HashFiles(IEnumerable<string> paths)
    {
        using var hasher = Hasher.New();

        // Large reads hashed with BLAKE3's multithreaded tree mode: the digest is the same, and a 16 GB checkpoint
        // hashes at disk speed instead of one core's.
        var buffer = new byte[16 << 20];
        foreach (var p in paths)
        {
            using var fs = new FileStream(p, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            int n;
            while ((n = fs.Read(buffer)) > 0)
            {
                hasher.UpdateWithJoin(buffer.AsSpan(0, n));
            }
        }

        return Convert.ToHexStringLower(hasher.Finalize().AsSpan());
    }

    private static string Stamp(List<string> files, string? tokenizer)
    {
        var parts = new List<string>();
        foreach (var f in tokenizer is null ? files : [.. files, tokenizer])
        {
            var info = new FileInfo(f);
            parts.Add($"{Path.GetFileName(f)}:{info.Length}:{info.LastWriteTimeUtc.Ticks}");
        }

        return string.Join('|', parts);
    }

    private static IEnumerable<string> CandidateCachePaths(string directory)
    {
        yield return Path.Combine(directory, CacheFileName);
        var root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (string.IsNullOrEmpty(root))
        {
            root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        }

        var key = Convert.ToHexStringLower(Hasher.Hash(System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(directory))).AsSpan())[..32];
        yield return Path.Combine(root, "kvfusion", "fingerprints", key + ".json");
    }

    private static ModelFingerprint? TryRead(string path, string stamp)
    {
        try
        {
            if (!File.Exists(path))
            {
                return null;
            }

            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var r = doc.RootElement;
            return r.GetProperty("stamp").GetString() == stamp
                ? new ModelFingerprint(r.GetProperty("model").GetString()!, r.GetProperty("tokenizer").GetString()!)
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return null; // A stale or damaged cache is recomputed, never trusted.
        }
    }

    private static bool TryWrite(string path, string stamp, ModelFingerprint fp)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var tmp = path + "." + Environment.ProcessId + ".tmp";
            using (var stream = File.Create(tmp))
            using (var w = new Utf8JsonWriter(stream))
            {
                w.WriteStartObject();
                w.WriteString("stamp", stamp);
                w.WriteString("model", fp.Model);
                w.WriteString("tokenizer", fp.Tokenizer);
                w.WriteEndObject();
            }

            File.Move(tmp, path, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
