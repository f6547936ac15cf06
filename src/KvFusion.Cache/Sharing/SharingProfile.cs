using System.Globalization;
using System.Text.Json;
using KvFusion.Engine.Models;

namespace KvFusion.Cache.Sharing;

/// <summary>One measured recompute set: its ranges, the receiver's mean KL to its own full prefill, and the TTFT ratio.</summary>
/// <param name="Recompute">The layers recomputed.</param>
/// <param name="MeanKl">Mean KL over the answer tokens against the receiver's full prefill.</param>
/// <param name="TtftRatioToFull">The receiver's full-prefill TTFT over this set's (above 1: faster).</param>
public sealed record SharingCandidate(RecomputeRanges Recompute, double MeanKl, double TtftRatioToFull);

/// <summary>
/// What <c>kvfusion profile sharing</c> measured for one (sender, receiver) pair and the recompute ranges it chose:
/// the cheapest contiguous ranges whose quality loss stays within the budget. Keyed by both models' fingerprints; a
/// profile is refused for any other pair. Written and read as JSON.
/// </summary>
public sealed record SharingProfile
{
    /// <summary>The JSON format version.</summary>
    public const int FormatVersion = 1;

    /// <summary>The sender's name (folder name).</summary>
    public required string SenderName { get; init; }

    /// <summary>The receiver's name (folder name).</summary>
    public required string ReceiverName { get; init; }

    /// <summary>The sender's fingerprints.</summary>
    public required ModelFingerprint Sender { get; init; }

    /// <summary>The receiver's fingerprints.</summary>
    public required ModelFingerprint Receiver { get; init; }

    /// <summary>Layers of both models.</summary>
    public required int LayerCount { get; init; }

    /// <summary>Cases profiled.</summary>
    public required int Cases { get; init; }

    /// <summary>How the ranges were chosen: <c>exact</c> (every subset of layers measured) or <c>greedy</c>.</summary>
    public required string Search { get; init; }

    /// <summary>The quality budget: the chosen ranges' mean KL is at most this fraction of full reuse's.</summary>
    public required double Budget { get; init; }

    /// <summary>Mean KL of full reuse (no layer recomputed).</summary>
    public required double ReuseKl { get; init; }

    /// <summary>The chosen ranges.</summary>
    public required RecomputeRanges Recompute { get; init; }

    /// <summary>Mean KL with the chosen ranges.</summary>
    public required double RecomputeKl { get; init; }

    /// <summary>
    /// Per layer, the mean KL when only that layer reuses the sender's K/V and every other is recomputed: how much
    /// the receiver is hurt by the sender's KV there (DroidSpeak's per-layer sensitivity).
    /// </summary>
    public required IReadOnlyList<double> LayerSensitivity { get; init; }

    /// <summary>Per contiguous range, the mean KL when only that range reuses the sender's K/V.</summary>
    public required IReadOnlyList<(LayerRange Range, double MeanKl)> RangeSensitivity { get; init; }

    /// <summary>Every recompute set measured, in the order measured.</summary>
    public required IReadOnlyList<SharingCandidate> Candidates { get; init; }

    /// <summary>Throws unless this profile was made for caches of <paramref name="sender"/> used by <paramref name="receiver"/>.</summary>
    /// <exception cref="SharingProfileException">It was made for another pair; the message names both.</exception>
    public void EnsureFor(ModelFingerprint sender, ModelFingerprint receiver)
    {
        ArgumentNullException.ThrowIfNull(sender);
        ArgumentNullException.ThrowIfNull(receiver);
        if (sender != Sender || receiver != Receiver)
        {
            throw new SharingProfileException(
                $"The sharing profile is for {SenderName} ({Sender.Model[..12]}…) → {ReceiverName} ({Receiver.Model[..12]}…), not for {sender.Model[..12]}… → {receiver.Model[..12]}…: profile this pair with kvfusion profile sharing.");
        }
    }

    /// <summary>Writes the profile as indented JSON.</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteNumber("format", FormatVersion);
        w.WriteStartObject("sender");
        Write(w, SenderName, Sender);
        w.WriteEndObject();
        w.WriteStartObject("receiver");
        Write(w, ReceiverName, Receiver);
        w.WriteEndObject();
        w.WriteNumber("layers", LayerCount);
        w.WriteNumber("cases", Cases);
        w.WriteString("search", Search);
        w.WriteNumber("budget", Budget);
        w.WriteNumber("reuse_kl", Math.Round(ReuseKl, 6));
        w.WriteString("recompute", Recompute.ToString());
        w.WriteNumber("recompute_kl", Math.Round(RecomputeKl, 6));
        w.WriteStartArray("layer_sensitivity");
        foreach (var kl in LayerSensitivity)
        {
            w.WriteNumberValue(Math.Round(kl, 6));
        }

