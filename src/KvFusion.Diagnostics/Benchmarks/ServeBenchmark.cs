using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using KvFusion.Client.Contracts;

namespace KvFusion.Diagnostics.Benchmarks;

/// <summary>A fusion mode as a request names it: <c>blend:0.15</c> (mode blend, recompute ratio 0.15) or <c>full</c>.</summary>
/// <param name="Name">The label in tables and JSON.</param>
/// <param name="Mode">The <c>kvfusion.mode</c> sent.</param>
/// <param name="RecomputeRatio">The <c>kvfusion.recompute_ratio</c> sent (blend only).</param>
public sealed record ServeMode(string Name, string Mode, double? RecomputeRatio)
{
    /// <summary>Full prefill of the whole prompt: the baseline.</summary>
    public static ServeMode Full { get; } = new("full", "full", null);

    /// <summary>Blend recomputing <paramref name="ratio"/> of the chunk tokens.</summary>
    public static ServeMode Blend(double ratio) =>
        new(string.Create(CultureInfo.InvariantCulture, $"blend:{ratio}"), "blend", ratio);
}

/// <summary>One prompt of the workload: stored chunk ids and the user's question.</summary>
public sealed record ServePrompt(IReadOnlyList<string> ChunkIds, string Question);

/// <summary>How long one run of <see cref="ServeBenchmark"/> lasts: a number of requests, or a duration.</summary>
public sealed record ServeBenchmarkOptions
{
    /// <summary>Requests per run, all clients together (null when <see cref="Duration"/> bounds the run).</summary>
    public int? Requests { get; init; } = 32;

    /// <summary>Time during which clients start new requests (null when <see cref="Requests"/> bounds the run).</summary>
    public TimeSpan? Duration { get; init; }

    /// <summary>Hard limit of a run: requests still running then are cancelled and count as errors.</summary>
    public TimeSpan RunCap { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary><c>max_tokens</c> of every request.</summary>
    public int MaxTokens { get; init; } = 16;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range or both bounds (or neither) are set.</exception>
    public void Validate()
    {
        if ((Requests is null) == (Duration is null))
        {
            throw new ArgumentException("Give either a number of requests or a duration per run, not both.");
        }

        if (Requests is < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(Requests)} must be at least 1; got {Requests}."));
        }

        if (Duration is { } d && d <= TimeSpan.Zero)
        {
            throw new ArgumentException($"{nameof(Duration)} must be positive.");
        }

        if (MaxTokens < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(MaxTokens)} must be at least 1; got {MaxTokens}."));
        }
    }
}

/// <summary>What one streamed request did, seen from the client.</summary>
public readonly record struct ServeSample
{
    /// <summary>The client loop that sent it.</summary>
    public int Client { get; init; }

    /// <summary>Milliseconds from sending the request to the first event with answer text (to the finishing event for an empty answer).</summary>
    public double TtftMs { get; init; }

    /// <summary>Milliseconds from sending the request to the end of the stream.</summary>
    public double LatencyMs { get; init; }

    /// <summary>Time per output token after the first: (finish − first token) / (completion tokens − 1); NaN for one token.</summary>
    public double TpotMs { get; init; }

    /// <summary>The server's <c>kvfusion.ttft_ms</c> (from the request's arrival), NaN when not reported.</summary>
    public double ServerTtftMs { get; init; }

    /// <summary>The server's <c>kvfusion.queue_ms</c>, NaN when not reported.</summary>
    public double QueueMs { get; init; }

    /// <summary><c>usage.completion_tokens</c>.</summary>
    public int CompletionTokens { get; init; }

    /// <summary>The server's <c>kvfusion.stage_ms</c> (tokenize, load, compute…), null when not reported.</summary>
    public IReadOnlyDictionary<string, double>? StageMs { get; init; }

    /// <summary>Whether the answer had no text at all.</summary>
    public bool Empty { get; init; }

    /// <summary>Why the request failed, or null.</summary>
    public string? Error { get; init; }
}

/// <summary>One (clients, mode) run.</summary>
public sealed record ServeRunResult
{
    /// <summary>Concurrent client loops.</summary>
    public required int Clients { get; init; }

