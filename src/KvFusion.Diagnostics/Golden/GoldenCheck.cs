using System.Globalization;
using System.Text.Json;
using KvFusion.Engine.Generation;
using KvFusion.Engine.Transformer;

namespace KvFusion.Diagnostics.Golden;

/// <summary>One golden case: how far the engine's logits are from those transformers computed, and whether the greedy continuation matches.</summary>
/// <param name="Model">The model folder name.</param>
/// <param name="Case">Which case and which logits (e.g. "case 0, last of 96 tokens").</param>
/// <param name="MaxAbsError">Largest absolute logit difference.</param>
/// <param name="Tolerance">Largest difference accepted.</param>
/// <param name="GreedyMatches">For greedy cases: whether every token matched (null for logit cases).</param>
/// <param name="Detail">What differed, or the exception raised.</param>
public sealed record GoldenResult(string Model, string Case, double MaxAbsError, double Tolerance, bool? GreedyMatches, string? Detail)
{
    /// <summary>Whether the case is within tolerance (and, for greedy cases, identical).</summary>
    public bool Passed => GreedyMatches ?? (MaxAbsError <= Tolerance);
}

/// <summary>
/// Replays a model folder's <c>golden.json</c> (logits and greedy continuations computed by Hugging Face
/// transformers) through the engine on any backend: the check the engine's tests run on the CPU, available to
/// <c>kvfusion selftest</c> for other devices.
/// </summary>
public static class GoldenCheck
{
    /// <summary>Runs every case of <paramref name="goldenPath"/> on <paramref name="model"/>.</summary>
    public static IReadOnlyList<GoldenResult> Run(TransformerModel model, string goldenPath, double tolerance, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var golden = JsonDocument.Parse(File.ReadAllBytes(goldenPath));
        var name = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(goldenPath)))!;
        var results = new List<GoldenResult>();
        var index = 0;
        foreach (var c in golden.RootElement.GetProperty("cases").EnumerateArray())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var label = string.Create(CultureInfo.InvariantCulture, $"case {index++}");
            try
            {
                RunCase(model, name, label, c, tolerance, results);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                results.Add(new GoldenResult(name, label, double.NaN, tolerance, null, $"{e.GetType().Name}: {e.Message}"));
            }
        }

        return results;
    }

    private static void RunCase(TransformerModel model, string name, string label, JsonElement c, double tolerance, List<GoldenResult> results)
    {
        var ids = Ints(c.GetProperty("input_ids"));
        var greedy = c.TryGetProperty("greedy_next_24", out var g) ? Ints(g) : [];
        using var session = model.CreateSession(ids.Length + Math.Max(1, greedy.Length));
        var logits = new float[model.Config.VocabSize];

        // Prefill in pieces that end at each golden position, so those logits are observable.
        var checkpoints = new SortedDictionary<int, float[]>();
        if (c.TryGetProperty("first_logits", out var first))
        {
            checkpoints[0] = Floats(first);
        }

        if (c.TryGetProperty("logits_at_positions", out var positions))
        {
            foreach (var p in positions.EnumerateObject())
            {
                checkpoints[int.Parse(p.Name, CultureInfo.InvariantCulture)] = Floats(p.Value);
            }
        }

        var done = 0;
        foreach (var (pos, expected) in checkpoints)
        {
            if (pos >= ids.Length - 1)
            {
                continue;
            }

            session.Prefill(ids.AsSpan(done, pos + 1 - done), logits);
            done = pos + 1;
            results.Add(Compare(name, string.Create(CultureInfo.InvariantCulture, $"{label}, position {pos}"), expected, logits, tolerance));
        }

        session.Prefill(ids.AsSpan(done), logits);
        results.Add(Compare(name, string.Create(CultureInfo.InvariantCulture, $"{label}, last of {ids.Length} tokens"), Floats(c.GetProperty("last_logits")), logits, tolerance));
        if (greedy.Length == 0)
        {
            return;
        }

        // A greedy sampler rather than a bare argmax: a non-finite logit then fails the case naming the token it came at.
        var sampler = new TokenSampler(new SamplingOptions());
        var got = new int[greedy.Length];
        for (var i = 0; i < greedy.Length; i++)
        {
            got[i] = sampler.Next(logits);
            if (i + 1 < greedy.Length)
            {
                session.Decode(got[i], logits);
            }
        }

        var firstDiff = -1;
        for (var i = 0; i < greedy.Length; i++)
        {
            if (got[i] != greedy[i])
            {
                firstDiff = i;
                break;
            }
        }

        results.Add(new GoldenResult(name, string.Create(CultureInfo.InvariantCulture, $"{label}, greedy {greedy.Length} tokens"), 0, 0, firstDiff < 0,
            firstDiff < 0 ? null : string.Create(CultureInfo.InvariantCulture, $"token {firstDiff}: expected {greedy[firstDiff]}, got {got[firstDiff]}")));
    }

    internal static GoldenResult Compare(string name, string label, float[] expected, float[] actual, double tolerance)
    {
        if (expected.Length != actual.Length)
        {
            return new GoldenResult(name, label, double.NaN, tolerance, null, $"{expected.Length} golden logits, {actual.Length} computed");
        }

        var diff = LogitComparison.MaxAbsDifference(expected, actual);
        var at = Math.Max(diff.Index, 0);
        return new GoldenResult(name, label, diff.MaxAbs, tolerance, null,
            diff.IsWithin(tolerance) ? null : string.Create(CultureInfo.InvariantCulture, $"logit {at}: expected {expected[at]}, got {actual[at]}{(diff.IsNonFinite ? " (non-finite)" : string.Empty)}"));
    }

    private static int[] Ints(JsonElement e)
    {
        var a = new int[e.GetArrayLength()];
        var i = 0;
        foreach (var x in e.EnumerateArray())
        {
            a[i++] = x.GetInt32();
        }

        return a;
    }

    private static float[] Floats(JsonElement e)
    {
        var a = new float[e.GetArrayLength()];
        var i = 0;
        foreach (var x in e.EnumerateArray())
        {
            a[i++] = x.GetSingle();
        }

        return a;
    }
}
