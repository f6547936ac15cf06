using System.Text.Json.Serialization;

namespace KvFusion.Client.Contracts;

/// <summary>The <c>kvfusion</c> object of a completion request: which stored chunks to fuse, and how.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record FusionOptions
{
    /// <summary>Ids of stored chunks, placed in this order after the system prompt and before the conversation.</summary>
    public IReadOnlyList<string>? Chunks { get; init; }

    /// <summary><c>blend</c> (default), <c>reuse</c>, <c>prefix</c>, <c>full</c>, or <c>share</c> (the default when <see cref="SharedFrom"/> is set).</summary>
    public string? Mode { get; init; }

    /// <summary>Blend: the share of chunk tokens recomputed, 0 to 1 (default 0.15).</summary>
    public double? RecomputeRatio { get; init; }

    /// <summary>
    /// Share: the agent (model id) that stored <see cref="Chunks"/> in the caller's namespace; the request's model
    /// fuses them, reusing the sender's KV and recomputing the profiled layer ranges. With mode <c>blend</c>, blend's
    /// selection also recomputes its tokens in the other layers.
    /// </summary>
    public string? SharedFrom { get; init; }

    /// <summary>
    /// Store this exchange (the whole prompt and the answer) as one cache under the request's model, computed in one
    /// pass with its E-cache, and return its id as <see cref="FusionUsage.ConversationId"/>: another agent fuses it by
    /// naming it in <see cref="Chunks"/> with this model as <see cref="SharedFrom"/>.
    /// </summary>
    public bool? SaveConversation { get; init; }

    /// <summary>
    /// Blend: the quality floor, the largest estimated KL from <c>full</c> (nats, next-token distribution) let
    /// through; above it the service raises the ratio or prefills in full (default: the service's
    /// <c>KvFusion:Quality:Floor</c>, none when unset). The outcome is in <see cref="FusionUsage.Quality"/>.
    /// </summary>
    public double? QualityFloor { get; init; }

    /// <summary>
    /// Loading: the time to first token to meet, in milliseconds. The loading controller reads each chunk at the
    /// stored level (or computes it from its tokens) that meets it at the best quality; the choices are in
    /// <see cref="FusionUsage.Loading"/>.
    /// </summary>
    public double? TtftDeadlineMs { get; init; }

    /// <summary>Loading: the largest mean KL the stored levels may add (0: lossless only); the controller then minimises TTFT.</summary>
    public double? MaxMeanKl { get; init; }

    /// <summary>Loading: the share of TTFT above the fastest plan that may be spent on quality (default 0.1).</summary>
    public double? TtftSlack { get; init; }

    /// <summary>Share (and blend with <see cref="SharedFrom"/>): the layer ranges the receiver recomputes (<c>"1-3"</c>, <c>"0,4-5"</c>, <c>"none"</c>); default: the pair's loaded profile.</summary>
    public string? Recompute { get; init; }
}

/// <summary>What the fusion of a completion did, reported in its <c>kvfusion</c> object.</summary>
public sealed record FusionUsage
{
    /// <summary>The mode used (e.g. <c>blend:0.15</c>).</summary>
    public required string Mode { get; init; }

    /// <summary>Prompt tokens whose stored KV was loaded instead of computed.</summary>
    public required int ReusedTokens { get; init; }

    /// <summary>Prompt tokens computed in the last layer (query tokens and recomputed chunk tokens).</summary>
    public required int RecomputedTokens { get; init; }

    /// <summary>Chunks that had to be precomputed during this request.</summary>
    public int ChunksPrecomputed { get; init; }

    /// <summary>Share of (token, layer) pairs computed relative to a full prefill.</summary>
    public double ComputeFraction { get; init; }

    /// <summary>Milliseconds from the request's arrival to its first token.</summary>
    public required double TtftMs { get; init; }

    /// <summary>With <see cref="FusionOptions.SaveConversation"/>: the id of the stored exchange (prompt and answer), a chunk id of the request's model.</summary>
    public string? ConversationId { get; init; }