    /// <summary>The mode's label (<c>blend:0.15</c>, <c>full</c>).</summary>
    public required string Mode { get; init; }

    /// <summary>How the server ran concurrent requests: <c>batching</c> or <c>queue</c>.</summary>
    public string Scheduler { get; init; } = "batching";

    /// <summary>Median time per output token after the first (ms).</summary>
    public double TpotP50Ms { get; init; } = double.NaN;

    /// <summary>Requests finished (successfully or not).</summary>
    public required int Requests { get; init; }

    /// <summary>Requests that failed: a status other than 200, an <c>error</c> event, a broken stream, an exception.</summary>
    public required int Errors { get; init; }

    /// <summary>The first few distinct error messages.</summary>
    public required IReadOnlyList<string> ErrorMessages { get; init; }

    /// <summary>Successful answers with no text (their TTFT is the time to the finishing event).</summary>
    public required int EmptyAnswers { get; init; }

    /// <summary>Client-side TTFT percentiles of the successful requests, ms.</summary>
    public required double TtftP50Ms { get; init; }

    /// <summary>Client-side TTFT, 99th percentile (nearest rank: the maximum below 100 requests), ms.</summary>
    public required double TtftP99Ms { get; init; }

    /// <summary>Median of the server's reported TTFT, ms.</summary>
    public required double ServerTtftP50Ms { get; init; }

    /// <summary>Median of the server's reported queue wait, ms.</summary>
    public required double QueueP50Ms { get; init; }

    /// <summary>Median of the whole request's duration, ms.</summary>
    public required double LatencyP50Ms { get; init; }

    /// <summary>Completion tokens of all requests over the run's wall time.</summary>
    public required double OutputTokensPerSecond { get; init; }

    /// <summary>Completion tokens of all requests.</summary>
    public required long CompletionTokens { get; init; }

    /// <summary>Wall time of the run, s.</summary>
    public required double WallSeconds { get; init; }

    /// <summary>Fewest requests one client finished (fairness across the client loops).</summary>
    public required int RequestsPerClientMin { get; init; }

    /// <summary>Most requests one client finished.</summary>
    public required int RequestsPerClientMax { get; init; }

    /// <summary>Whether the run hit <see cref="ServeBenchmarkOptions.RunCap"/>.</summary>
    public required bool Capped { get; init; }

    /// <summary>Median of each fusion stage the server reported, ms (where the server's TTFT goes).</summary>
    public required IReadOnlyDictionary<string, double> StageP50Ms { get; init; }
}

/// <summary>
/// A bounded load test of the completion endpoint over HTTP: concurrent client loops send streamed chat completions
/// that fuse stored chunks, each awaiting its answer before sending the next, and time the first token as the client
/// sees it. Nothing here knows the server: it talks to a base address, as any client would.
/// </summary>
public static class ServeBenchmark
{
    private const int MaxErrorMessages = 5;

    /// <summary>The body of one streamed request.</summary>
    public static ChatCompletionRequest Request(ServePrompt prompt, ServeMode mode, int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(mode);
        return new ChatCompletionRequest
        {
            Messages = [new ChatMessage { Role = "user", Content = prompt.Question }],
            MaxTokens = maxTokens,
            Temperature = 0,
            Stream = true,
            StreamOptions = new StreamOptions { IncludeUsage = true },
            Kvfusion = new FusionOptions { Chunks = prompt.ChunkIds, Mode = mode.Mode, RecomputeRatio = mode.RecomputeRatio },
        };
    }

