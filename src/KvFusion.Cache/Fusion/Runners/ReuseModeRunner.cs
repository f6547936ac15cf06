using System.Diagnostics;

namespace KvFusion.Cache.Fusion.Runners;

/// <summary><c>reuse</c>: stored chunk caches as they are; only the query and an uncached prefix are computed.</summary>
internal sealed class ReuseModeRunner(ChunkCaches chunkCaches, PrefixBlocks prefixBlocks) : IFusionModeRunner
{
    public FusionMode Mode => FusionMode.Reuse;

    public async Task<FusionReport> RunAsync(FusionRun run, CancellationToken cancellationToken)
    {
        var (plan, session, stages) = (run.Plan, run.Session, run.Stages);
        var sw = Stopwatch.StartNew();
        var precomputed = await chunkCaches.EnsureAsync(plan, cancellationToken).ConfigureAwait(false);
        stages["precompute"] = sw.Elapsed;
        sw.Restart();
        var load = await prefixBlocks.LoadAsync(session, plan.Tokens, plan.Prefix.Length, cancellationToken).ConfigureAwait(false);
        stages["load"] = sw.Elapsed;
        sw.Restart();
        var computed = plan.Query.Length;
        if (load.Loaded < plan.Prefix.Length)
        {
            await run.PrefillAsync(plan.Prefix.AsMemory(load.Loaded), cancellationToken).ConfigureAwait(false);
            computed += plan.Prefix.Length - load.Loaded;
        }

        stages["compute"] = sw.Elapsed;
        sw.Restart();
        ChunkCaches.Import(session, plan);
        stages["load"] += sw.Elapsed;
        sw.Restart();
        await run.PrefillAsync(plan.Query, cancellationToken).ConfigureAwait(false);
        stages["compute"] += sw.Elapsed;
        sw.Restart();
        await prefixBlocks.StoreAsync(session, plan.Tokens, load, plan.Prefix.Length, cancellationToken).ConfigureAwait(false);
        stages["store"] = sw.Elapsed;
        return plan.Report(plan.ChunkTokens + load.Loaded, Enumerable.Repeat(computed, run.LayerCount).ToArray()) with
        {
            ChunksPrecomputed = precomputed,
            PrefixBlocksReused = load.Blocks,
        };
    }
}
