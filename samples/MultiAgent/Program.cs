// Two agents of one base model: a docs agent (tiny-pydocs) reads documentation pages, then hands what it read to a
// coder agent (tiny-pydocs-coder, the same base fine-tuned on code). Instead of sending the text, which the coder would
// prefill again, it sends a cache reference: the id of the context's KV cache it stored. The coder reuses the sender's
// KV in most layers and recomputes only the layer ranges its sharing profile names (DroidSpeak), then answers.
//
//   dotnet run -c Release --project samples/MultiAgent -- [--docs DIR] [--coder DIR] [--profile FILE] [--corpus PATH]
//       [--handoffs N] [--max-tokens N]
//
// The profile (default tests/data/sharing-profile-tiny.json) comes from `kvfusion profile sharing`; it is refused for
// any other pair. Prints, for each way of handing off (text, full reuse, share), the coder's time to first token and its
// quality against reading the text itself: KL divergence and top-1 agreement over the answer tokens. A fourth row
// combines share with blend (the sender's KV everywhere, blend's selection recomputed), the best point measured.
using System.Diagnostics;
using System.Globalization;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Sharing;
using KvFusion.Cache.Storage;
using KvFusion.Diagnostics.Rag;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Errors;
using KvFusion.Engine.Generation;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;

// Numbers print the same everywhere (the tests read them).
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

// The best point measured on the tiny pair's TTFT/quality curve (docs/sharing.md): blend over the sender's caches.
const string BlendedVariant = "gradual";
const double BlendedRatio = 0.2;
const string Blended = "blend:0.2:gradual+share:none";