    /// <summary>Blend: its estimated deviation from <c>full</c> and what the quality gate did (null for other modes).</summary>
    public QualityUsage? Quality { get; init; }

    /// <summary>Milliseconds the request waited in the service's queue.</summary>
    public double QueueMs { get; init; }

    /// <summary>Milliseconds per fusion stage (tokenize, load, compute, select, store…).</summary>
    public IReadOnlyDictionary<string, double> StageMs { get; init; } = new Dictionary<string, double>();

    /// <summary>With a loading goal (<see cref="FusionOptions.TtftDeadlineMs"/>, <see cref="FusionOptions.MaxMeanKl"/>): what the loading controller chose.</summary>
    public LoadingUsage? Loading { get; init; }
}

/// <summary>The loading controller's choices for a request, in <see cref="FusionUsage.Loading"/>.</summary>
public sealed record LoadingUsage
{
    /// <summary>Per chunk loaded for the request, in prompt order: <c>text</c> (computed here) or the level read (<c>cachegen:3@redis</c>).</summary>
    public required IReadOnlyList<string> Choices { get; init; }

    /// <summary>The TTFT the controller predicted for its plan (fusion only, without the queue).</summary>
    public double? PredictedTtftMs { get; init; }

    /// <summary>The mean KL the chosen levels are predicted to add.</summary>
    public double? PredictedMeanKl { get; init; }

    /// <summary>Whether the plan meets the deadline and budget.</summary>
    public bool MeetsGoal { get; init; }

    /// <summary>Why no plan was made (the controller is off, or the costs are not measured yet); every chunk was then read as stored.</summary>
    public string? Skipped { get; init; }
}

/// <summary>Blend's quality estimate and gate decision, in <see cref="FusionUsage.Quality"/>.</summary>
public sealed record QualityUsage
{
    /// <summary>Estimated KL(full ‖ fused) of the next-token distribution at the ratio used (0 when answered by full).</summary>
    public required double EstimatedKl { get; init; }

    /// <summary>The estimate at the requested ratio, before the gate acted.</summary>
    public required double RequestedEstimatedKl { get; init; }

    /// <summary>The floor applied, or null when none was set.</summary>
    public double? Floor { get; init; }

    /// <summary><c>unchecked</c> (no floor), <c>passed</c>, <c>ratio_raised</c> or <c>fell_back_to_full</c>.</summary>
    public required string Decision { get; init; }

    /// <summary>The recompute ratio used (1 when answered by full).</summary>
    public required double Ratio { get; init; }

    /// <summary>The recompute ratio asked for.</summary>
    public required double RequestedRatio { get; init; }

    /// <summary>Milliseconds the gate cost: estimating, plus the discarded blend and the full prefill when it fell back.</summary>
    public required double CostMs { get; init; }
}

/// <summary>OpenAI's <c>stream_options</c>.</summary>
public sealed record StreamOptions
{
    /// <summary>Send a last chunk with the usage (and no choices) before <c>[DONE]</c>.</summary>
    public bool IncludeUsage { get; init; }
}

/// <summary>A chat message of a request. <see cref="Content"/> is a string or a list of text parts.</summary>
public sealed record ChatMessage
{
    /// <summary><c>system</c>, <c>developer</c>, <c>user</c>, <c>assistant</c> or <c>tool</c>.</summary>
    public string Role { get; init; } = "";

    /// <summary>The text of the message (text parts joined).</summary>
    [JsonConverter(typeof(MessageContentConverter))]
    public string? Content { get; init; }

    /// <summary>Optional participant name.</summary>
    public string? Name { get; init; }
}

/// <summary>Sampling and length settings shared by both completion endpoints.</summary>
public abstract record GenerationRequest
{
    /// <summary>The model id (as <c>GET /v1/models</c> lists it); empty means the service's model.</summary>
    public string? Model { get; init; }

    /// <summary>Most tokens to generate.</summary>
    public int? MaxTokens { get; init; }

