using System.ComponentModel.DataAnnotations;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Scheduling;

namespace KvFusion.Server.Hosting;

/// <summary>
/// Settings of the service, section <c>KvFusion</c> (appsettings.json, then environment variables such as
/// <c>KvFusion__Auth__Keys__0__Key</c>, then the command line). Storage is the separate section <c>Storage</c>.
/// </summary>
public sealed class KvFusionServerOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "KvFusion";

    /// <summary>The model folder (Hugging Face layout). Empty: <c>KVFUSION_MODEL</c>, else ../shared/models/tiny-pydocs.</summary>
    public string? Model { get; set; }

    /// <summary>
    /// More models served beside <see cref="Model"/>: fine-tuned agents of its family (same architecture, shapes and
    /// tokenizer, checked at start), each a folder or <c>hf:OWNER/NAME</c>. Requests route by model id (the folder
    /// name), and one agent may fuse the caches another stored (<c>kvfusion.shared_from</c>).
    /// </summary>
    public List<string> Agents { get; set; } = [];

    /// <summary>Cross-model sharing between the served models.</summary>
    public SharingOptions Sharing { get; set; } = new();

    /// <summary>Where document manifests (the chunk list of each document) are kept.</summary>
    public string DocumentsPath { get; set; } = "data/documents";

    /// <summary>API keys and their tenants.</summary>
    public ApiKeyOptions Auth { get; set; } = new();

    /// <summary>Request size and token limits.</summary>
    public RequestLimitOptions Limits { get; set; } = new();

    /// <summary>Rate limit per API key (or per client address when anonymous).</summary>
    public RateLimitOptions RateLimit { get; set; } = new();

    /// <summary>The queue in front of the engine.</summary>
    public RequestQueueOptions Queue { get; set; } = new();

    /// <summary>Blend's quality gate.</summary>
    public QualityGateOptions Quality { get; set; } = new();

    /// <summary>The loading controller.</summary>
    public LoadingControllerOptions Loading { get; set; } = new();
}

