using KvFusion.Cache.Fusion;

namespace KvFusion.SemanticKernel.Chat;

/// <summary>Settings shared by <see cref="KvFusionChatClient"/> and <see cref="KvFusionServiceChatClient"/>.</summary>
public sealed class KvFusionChatClientOptions
{
    /// <summary>The fusion mode of a call that names none in <see cref="KvFusionReport.ModeProperty"/>.</summary>
    public FusionMode Mode { get; set; } = FusionMode.Blend;

    /// <summary>Blend's share of chunk tokens recomputed, in (0, 1].</summary>
    public double RecomputeRatio { get; set; } = BlendOptions.DefaultRatio;

    /// <summary>
    /// Blend's quality floor for calls that set none in <see cref="KvFusionReport.QualityFloorProperty"/>: the largest
    /// estimated KL from full let through; above it the ratio is raised or the call prefilled in full. Null: the
    /// estimate is reported (<see cref="KvFusionReport.Quality"/>), nothing is gated.
    /// </summary>
    public double? QualityFloor { get; set; }

    /// <summary>Most tokens generated when <c>ChatOptions.MaxOutputTokens</c> is not set.</summary>
    public int DefaultMaxOutputTokens { get; set; } = 256;

    /// <summary>
    /// The model id the client reports and accepts in <c>ChatOptions.ModelId</c>. Null: the model's folder name in process;
    /// for the service, the id its answers name.
    /// </summary>
    public string? ModelId { get; set; }

    /// <summary>Throws when a setting is out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Names the setting and its value.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Mode))
        {
            throw new ArgumentOutOfRangeException(nameof(Mode), Mode, "Mode must be Full, Prefix, Reuse or Blend.");
        }

        if (!(RecomputeRatio > 0 && RecomputeRatio <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(RecomputeRatio), RecomputeRatio, "RecomputeRatio must be in (0, 1].");
        }

        if (QualityFloor is { } floor && !(floor >= 0 && double.IsFinite(floor)))
        {
            throw new ArgumentOutOfRangeException(nameof(QualityFloor), floor, "QualityFloor is an estimated KL: at least 0 and finite.");
        }

        if (DefaultMaxOutputTokens < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(DefaultMaxOutputTokens), DefaultMaxOutputTokens, "DefaultMaxOutputTokens must be at least 1.");
        }

        if (ModelId is not null && string.IsNullOrWhiteSpace(ModelId))
        {
            throw new ArgumentOutOfRangeException(nameof(ModelId), ModelId, "ModelId must be null or a non-blank name.");
        }
    }

    /// <summary>A validated copy, so later changes to the caller's instance do not reach a client built from it.</summary>
    internal KvFusionChatClientOptions Snapshot()
    {
        Validate();
        return new KvFusionChatClientOptions { Mode = Mode, RecomputeRatio = RecomputeRatio, QualityFloor = QualityFloor, DefaultMaxOutputTokens = DefaultMaxOutputTokens, ModelId = ModelId };
    }
}
