using KvFusion.Cache.Fusion;

namespace KvFusion.Cache.Prompts;

/// <summary>A chat laid out as the fusion's three segments.</summary>
/// <param name="Prefix">Text before the chunks (system prompt, template header), computed or reused exactly; null when empty.</param>
/// <param name="Chunks">The chunks, in prompt order.</param>
/// <param name="Query">Text after the chunks, ending with the assistant's cue.</param>
public sealed record FusionPrompt(string? Prefix, IReadOnlyList<ChunkInput> Chunks, string Query)
{
    /// <summary>The fusion request that computes this prompt in <paramref name="mode"/>.</summary>
    public FusionRequest ToRequest(FusionMode mode, BlendOptions? blend = null, int reserveTokens = 256) => new()
    {
        Prefix = Prefix,
        Chunks = Chunks,
        Query = Query,
        Mode = mode,
        Blend = blend ?? BlendOptions.Default(),
        ReserveTokens = reserveTokens,
    };
}
