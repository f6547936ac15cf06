using System.Globalization;
using LoadingUsage = KvFusion.Client.Contracts.LoadingUsage;
using QualityUsage = KvFusion.Client.Contracts.QualityUsage;

namespace KvFusion.SemanticKernel.Chat;

/// <summary>
/// What the fusion of one chat call did, the same from the engine and from the service. Found under
/// <see cref="PropertyName"/> in the additional properties of the <c>ChatResponse</c>, of its final message and of the last
/// streaming update.
/// </summary>
public sealed record KvFusionReport
{
    /// <summary>The additional-properties key of the report.</summary>
    public const string PropertyName = "kvfusion.report";

    /// <summary>The <c>UsageDetails.AdditionalCounts</c> key of the prompt tokens computed (the last layer's count).</summary>
    public const string RecomputedTokensCount = "kvfusion.recomputed_tokens";

    /// <summary>
    /// The <c>ChatOptions.AdditionalProperties</c> key overriding the fusion mode of one call: a <c>FusionMode</c> or its
    /// name as the command line writes it (<c>full</c>, <c>prefix</c>, <c>reuse</c>, <c>blend</c>, <c>blend:0.3</c>).
    /// </summary>
    public const string ModeProperty = "kvfusion.mode";

    /// <summary>
    /// The <c>ChatOptions.AdditionalProperties</c> key naming the agent (served model id) whose stored caches this call
    /// fuses by reference (cross-model sharing, mode <c>share</c> or <c>share:RANGES</c>; share is the default with it).
    /// The chunks of the call are that agent's: their ids, or their text for the agent to store first.
    /// </summary>
    public const string SharedFromProperty = "kvfusion.shared_from";

    /// <summary>
    /// The <c>ChatOptions.AdditionalProperties</c> key of one blend call's quality floor (a number, the largest
    /// estimated KL from full let through), over <see cref="KvFusionChatClientOptions.QualityFloor"/>.
    /// </summary>
    public const string QualityFloorProperty = "kvfusion.quality_floor";

    /// <summary>The <c>ChatOptions.AdditionalProperties</c> key of a call's TTFT deadline in milliseconds (a loading goal: the service's <c>kvfusion.ttft_deadline_ms</c>).</summary>
    public const string TtftDeadlineProperty = "kvfusion.ttft_deadline_ms";

    /// <summary>The <c>ChatOptions.AdditionalProperties</c> key of a call's quality budget: the largest mean KL stored levels may add (a loading goal).</summary>
    public const string MaxMeanKlProperty = "kvfusion.max_mean_kl";

    /// <summary>The <c>ChatOptions.AdditionalProperties</c> key of the share of TTFT above the fastest plan a loading goal may spend on quality (default 0.1).</summary>
    public const string TtftSlackProperty = "kvfusion.ttft_slack";

    /// <summary>The mode used, as the engine names it (<c>blend:0.15</c>, <c>reuse</c>, ...).</summary>
    public required string Mode { get; init; }

    /// <summary>Tokens of the fused prompt (prefix, chunks, query): the call's input tokens.</summary>
    public required int PrefillTokens { get; init; }

    /// <summary>Prompt tokens whose stored KV was loaded instead of computed (the call's cached input tokens).</summary>
    public required int ReusedTokens { get; init; }

    /// <summary>Prompt tokens computed in the last layer (the query and the recomputed chunk tokens).</summary>
    public required int RecomputedTokens { get; init; }

    /// <summary>Tokens generated.</summary>
    public required int OutputTokens { get; init; }

    /// <summary>The fused chunks' ids (lowercase hex), in prompt order.</summary>
    public required IReadOnlyList<string> ChunkIds { get; init; }

    /// <summary>Chunks whose cache was missing and computed (and stored) during this call.</summary>
    public int ChunksPrecomputed { get; init; }

    /// <summary>Share of (token, layer) pairs computed relative to a full prefill.</summary>
    public double ComputeFraction { get; init; }

    /// <summary>Milliseconds from the call (in process) or the request's arrival (service) to the first token.</summary>
    public double TtftMs { get; init; }

    /// <summary>Milliseconds the fusion took to build the prompt's cache (the prefill's replacement).</summary>
    public double PrefillMs { get; init; }

    /// <summary>
    /// Blend's estimated deviation from full and what the quality gate did (null for other modes): the service's
    /// <c>kvfusion.quality</c> object, or the engine's report in the same shape.
    /// </summary>
    public QualityUsage? Quality { get; init; }

    /// <summary>With a loading goal: what the loading controller chose per chunk (the service's <c>kvfusion.loading</c>, or the engine's report in its shape).</summary>
    public LoadingUsage? Loading { get; init; }

    /// <summary>
    /// One line for logs and consoles (a program printing a response's metadata generically shows this): the mode, the
    /// prompt tokens reused and recomputed, the chunks fused and how many had to be precomputed, the TTFT and blend's estimate.
    /// </summary>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"{Mode}: {PrefillTokens} prompt tokens, {ReusedTokens} reused, {RecomputedTokens} recomputed; {ChunkIds.Count} chunks fused, {ChunksPrecomputed} precomputed; TTFT {TtftMs:0.0} ms")
        + (Quality is { } q ? string.Create(CultureInfo.InvariantCulture, $"; estimated KL {q.EstimatedKl:0.000} ({q.Decision})") : string.Empty);
}