        w.WriteEndArray();
        w.WriteStartArray("range_sensitivity");
        foreach (var (range, kl) in RangeSensitivity)
        {
            w.WriteStartObject();
            w.WriteString("range", range.ToString());
            w.WriteNumber("mean_kl", Math.Round(kl, 6));
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("candidates");
        foreach (var c in Candidates)
        {
            w.WriteStartObject();
            w.WriteString("recompute", c.Recompute.ToString());
            w.WriteNumber("mean_kl", Math.Round(c.MeanKl, 6));
            w.WriteNumber("ttft_ratio_to_full", Math.Round(c.TtftRatioToFull, 3));
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>Reads a profile written by <see cref="Save"/>.</summary>
    /// <exception cref="SharingProfileException">The file cannot be read or is not a profile; the message names the file and the field.</exception>
    public static SharingProfile Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            var format = root.GetProperty("format").GetInt32();
            if (format != FormatVersion)
            {
                throw new SharingProfileException($"{path}: sharing profile format {format} is not the supported {FormatVersion}.") { FilePath = path };
            }

            var (senderName, sender) = Read(root.GetProperty("sender"));
            var (receiverName, receiver) = Read(root.GetProperty("receiver"));
            var layers = root.GetProperty("layers").GetInt32();
            var recompute = RecomputeRanges.Parse(root.GetProperty("recompute").GetString() ?? string.Empty);
            recompute.CheckFits(layers);
            return new SharingProfile
            {
                SenderName = senderName,
                ReceiverName = receiverName,
                Sender = sender,
                Receiver = receiver,
                LayerCount = layers,
                Cases = root.GetProperty("cases").GetInt32(),
                Search = root.GetProperty("search").GetString() ?? string.Empty,
                Budget = root.GetProperty("budget").GetDouble(),
                ReuseKl = root.GetProperty("reuse_kl").GetDouble(),
                Recompute = recompute,
                RecomputeKl = root.GetProperty("recompute_kl").GetDouble(),
                LayerSensitivity = [.. root.GetProperty("layer_sensitivity").EnumerateArray().Select(e => e.GetDouble())],
                RangeSensitivity = [.. root.GetProperty("range_sensitivity").EnumerateArray().Select(e => (Single(RecomputeRanges.Parse(e.GetProperty("range").GetString()!)), e.GetProperty("mean_kl").GetDouble()))],
                Candidates = [.. root.GetProperty("candidates").EnumerateArray().Select(e => new SharingCandidate(
                    RecomputeRanges.Parse(e.GetProperty("recompute").GetString()!), e.GetProperty("mean_kl").GetDouble(), e.GetProperty("ttft_ratio_to_full").GetDouble()))],
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new SharingProfileException($"{path} is not a sharing profile: {e.Message}", e) { FilePath = path };
        }
        catch (IOException e)
        {
            throw new SharingProfileException($"Cannot read the sharing profile {path}: {e.Message}", e) { FilePath = path };
        }
        catch (UnauthorizedAccessException e)
        {
            throw new SharingProfileException($"Cannot read the sharing profile {path}: {e.Message}", e) { FilePath = path };
        }
    }

    private static LayerRange Single(RecomputeRanges ranges) =>
        ranges.Ranges.Count == 1 ? ranges.Ranges[0] : throw new FormatException($"'{ranges}' is not one layer range.");

    private static void Write(Utf8JsonWriter w, string name, ModelFingerprint fingerprint)
    {
        w.WriteString("name", name);
        w.WriteString("model_fingerprint", fingerprint.Model);
        w.WriteString("tokenizer_fingerprint", fingerprint.Tokenizer);
    }

    private static (string Name, ModelFingerprint Fingerprint) Read(JsonElement e) =>
        (e.GetProperty("name").GetString() ?? string.Empty,
         new ModelFingerprint(e.GetProperty("model_fingerprint").GetString() ?? string.Empty, e.GetProperty("tokenizer_fingerprint").GetString() ?? string.Empty));

    /// <summary>A one-line summary: pair, chosen ranges and their quality against full reuse.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{SenderName} → {ReceiverName}: recompute {Recompute} ({Recompute.LayerCount}/{LayerCount} layers), mean KL {RecomputeKl:0.0000} vs {ReuseKl:0.0000} with full reuse ({Search} search, {Cases} cases)");
}
