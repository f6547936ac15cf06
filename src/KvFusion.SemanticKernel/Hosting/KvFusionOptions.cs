using KvFusion.Cache.Fusion;
using KvFusion.SemanticKernel.Chat;
using KvFusion.Storage.Hosting;

namespace KvFusion.SemanticKernel.Hosting;

/// <summary>
/// Settings of the in-process KvFusion runtime behind the registered chat client: the model, the store of chunk caches,
/// the CPU threads, and how prompts are fused. Validated when the host starts (or at first use without a host).
/// </summary>
public sealed class KvFusionOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "KvFusion";

    /// <summary>
    /// The model directory (Hugging Face layout); null: <c>$KVFUSION_MODEL</c>, else <c>../shared/models/tiny-pydocs</c>,
    /// as the <c>kvfusion</c> command resolves it.
    /// </summary>
    public string? Model { get; set; }

    /// <summary>The store of chunk caches; by default host memory over RocksDB in <c>./data</c>, as the CLI's.</summary>
    public KvStorageOptions Storage { get; set; } = new();

    /// <summary>CPU threads of the backend; null: all cores.</summary>
    public int? Threads { get; set; }

    /// <summary>How prompts are fused unless a call names another mode.</summary>
    public FusionMode Mode { get; set; } = FusionMode.Blend;

    /// <summary>CacheBlend's share of chunk tokens recomputed, in (0, 1].</summary>
    public double RecomputeRatio { get; set; } = BlendOptions.DefaultRatio;

    /// <summary>Output tokens when a call does not set <c>MaxOutputTokens</c>.</summary>
    public int DefaultMaxOutputTokens { get; set; } = 256;

    /// <summary>The chat client options these settings give.</summary>
    internal KvFusionChatClientOptions ToChatClientOptions() => new()
    {
        Mode = Mode,
        RecomputeRatio = RecomputeRatio,
        DefaultMaxOutputTokens = DefaultMaxOutputTokens,
    };
}