/// <summary>Section <c>KvFusion:Loading</c>.</summary>
public sealed class LoadingControllerOptions
{
    /// <summary>
    /// Whether requests with a loading goal (<c>kvfusion.ttft_deadline_ms</c>, <c>max_mean_kl</c>) get the controller;
    /// it chooses from the first lower tier's entry and the levels <c>Storage:TierLevels</c> keeps there.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// The mean KL each lossy codec adds for the served model, as <c>kvfusion bench codec</c> measured it
    /// (<c>"CodecKl": { "cachegen:3": 0.04 }</c>); a lossy level not named here is never chosen.
    /// </summary>
    public Dictionary<string, double> CodecKl { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

/// <summary>Section <c>KvFusion:Quality</c>.</summary>
public sealed class QualityGateOptions
{
    /// <summary>
    /// The floor of blend requests that name none (<c>kvfusion.quality_floor</c>): the largest estimated KL from full
    /// let through; above it the ratio is raised or the request prefilled in full. Empty: estimates are reported,
    /// nothing is gated.
    /// </summary>
    [Range(0, double.MaxValue)]
    public double? Floor { get; set; }

    /// <summary>
    /// A quality calibration file (<c>kvfusion eval fusion --calibrate</c>) for the served model; refused at start
    /// when fitted on another model. Empty: the built-in one (fitted on tiny-pydocs).
    /// </summary>
    public string? Calibration { get; set; }
}

/// <summary>Section <c>KvFusion:Auth</c>.</summary>
public sealed class ApiKeyOptions
{
    /// <summary>The keys. None: only loopback clients are served, as one anonymous tenant.</summary>
    public List<ApiKeyEntry> Keys { get; set; } = [];

    /// <summary>The tenant of anonymous loopback clients when no keys are configured.</summary>
    public string AnonymousTenant { get; set; } = "default";
}

/// <summary>One API key: <c>KvFusion:Auth:Keys:N</c>.</summary>
public sealed class ApiKeyEntry
{
    /// <summary>The secret sent as <c>Authorization: Bearer KEY</c> (at least 16 characters).</summary>
    public string Key { get; set; } = "";

    /// <summary>The tenant whose namespace this key reads and writes.</summary>
    public string Tenant { get; set; } = "";

    /// <summary>May pin and delete chunks of any tenant (with <c>?tenant=</c>).</summary>
    public bool Admin { get; set; }
}

/// <summary>Section <c>KvFusion:Limits</c>.</summary>
public sealed class RequestLimitOptions
{
    /// <summary>Largest JSON request body in bytes.</summary>
    [Range(1024, int.MaxValue)]
    public long MaxRequestBodyBytes { get; set; } = 8L << 20;

    /// <summary>Largest uploaded KV container in bytes.</summary>
    [Range(1024, long.MaxValue)]
    public long MaxKvUploadBytes { get; set; } = 256L << 20;

    /// <summary>Most tokens a completion may generate.</summary>
    [Range(1, 1 << 20)]
    public int MaxCompletionTokens { get; set; } = 2048;

    /// <summary>Tokens generated when a request names no limit.</summary>
    [Range(1, 1 << 20)]
    public int DefaultCompletionTokens { get; set; } = 256;

    /// <summary>Most chunks in one request (chunk creation or fusion).</summary>
    [Range(1, 100_000)]
    public int MaxChunksPerRequest { get; set; } = 256;

    /// <summary>Most messages in one chat request.</summary>
    [Range(1, 100_000)]
    public int MaxMessages { get; set; } = 512;
}

/// <summary>Section <c>KvFusion:RateLimit</c>: a token bucket per key.</summary>
public sealed class RateLimitOptions
{
    /// <summary>Requests a key may make at once before it is limited (the bucket's size).</summary>
    [Range(1, 1_000_000)]
    public int Burst { get; set; } = 200;

    /// <summary>Requests per second the bucket refills with.</summary>
    [Range(1, 1_000_000)]
    public int PerSecond { get; set; } = 100;
}

/// <summary>How the engine runs the requests that hold a place.</summary>
public enum EngineScheduler
{
    /// <summary>Continuous batching: the decode steps of every running request share one forward pass.</summary>
    Batching,

    /// <summary>Each request decodes alone; running requests take turns step by step.</summary>
    Queue,
}

/// <summary>Section <c>KvFusion:Queue</c>.</summary>
public sealed class RequestQueueOptions
{
    /// <summary>Requests running on the engine at once (with batching, the most one step decodes).</summary>
    [Range(1, 1024)]
    public int MaxActive { get; set; } = 64;

    /// <summary>Requests waiting for a place; beyond that the service answers 503 with Retry-After.</summary>
    [Range(0, 100_000)]
    public int Capacity { get; set; } = 64;

    /// <summary>Seconds a 503 tells the client to wait.</summary>
    [Range(1, 3600)]
    public int RetryAfterSeconds { get; set; } = 1;

    /// <summary>How running requests share the engine: <c>Batching</c> (the default) or <c>Queue</c>.</summary>
    public EngineScheduler Scheduler { get; set; } = EngineScheduler.Batching;

    /// <summary>
    /// Bytes of working KV cache (prompt plus max_tokens of every running request, float32 on the backend) a model's
    /// requests may hold together. A request that does not fit waits up to <see cref="KvWaitSeconds"/>, then gets 503
    /// with Retry-After; one larger than the whole budget gets 400.
    /// </summary>
    [Range(1L << 20, long.MaxValue)]
    public long MaxKvBytes { get; set; } = 2L << 30;

    /// <summary>
    /// Prompt tokens one batched step prefills beside its decode tokens. The default keeps the unbatched prefill's chunk
    /// boundaries (answers equal to the queue's); smaller chunks stall running streams less.
    /// </summary>
    [Range(16, 8192)]
    public int PrefillChunkTokens { get; set; } = Engine.Transformer.InferenceSession.DefaultPrefillChunk;

    /// <summary>Seconds a request waits for KV memory before it is refused.</summary>
    [Range(1, 3600)]
    public int KvWaitSeconds { get; set; } = 30;

    /// <summary>The engine settings these options stand for.</summary>
    internal FusionEngineOptions EngineOptions() => new()
    {
        Batching = Scheduler == EngineScheduler.Batching ? new BatchingOptions { MaxSequencesPerStep = MaxActive, PrefillChunkTokens = PrefillChunkTokens } : null,
        MaxSessionKvBytes = MaxKvBytes,
        KvMemoryWait = TimeSpan.FromSeconds(KvWaitSeconds),
    };
}

/// <summary>Section <c>KvFusion:Sharing</c>.</summary>
public sealed class SharingOptions
{
    /// <summary>
    /// Sharing profiles (<c>kvfusion profile sharing</c>) for pairs of served models: a <c>share</c> request that names
    /// no ranges recomputes its pair's profiled ranges, and a sender stores the E-cache only where its profiles start
    /// recomputing. A sender without a profile stores the E-cache of every layer, so any ranges can be asked for.
    /// </summary>
    public List<string> Profiles { get; set; } = [];
}