    /// <summary>
    /// One run: <paramref name="clients"/> loops send requests (prompts in turn) until the run's bound is reached.
    /// <paramref name="progress"/> receives the number of requests finished after each.
    /// </summary>
    /// <param name="http">A client of the server.</param>
    /// <param name="prompts">The prompts, sent in turn.</param>
    /// <param name="mode">The fusion mode of every request.</param>
    /// <param name="clients">Concurrent client loops.</param>
    /// <param name="options">The bound of the run and max_tokens.</param>
    /// <param name="scheduler">The server's scheduler, recorded in the result.</param>
    /// <param name="progress">Receives the number of requests finished.</param>
    /// <param name="cancellationToken">Stops the run.</param>
    public static async Task<ServeRunResult> RunAsync(HttpClient http, IReadOnlyList<ServePrompt> prompts, ServeMode mode, int clients, ServeBenchmarkOptions options, string scheduler = "batching", IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(mode);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(clients, 1);
        ArgumentOutOfRangeException.ThrowIfZero(prompts.Count);
        options.Validate();

        using var cap = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cap.CancelAfter(options.RunCap);
        var samples = new List<ServeSample>();
        var gate = new Lock();
        var next = -1;
        var wall = Stopwatch.StartNew();
        var stopAt = options.Duration;
        var loops = new Task[clients];
        for (var c = 0; c < clients; c++)
        {
            var client = c;
            loops[c] = Task.Run(async () =>
            {
                while (!cap.IsCancellationRequested)
                {
                    var i = Interlocked.Increment(ref next);
                    if ((options.Requests is { } n && i >= n) || (stopAt is { } d && wall.Elapsed >= d))
                    {
                        return;
                    }

                    var sample = await StreamOnceAsync(http, Request(prompts[i % prompts.Count], mode, options.MaxTokens), cap.Token).ConfigureAwait(false);
                    cancellationToken.ThrowIfCancellationRequested();
                    int done;
                    lock (gate)
                    {
                        samples.Add(sample with { Client = client });
                        done = samples.Count;
                    }

                    progress?.Report(done);
                }
            }, CancellationToken.None);
        }

        await Task.WhenAll(loops).ConfigureAwait(false);
        var seconds = wall.Elapsed.TotalSeconds;
        return Summarize(mode.Name, clients, samples, seconds, cap.IsCancellationRequested && !cancellationToken.IsCancellationRequested) with { Scheduler = scheduler };
    }

    /// <summary>Sends one streamed chat completion and reads its events to the end.</summary>
    public static async Task<ServeSample> StreamOnceAsync(HttpClient http, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        var body = JsonSerializer.SerializeToUtf8Bytes(request, KvFusionJsonContext.Default.ChatCompletionRequest);
        var start = Stopwatch.GetTimestamp();
        double Elapsed() => Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        try
        {
            using var message = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new ByteArrayContent(body) };
            message.Content.Headers.ContentType = new("application/json");
            using var response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                return Failed(string.Create(CultureInfo.InvariantCulture, $"HTTP {(int)response.StatusCode}: {ProblemText(text)}"), Elapsed());
            }

            using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            double ttft = double.NaN;
            double firstToken = double.NaN;
            double finished = double.NaN;
            var done = false;
            ChatCompletionChunk? usage = null;
            FusionUsage? fusion = null;
            await foreach (var item in SseParser.Create(stream).EnumerateAsync(cancellationToken).ConfigureAwait(false))
            {
                if (item.EventType == "error")
                {
                    return Failed("error event: " + ProblemText(item.Data), Elapsed());
                }

                if (item.Data == "[DONE]")
                {
                    done = true;
                    break;
                }

                var chunk = JsonSerializer.Deserialize(item.Data, KvFusionJsonContext.Default.ChatCompletionChunk)
                    ?? throw new JsonException("a null event");
                fusion ??= chunk.Kvfusion;
                if (chunk.Usage is not null)
                {
                    usage = chunk;
                    fusion = chunk.Kvfusion ?? fusion;
                }

                foreach (var choice in chunk.Choices)
                {
                    // The role event is sent when the first token is sampled: the first token's time when tokens have
                    // no text (a random-weight model's ids past its byte-level tokenizer).
                    if (double.IsNaN(firstToken) && choice.Delta.Role is not null)
                    {
                        firstToken = Elapsed();
                    }

                    if (double.IsNaN(ttft) && !string.IsNullOrEmpty(choice.Delta.Content))
                    {
                        ttft = Elapsed();
                    }

                    if (choice.FinishReason is not null && double.IsNaN(finished))
                    {
                        finished = Elapsed();
                    }
                }
            }

            if (!done)
            {
                return Failed("the stream ended without [DONE]", Elapsed());
            }