    /// <summary>Sampling temperature, 0 to 2 (0: greedy). Default 1.</summary>
    public float? Temperature { get; init; }

    /// <summary>Nucleus sampling mass, (0, 1]. Default 1.</summary>
    public float? TopP { get; init; }

    /// <summary>Seed of the sampler, for reproducible samples.</summary>
    public long? Seed { get; init; }

    /// <summary>Up to 4 strings that end the generation (not included in the output).</summary>
    [JsonConverter(typeof(StopSequencesConverter))]
    public IReadOnlyList<string>? Stop { get; init; }

    /// <summary>Choices to generate: only 1 is supported.</summary>
    public int? N { get; init; }

    /// <summary>Stream the answer as server-sent events.</summary>
    public bool? Stream { get; init; }

    /// <summary>Streaming options.</summary>
    public StreamOptions? StreamOptions { get; init; }

    /// <summary>The fusion: stored chunks and mode.</summary>
    public FusionOptions? Kvfusion { get; init; }
}

/// <summary>Body of <c>POST /v1/chat/completions</c> (OpenAI-compatible, with the <c>kvfusion</c> extension).</summary>
public sealed record ChatCompletionRequest : GenerationRequest
{
    /// <summary>The conversation.</summary>
    public IReadOnlyList<ChatMessage> Messages { get; init; } = [];

    /// <summary>Most tokens to generate (OpenAI's newer name for <see cref="GenerationRequest.MaxTokens"/>).</summary>
    public int? MaxCompletionTokens { get; init; }
}

/// <summary>Body of <c>POST /v1/completions</c> (OpenAI-compatible, with the <c>kvfusion</c> extension).</summary>
public sealed record CompletionRequest : GenerationRequest
{
    /// <summary>The prompt: a string (or a list of one string).</summary>
    [JsonConverter(typeof(PromptConverter))]
    public string? Prompt { get; init; }
}

/// <summary>Token counts of a completion.</summary>
public sealed record CompletionUsage
{
    /// <summary>Tokens in the fused prompt.</summary>
    public required int PromptTokens { get; init; }

    /// <summary>Tokens generated.</summary>
    public required int CompletionTokens { get; init; }

    /// <summary>Sum of both.</summary>
    public required int TotalTokens { get; init; }

    /// <summary>Details of the prompt tokens.</summary>
    public required PromptTokensDetails PromptTokensDetails { get; init; }
}

/// <summary>OpenAI's <c>prompt_tokens_details</c>.</summary>
public sealed record PromptTokensDetails
{
    /// <summary>Prompt tokens served from stored caches.</summary>
    public required int CachedTokens { get; init; }
}

/// <summary>A generated message.</summary>
public sealed record ChatMessageResult
{
    /// <summary>Always <c>assistant</c>.</summary>
    public string Role { get; init; } = "assistant";

    /// <summary>The text.</summary>
    public string? Content { get; init; }
}

/// <summary>A choice of a chat completion.</summary>
public sealed record ChatChoice
{
    /// <summary>Always 0.</summary>
    public int Index { get; init; }

    /// <summary>The generated message.</summary>
    public required ChatMessageResult Message { get; init; }

    /// <summary><c>stop</c> or <c>length</c>.</summary>
    public required string FinishReason { get; init; }
}

/// <summary>Answer of <c>POST /v1/chat/completions</c>.</summary>
public sealed record ChatCompletion
{
    /// <summary>The completion's id.</summary>
    public required string Id { get; init; }

    /// <summary>Always <c>chat.completion</c>.</summary>
    public string Object { get; init; } = "chat.completion";

    /// <summary>Unix seconds.</summary>
    public required long Created { get; init; }

    /// <summary>The model id.</summary>
    public required string Model { get; init; }

    /// <summary>One choice.</summary>
    public required IReadOnlyList<ChatChoice> Choices { get; init; }

    /// <summary>Token counts.</summary>
    public required CompletionUsage Usage { get; init; }

