using System.Globalization;
using System.Text.Json;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Loading;
using KvFusion.Engine.Generation;
using Microsoft.Extensions.AI;

namespace KvFusion.SemanticKernel.Chat;

/// <summary>One call's fusion and sampling settings, read from its <see cref="ChatOptions"/> over the client's defaults.</summary>
internal sealed record ChatCallSettings
{
    /// <summary>Temperature when the call sets none (OpenAI's default, which the service applies too).</summary>
    public const float DefaultTemperature = 1f;

    /// <summary>The mode, with its ratio and variant.</summary>
    public required FusionModeSpec Mode { get; init; }

    /// <summary>The agent whose stored caches the call fuses (mode share), or null.</summary>
    public string? SharedFrom { get; init; }

    /// <summary>The call's loading goal, or null.</summary>
    public LoadGoal? Loading { get; init; }

    /// <summary>Blend settings of <see cref="Mode"/>.</summary>
    public required BlendOptions Blend { get; init; }

    /// <summary>Most tokens to generate.</summary>
    public required int MaxOutputTokens { get; init; }

    /// <summary>0 is greedy.</summary>
    public required float Temperature { get; init; }

    /// <summary>Nucleus mass.</summary>
    public required float TopP { get; init; }

    /// <summary>Top-k (0: all).</summary>
    public required int TopK { get; init; }

    /// <summary>The seed the call gave, if any.</summary>
    public required long? Seed { get; init; }

    /// <summary>Stop sequences (not included in the answer).</summary>
    public required IReadOnlyList<string> StopSequences { get; init; }

    /// <summary>The engine's sampling options; a call without seed gets a random one.</summary>
    public SamplingOptions Sampling => new()
    {
        Temperature = Temperature,
        TopP = TopP,
        TopK = TopK,
        Seed = Seed is { } seed ? unchecked((ulong)seed) : (ulong)Random.Shared.NextInt64(),
        MaxTokens = MaxOutputTokens,
    };

    /// <summary>Reads <paramref name="options"/> over <paramref name="defaults"/>, checking every value.</summary>
    /// <param name="options">The call's options.</param>
    /// <param name="defaults">The client's settings.</param>
    /// <param name="modelId">The model the client serves; a call naming another one is refused. Null: not checked.</param>
    /// <exception cref="ArgumentException">A value out of range, an unknown mode, or another model (the message names it).</exception>
    public static ChatCallSettings Read(ChatOptions? options, KvFusionChatClientOptions defaults, string? modelId)
    {
        if (options?.ModelId is { Length: > 0 } requested && modelId is not null && !string.Equals(requested, modelId, StringComparison.Ordinal))
        {
            throw new ArgumentException($"ChatOptions.ModelId '{requested}' is not the model this client serves ('{modelId}').", nameof(options));
        }

        var max = options?.MaxOutputTokens ?? defaults.DefaultMaxOutputTokens;
        if (max < 1)
        {
            throw new ArgumentException($"ChatOptions.MaxOutputTokens must be at least 1, got {max}.", nameof(options));
        }

        var temperature = options?.Temperature ?? DefaultTemperature;
        if (!(temperature >= 0 && temperature <= 2))
        {
            throw new ArgumentException($"ChatOptions.Temperature must be between 0 and 2, got {Format(temperature)}.", nameof(options));
        }

        var topP = options?.TopP ?? 1f;
        if (!(topP > 0 && topP <= 1))
        {
            throw new ArgumentException($"ChatOptions.TopP must be in (0, 1], got {Format(topP)}.", nameof(options));
        }

        var topK = options?.TopK ?? 0;
        if (options?.TopK is < 1)
        {
            throw new ArgumentException($"ChatOptions.TopK must be at least 1, got {topK}.", nameof(options));
        }

        var stops = options?.StopSequences is { } given ? given.ToArray() : [];
        for (var i = 0; i < stops.Length; i++)
        {
            if (string.IsNullOrEmpty(stops[i]))
            {
                throw new ArgumentException($"ChatOptions.StopSequences[{i}] is empty; stop sequences must be non-empty.", nameof(options));
            }
        }

        var sharedFrom = SharedFromOf(options);
        var mode = ModeOf(options, defaults);
        if (sharedFrom is not null && !HasMode(options))
        {
            mode = new FusionModeSpec(FusionMode.Share, defaults.RecomputeRatio);
        }

        // Blend may fuse another agent's caches too (both recompute sets); the other modes read the model's own.
        if (((mode.Mode == FusionMode.Share || mode.Recompute is not null) && sharedFrom is null) || (sharedFrom is not null && mode.Mode is not (FusionMode.Share or FusionMode.Blend)))
        {
            throw new ArgumentException(
                sharedFrom is null
                    ? $"Mode {mode} needs ChatOptions.AdditionalProperties[\"{KvFusionReport.SharedFromProperty}\"]: the agent whose stored caches are fused."
                    : $"ChatOptions.AdditionalProperties[\"{KvFusionReport.SharedFromProperty}\"] needs mode share, blend or no mode; the call asks for {mode}.",
                nameof(options));
        }

        var floor = QualityFloorOf(options) ?? defaults.QualityFloor;
        if (floor is not null && mode.Mode != FusionMode.Blend && QualityFloorOf(options) is not null)
        {
            throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{KvFusionReport.QualityFloorProperty}\"] applies to mode blend only; the call asks for {mode}.", nameof(options));
        }