            if (usage?.Usage is not { } counts)
            {
                return Failed("no usage event although stream_options.include_usage was set", Elapsed());
            }

            var empty = double.IsNaN(ttft);
            var first = !empty ? ttft : double.IsFinite(firstToken) ? firstToken : double.IsNaN(finished) ? Elapsed() : finished;
            return new ServeSample
            {
                TtftMs = first,
                LatencyMs = Elapsed(),
                TpotMs = counts.CompletionTokens > 1 && double.IsFinite(finished) && finished > first ? (finished - first) / (counts.CompletionTokens - 1) : double.NaN,
                ServerTtftMs = fusion?.TtftMs ?? double.NaN,
                QueueMs = fusion?.QueueMs ?? double.NaN,
                CompletionTokens = counts.CompletionTokens,
                StageMs = fusion?.StageMs,
                Empty = empty,
            };
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return Failed("cancelled (the run's time limit was reached)", Elapsed());
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or FormatException)
        {
            return Failed($"{e.GetType().Name}: {e.Message}", Elapsed());
        }
    }

    /// <summary>Percentiles and throughput of one run's samples.</summary>
    public static ServeRunResult Summarize(string mode, int clients, IReadOnlyList<ServeSample> samples, double wallSeconds, bool capped)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var ok = samples.Where(s => s.Error is null).ToList();
        var perClient = new int[clients];
        foreach (var s in samples)
        {
            perClient[s.Client]++;
        }

        var tokens = ok.Sum(s => (long)s.CompletionTokens);
        return new ServeRunResult
        {
            Clients = clients,
            Mode = mode,
            Requests = samples.Count,
            Errors = samples.Count - ok.Count,
            ErrorMessages = samples.Where(s => s.Error is not null).Select(s => s.Error!).Distinct(StringComparer.Ordinal).Take(MaxErrorMessages).ToList(),
            EmptyAnswers = ok.Count(s => s.Empty),
            TtftP50Ms = Percentile(ok.Select(s => s.TtftMs), 0.50),
            TtftP99Ms = Percentile(ok.Select(s => s.TtftMs), 0.99),
            ServerTtftP50Ms = Percentile(ok.Select(s => s.ServerTtftMs), 0.50),
            QueueP50Ms = Percentile(ok.Select(s => s.QueueMs), 0.50),
            LatencyP50Ms = Percentile(ok.Select(s => s.LatencyMs), 0.50),
            TpotP50Ms = Percentile(ok.Select(s => s.TpotMs), 0.50),
            OutputTokensPerSecond = wallSeconds > 0 ? tokens / wallSeconds : double.NaN,
            CompletionTokens = tokens,
            WallSeconds = wallSeconds,
            RequestsPerClientMin = perClient.Min(),
            RequestsPerClientMax = perClient.Max(),
            Capped = capped,
            StageP50Ms = ok.Where(s => s.StageMs is not null).SelectMany(s => s.StageMs!).GroupBy(kv => kv.Key, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => Percentile(g.Select(kv => kv.Value), 0.50), StringComparer.Ordinal),
        };
    }

    /// <summary>Nearest-rank percentile of the finite values; NaN when there are none.</summary>
    public static double Percentile(IEnumerable<double> values, double q)
    {
        ArgumentNullException.ThrowIfNull(values);
        var sorted = values.Where(double.IsFinite).Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
    }

    /// <summary>Writes the runs as the <c>runs</c> array of the open object, with full/blend ratios of the same clients value.</summary>
    public static void WriteRuns(Utf8JsonWriter writer, IReadOnlyList<ServeRunResult> runs, string baselineMode)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(runs);
        writer.WriteStartArray("runs");
        foreach (var r in runs)
        {
            writer.WriteStartObject();
            writer.WriteNumber("clients", r.Clients);
            writer.WriteString("mode", r.Mode);
            writer.WriteString("scheduler", r.Scheduler);
            writer.WriteNumber("requests", r.Requests);
            writer.WriteNumber("errors", r.Errors);
            Number(writer, "ttft_p50_ms", r.TtftP50Ms, 3);
            Number(writer, "ttft_p99_ms", r.TtftP99Ms, 3);
            Number(writer, "server_ttft_p50_ms", r.ServerTtftP50Ms, 3);
            Number(writer, "server_queue_p50_ms", r.QueueP50Ms, 3);
            Number(writer, "latency_p50_ms", r.LatencyP50Ms, 3);
            Number(writer, "tpot_p50_ms", r.TpotP50Ms, 3);
            Number(writer, "output_tokens_per_s", r.OutputTokensPerSecond, 2);
            writer.WriteNumber("completion_tokens", r.CompletionTokens);
            writer.WriteNumber("wall_s", Math.Round(r.WallSeconds, 3));
            writer.WriteNumber("empty_answers", r.EmptyAnswers);
            writer.WriteNumber("requests_per_client_min", r.RequestsPerClientMin);
            writer.WriteNumber("requests_per_client_max", r.RequestsPerClientMax);
            writer.WriteBoolean("capped", r.Capped);
            if (r.Mode != baselineMode && Baseline(runs, r, baselineMode) is { } b)
            {
                Number(writer, "ttft_p50_ratio_full_to_mode", b.TtftP50Ms / r.TtftP50Ms, 3);
                Number(writer, "ttft_p99_ratio_full_to_mode", b.TtftP99Ms / r.TtftP99Ms, 3);
            }

            if (r.Scheduler != QueueScheduler && QueueBaseline(runs, r) is { } q)
            {
                Number(writer, "ttft_p99_ratio_batching_to_queue", r.TtftP99Ms / q.TtftP99Ms, 3);
                Number(writer, "output_tokens_per_s_ratio_batching_to_queue", r.OutputTokensPerSecond / q.OutputTokensPerSecond, 3);
            }

            writer.WriteStartObject("server_stage_p50_ms");
            foreach (var (stage, ms) in r.StageP50Ms)
            {
                Number(writer, stage, ms, 3);
            }

            writer.WriteEndObject();
            writer.WriteStartArray("error_messages");
            foreach (var e in r.ErrorMessages)
            {
                writer.WriteStringValue(e);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    /// <summary>The scheduler name of the one-request-at-a-time baseline.</summary>
    public const string QueueScheduler = "queue";

    /// <summary>The baseline mode's run with the clients and scheduler of <paramref name="run"/>, if there is one.</summary>
    public static ServeRunResult? Baseline(IReadOnlyList<ServeRunResult> runs, ServeRunResult run, string baselineMode)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(run);
        return runs.FirstOrDefault(b => b.Clients == run.Clients && b.Mode == baselineMode && b.Scheduler == run.Scheduler);
    }

    /// <summary>The queue scheduler's run with the clients and mode of <paramref name="run"/>, if there is one.</summary>
    public static ServeRunResult? QueueBaseline(IReadOnlyList<ServeRunResult> runs, ServeRunResult run)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(run);
        return runs.FirstOrDefault(b => b.Clients == run.Clients && b.Mode == run.Mode && b.Scheduler == QueueScheduler);
    }

    private static void Number(Utf8JsonWriter writer, string name, double value, int digits)
    {
        if (double.IsFinite(value))
        {
            writer.WriteNumber(name, Math.Round(value, digits));
        }
        else
        {
            writer.WriteNull(name);
        }
    }

    private static ServeSample Failed(string error, double elapsedMs) =>
        new() { Error = error, TtftMs = double.NaN, LatencyMs = elapsedMs, TpotMs = double.NaN, ServerTtftMs = double.NaN, QueueMs = double.NaN };

    /// <summary>The title and detail of a ProblemDetails body, else the body's start.</summary>
    private static string ProblemText(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var sb = new StringBuilder();
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (var name in (ReadOnlySpan<string>)["title", "detail"])
                {
                    if (doc.RootElement.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String)
                    {
                        sb.Append(sb.Length > 0 ? ": " : "").Append(v.GetString());
                    }
                }
            }

            if (sb.Length > 0)
            {
                return sb.ToString();
            }
        }
        catch (JsonException)
        {
            // Not JSON: the raw text says what it says.
        }

        return body.Length <= 200 ? body : body[..200] + "…";
    }
}