    /// <summary>What the fusion did.</summary>
    public required FusionUsage Kvfusion { get; init; }
}

/// <summary>The delta of a streamed chat choice.</summary>
public sealed record ChatDelta
{
    /// <summary><c>assistant</c> in the first chunk.</summary>
    public string? Role { get; init; }

    /// <summary>New text.</summary>
    public string? Content { get; init; }
}

/// <summary>A choice of a streamed chat chunk.</summary>
public sealed record ChatChunkChoice
{
    /// <summary>Always 0.</summary>
    public int Index { get; init; }

    /// <summary>The new text.</summary>
    public required ChatDelta Delta { get; init; }

    /// <summary>Set in the last content chunk.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FinishReason { get; init; }
}

/// <summary>One server-sent event of a streamed chat completion.</summary>
public sealed record ChatCompletionChunk
{
    /// <summary>The completion's id (the same in every chunk).</summary>
    public required string Id { get; init; }

    /// <summary>Always <c>chat.completion.chunk</c>.</summary>
    public string Object { get; init; } = "chat.completion.chunk";

    /// <summary>Unix seconds.</summary>
    public required long Created { get; init; }

    /// <summary>The model id.</summary>
    public required string Model { get; init; }

    /// <summary>One choice; empty in the usage chunk.</summary>
    public required IReadOnlyList<ChatChunkChoice> Choices { get; init; }

    /// <summary>Token counts: only in the last chunk, when <c>stream_options.include_usage</c>.</summary>
    public CompletionUsage? Usage { get; init; }

    /// <summary>What the fusion did: in the first chunk and in the usage chunk.</summary>
    public FusionUsage? Kvfusion { get; init; }
}

/// <summary>A choice of a text completion (and of its streamed chunks).</summary>
public sealed record CompletionChoice
{
    /// <summary>Always 0.</summary>
    public int Index { get; init; }

    /// <summary>The generated text (new text, when streamed).</summary>
    public required string Text { get; init; }

    /// <summary><c>stop</c> or <c>length</c>; null in streamed chunks before the last.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FinishReason { get; init; }
}

/// <summary>Answer of <c>POST /v1/completions</c>, and each streamed event of it.</summary>
public sealed record Completion
{
    /// <summary>The completion's id.</summary>
    public required string Id { get; init; }

    /// <summary>Always <c>text_completion</c>.</summary>
    public string Object { get; init; } = "text_completion";

    /// <summary>Unix seconds.</summary>
    public required long Created { get; init; }

    /// <summary>The model id.</summary>
    public required string Model { get; init; }

    /// <summary>One choice; empty in the usage chunk of a stream.</summary>
    public required IReadOnlyList<CompletionChoice> Choices { get; init; }

    /// <summary>Token counts (in a stream: only the last chunk, when asked for).</summary>
    public CompletionUsage? Usage { get; init; }

    /// <summary>What the fusion did.</summary>
    public FusionUsage? Kvfusion { get; init; }
}

/// <summary>A model the service serves.</summary>
public sealed record ModelInfo
{
    /// <summary>The model id (its folder name).</summary>
    public required string Id { get; init; }

    /// <summary>Always <c>model</c>.</summary>
    public string Object { get; init; } = "model";

    /// <summary>Unix seconds when the service loaded it.</summary>
    public required long Created { get; init; }

    /// <summary>Always <c>kvfusion</c>.</summary>
    public string OwnedBy { get; init; } = "kvfusion";

    /// <summary>The model's fingerprint (BLAKE3 of its weights), which chunk ids are computed under.</summary>
    public string? Fingerprint { get; init; }

    /// <summary>The model's context length in tokens.</summary>
    public int? ContextLength { get; init; }
}

/// <summary>Answer of <c>GET /v1/models</c>.</summary>
public sealed record ModelList
{
    /// <summary>Always <c>list</c>.</summary>
    public string Object { get; init; } = "list";

    /// <summary>The models.</summary>
    public required IReadOnlyList<ModelInfo> Data { get; init; }
}