        return new ChatCallSettings
        {
            Mode = mode,
            SharedFrom = sharedFrom,
            Blend = BlendOf(mode) with { QualityFloor = mode.Mode == FusionMode.Blend ? floor : null },
            MaxOutputTokens = max,
            Temperature = temperature,
            TopP = topP,
            TopK = topK,
            Seed = options?.Seed,
            StopSequences = stops,
            Loading = LoadingOf(options),
        };
    }

    private static LoadGoal? LoadingOf(ChatOptions? options)
    {
        var deadline = NumberOf(options, KvFusionReport.TtftDeadlineProperty, "a TTFT deadline in milliseconds (a number above 0)", x => x > 0);
        var budget = NumberOf(options, KvFusionReport.MaxMeanKlProperty, "a mean KL (a number of at least 0)", x => x >= 0);
        var slack = NumberOf(options, KvFusionReport.TtftSlackProperty, "a fraction of TTFT from 0 to 10", x => x is >= 0 and <= 10);
        return deadline is null && budget is null && slack is null
            ? null
            : new LoadGoal(deadline is { } ms ? TimeSpan.FromMilliseconds(ms) : null, budget, slack ?? LoadGoal.DefaultTtftSlack);
    }

    private static bool HasMode(ChatOptions? options) =>
        options?.AdditionalProperties is { } p && p.TryGetValue(KvFusionReport.ModeProperty, out var value) && value is not null;

    private static string? SharedFromOf(ChatOptions? options)
    {
        if (options?.AdditionalProperties is null || !options.AdditionalProperties.TryGetValue(KvFusionReport.SharedFromProperty, out var value) || value is null)
        {
            return null;
        }

        var text = value switch
        {
            string s => s,
            JsonElement { ValueKind: JsonValueKind.String } e => e.GetString(),
            _ => null,
        };
        return string.IsNullOrWhiteSpace(text)
            ? throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{KvFusionReport.SharedFromProperty}\"] must be a model id (a non-empty string); got '{value}'.", nameof(options))
            : text;
    }

    private static double? QualityFloorOf(ChatOptions? options) =>
        NumberOf(options, KvFusionReport.QualityFloorProperty, "an estimated KL (a number of at least 0)", x => x >= 0);

    /// <summary>A number under <paramref name="key"/> of the call's additional properties (any numeric type, a JSON number or an invariant string), or null when absent.</summary>
    private static double? NumberOf(ChatOptions? options, string key, string what, Func<double, bool> valid)
    {
        if (options?.AdditionalProperties is null || !options.AdditionalProperties.TryGetValue(key, out var value) || value is null)
        {
            return null;
        }

        double? number = value switch
        {
            double d => d,
            float f => f,
            int i => i,
            long l => l,
            decimal m => (double)m,
            JsonElement { ValueKind: JsonValueKind.Number } e => e.GetDouble(),
            string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) => parsed,
            _ => null,
        };
        return number is { } x && double.IsFinite(x) && valid(x)
            ? x
            : throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{key}\"] must be {what}; got '{value}'.", nameof(options));
    }

    private static FusionModeSpec ModeOf(ChatOptions? options, KvFusionChatClientOptions defaults)
    {
        if (options?.AdditionalProperties is null || !options.AdditionalProperties.TryGetValue(KvFusionReport.ModeProperty, out var value) || value is null)
        {
            return new FusionModeSpec(defaults.Mode, defaults.RecomputeRatio);
        }

        switch (value)
        {
            case FusionMode mode when Enum.IsDefined(mode):
                return new FusionModeSpec(mode, defaults.RecomputeRatio);
            case FusionModeSpec spec when Enum.IsDefined(spec.Mode) && spec.Ratio > 0 && spec.Ratio <= 1:
                return spec;
            case string text:
                return Parse(text, defaults);
            case JsonElement { ValueKind: JsonValueKind.String } element:
                return Parse(element.GetString() ?? "", defaults);
            default:
                throw new ArgumentException(
                    $"ChatOptions.AdditionalProperties[\"{KvFusionReport.ModeProperty}\"] is '{value}' ({value.GetType().Name}); give a FusionMode or one of {FusionModeSpec.ValidForms}.",
                    nameof(options));
        }
    }

    private static FusionModeSpec Parse(string text, KvFusionChatClientOptions defaults)
    {
        FusionModeSpec spec;
        try
        {
            spec = FusionModeSpec.Parse(text);
        }
        catch (FusionException e)
        {
            throw Invalid($"ChatOptions.AdditionalProperties[\"{KvFusionReport.ModeProperty}\"]: {e.Message}", e);
        }

        // A bare "blend" takes the client's ratio, not the engine's default.
        return text.Contains(':', StringComparison.Ordinal) ? spec : spec with { Ratio = defaults.RecomputeRatio };
    }

    private static ArgumentException Invalid(string message, Exception inner, string paramName = "options") => new(message, paramName, inner);

    private static BlendOptions BlendOf(FusionModeSpec mode) => BlendVariants.Build(mode.Variant, mode.Ratio);

    private static string Format(float value) => value.ToString(CultureInfo.InvariantCulture);
}
