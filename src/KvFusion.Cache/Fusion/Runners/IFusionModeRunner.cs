namespace KvFusion.Cache.Fusion.Runners;

/// <summary>
/// Computes a planned prompt in one mode. The engine looks runners up by <see cref="Mode"/> and calls them inside its
/// compute gate with a fresh session; a new way of building a fused prompt is a new runner, nothing else.
/// </summary>
internal interface IFusionModeRunner
{
    /// <summary>The mode this runner computes.</summary>
    FusionMode Mode { get; }

    /// <summary>Fills the run's session and logits and reports what was reused and computed (the engine adds the times).</summary>
    Task<FusionReport> RunAsync(FusionRun run, CancellationToken cancellationToken);
}