string? docsDir = null;
string? coderDir = null;
string? profilePath = null;
string? corpus = null;
var handoffs = 4;
var maxTokens = 24;
try
{
    for (var i = 0; i < args.Length; i++)
    {
        switch (args[i])
        {
            case "--docs": docsDir = Value(args, ref i); break;
            case "--coder": coderDir = Value(args, ref i); break;
            case "--profile": profilePath = Value(args, ref i); break;
            case "--corpus": corpus = Value(args, ref i); break;
            case "--handoffs": handoffs = Count(Value(args, ref i), "--handoffs"); break;
            case "--max-tokens": maxTokens = Count(Value(args, ref i), "--max-tokens"); break;
            default: throw new ArgumentException($"Unknown argument '{args[i]}'. Options: --docs --coder --profile --corpus --handoffs --max-tokens.");
        }
    }

    var docsPath = ModelDirectory.Resolve(docsDir);
    var coderPath = coderDir ?? Path.Combine(Path.GetDirectoryName(docsPath)!, "tiny-pydocs-coder");
    using var backend = new CpuBackend(Environment.ProcessorCount);
    using var docs = TransformerModel.Load(docsPath, backend);
    using var coder = TransformerModel.Load(ModelDirectory.Resolve(coderPath), backend);

    // Only a model of the same family can read another's caches, and only through share.
    var family = ModelCompatibility.Check(docs.Config, docs.Fingerprint, coder.Config, coder.Fingerprint);
    if (!family.IsCompatible)
    {
        throw new ArgumentException($"The agents cannot share caches: {family.Reason}.");
    }

    var profile = SharingProfile.Load(profilePath ?? FindUp(Path.Combine("tests", "data", "sharing-profile-tiny.json")));
    profile.EnsureFor(docs.Fingerprint, coder.Fingerprint);

    // One store for both agents: entries are keyed by the model that computed them, so neither reads the other's by accident.
    var store = new InMemoryKvStore();
    using var docsAgent = new FusionEngine(docs, store, new FusionEngineOptions { HiddenStateLayers = profile.Recompute.HiddenStateLayers });
    using var coderAgent = new FusionEngine(coder, store);

    // What the docs agent read: pages of the corpus, one context per handoff, each with a question on it.
    var documents = new CorpusReader(RagDemoSet.FindCorpus(corpus)).ReadAll();
    var tokenizer = new KvFusion.Cache.Chunking.ModelTokenizerAdapter(docs.Tokenizer!);
    var cases = new FusionCaseGenerator(tokenizer, new FusionCaseOptions { Cases = handoffs, ChunksPerCase = 4, ChunkTokens = 256, Seed = 42, Handoff = true }).Generate(documents);

    Console.WriteLine($"docs agent {Name(docs)} → coder agent {Name(coder)}: recompute layers {profile.Recompute} of {coder.Config.LayerCount} (profile: {profile.Cases} cases, KL {profile.RecomputeKl:F4} vs {profile.ReuseKl:F4} for full reuse)");
    Console.WriteLine();

    // The coder's request names the sender's cache, never its text.
    FusionRequest Shared(string query, KvFusion.Cache.Keys.ChunkId id, RecomputeRanges ranges) => new()
    {
        Mode = FusionMode.Share,
        Chunks = [ChunkInput.FromId(id)],
        Query = query,
        SharedFrom = SharedCacheSource.From(docs, store, ranges),
    };

    // One handoff told in full: the docs agent stores its context and passes the id; the coder answers from it.
    var first = cases[0];
    var contextId = await docsAgent.PutChunkAsync(ChunkInput.FromText(first.Chunks[0]));
    Console.WriteLine($"docs agent stored its {docs.Tokenizer!.Encode(first.Chunks[0]).Length}-token context as {contextId.ToString()[..16]}… and sends only that id.");
    Console.WriteLine($"question: {first.Query.Trim()}");
    await AnswerAsync(coderAgent, new FusionRequest { Mode = FusionMode.Full, Chunks = [ChunkInput.FromText(first.Chunks[0])], Query = first.Query }, 1); // warm-up
    var byText = await AnswerAsync(coderAgent, new FusionRequest { Mode = FusionMode.Full, Chunks = [ChunkInput.FromText(first.Chunks[0])], Query = first.Query }, maxTokens);
    var byReuse = await AnswerAsync(coderAgent, Shared(first.Query, contextId, RecomputeRanges.None), maxTokens);
    var byShare = await AnswerAsync(coderAgent, Shared(first.Query, contextId, profile.Recompute), maxTokens);

    // Share combined with blend: the sender's KV in every layer, and blend's selection recomputed on the coder.
    var byBlend = await AnswerAsync(coderAgent, Shared(first.Query, contextId, RecomputeRanges.None) with { Mode = FusionMode.Blend, Blend = BlendVariants.Build(BlendedVariant, BlendedRatio) }, maxTokens);
    foreach (var (way, answer) in new[] { ("text handoff", byText), ("full reuse", byReuse), ($"share:{profile.Recompute}", byShare), (Blended, byBlend) })
    {
        Console.WriteLine($"  {way,-30} TTFT {answer.TtftMs,7:F1} ms  {Quote(answer.Text)}");
    }

    // Quality and TTFT over every handoff, against the coder reading the text itself.
    Console.WriteLine();
    Console.WriteLine($"over {cases.Count} handoffs (KL and top-1 over each answer's tokens, against the coder's own prefill of the text):");
    var evaluator = new FusionEvaluator(coderAgent, new FusionEvaluationOptions { Sender = docsAgent, DefaultRecompute = profile.Recompute, TtftRuns = 3 });
    var modes = new[]
    {
        new FusionModeSpec(FusionMode.Full, 0),
        new FusionModeSpec(FusionMode.Share, 0, null, RecomputeRanges.None),
        new FusionModeSpec(FusionMode.Share, 0, null, profile.Recompute),
        FusionModeSpec.Parse(Blended),
    };
    var results = await evaluator.EvaluateAsync(cases, modes);
    Console.WriteLine($"  {"handoff",-30} {"mean KL",8} {"top-1",7} {"TTFT ms",8} {"vs text",8} {"compute",8}");
    var names = new[] { "text", "full reuse", $"share:{profile.Recompute}", Blended };
    for (var i = 0; i < results.Count; i++)
    {
        var r = results[i];
        Console.WriteLine($"  {names[i],-30} {r.MeanKl,8:F4} {r.Top1Agreement,7:P1} {r.TtftMs,8:F1} {r.TtftRatioToFull,7:F2}x {r.ComputeFraction,8:P0}");
    }

    return 0;
}
catch (Exception e) when (e is ArgumentException or KvFusionException or IOException)
{
    Console.Error.WriteLine($"multi-agent: {e.Message}");
    return 1;
}

static async Task<(double TtftMs, string Text)> AnswerAsync(FusionEngine agent, FusionRequest request, int maxTokens)
{
    var started = Stopwatch.GetTimestamp();
    using var context = await agent.FuseAsync(request with { ReserveTokens = maxTokens });
    var ttft = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    var text = new System.Text.StringBuilder();
    await foreach (var token in context.GenerateAsync(new SamplingOptions { Temperature = 0, MaxTokens = maxTokens }))
    {
        text.Append(token.Text);
    }

    return (ttft, text.ToString());
}

static string Name(TransformerModel model) => Path.GetFileName(Path.TrimEndingDirectorySeparator(model.Directory));

static string Quote(string text) => "\"" + text.ReplaceLineEndings(" ").Trim() + "\"";

static string FindUp(string relative)
{
    foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
    }

    throw new FileNotFoundException($"{relative} was not found here, beside the program or in a folder above either; give --profile (kvfusion profile sharing writes one).", relative);
}

static string Value(string[] args, ref int i) =>
    i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");

static int Count(string text, string name) =>
    int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1 ? n : throw new ArgumentException($"{name} must be a whole number of at least 1, got '{text}'.");
