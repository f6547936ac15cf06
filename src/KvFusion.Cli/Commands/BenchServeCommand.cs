using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using KvFusion.Cache.Chunking;
using KvFusion.Cache.Evaluation;
using KvFusion.Cli.Plotting;
using KvFusion.Client.Contracts;
using KvFusion.Diagnostics.Benchmarks;
using KvFusion.Engine.Models;
using KvFusion.Engine.Tokenization;
using KvFusion.Server.Hosting;
using KvFusion.Storage.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion bench serve</c>: a bounded load test of the service. Starts the real server in this process on a free
/// loopback port (RocksDB in a temporary folder), stores the chunks of a RAG workload from the corpus, then for each
/// client count runs concurrent streamed chat completions in blend and in full mode, the full-prefill baseline measured
/// in the same run, and reports client-side TTFT percentiles, the server's own TTFT, time per output token and output
/// tokens/s (<see cref="ServeBenchmark"/>). Each scheduler (<c>--scheduler</c>: continuous batching, and the queue that
/// decodes requests in turn) gets a server of its own, one after the other in the same process.
/// </summary>
internal static class BenchServeCommand
{
    /// <summary>Chunks per prompt: the RAG shape the fusion is for.</summary>
    private const int ChunksPerPrompt = 6;

    /// <summary>Distinct prompts, sent in turn so that requests are not all the same.</summary>
    private const int Prompts = 8;

    private const double BlendRatio = 0.15;

    /// <summary>A run that has not finished by then is stopped, its unfinished requests counted as errors.</summary>
    private static readonly TimeSpan RunCap = TimeSpan.FromMinutes(10);

    private static readonly ServeMode[] Modes = [ServeMode.Full, ServeMode.Blend(BlendRatio)];

    public static Command Create()
    {
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var corpus = new Option<string?>("--corpus") { Description = "Corpus the chunks and questions come from (default: ../shared/corpus/pydocs.tar.xz, found upwards from the working directory)." };
        var clients = new Option<string>("--clients") { Description = "Comma-separated numbers of concurrent clients.", DefaultValueFactory = _ => "1,4,16" };
        var requests = new Option<int?>("--requests") { Description = "Requests per run, all clients together (default 32; or use --duration)." };
        requests.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is < 1 and var n)
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"--requests must be at least 1, got {n}."));
            }
        });
        var duration = new Option<double?>("--duration") { Description = "Seconds per run during which clients start requests (instead of --requests)." };
        duration.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<double?>() is { } s && !(s > 0 && s <= RunCap.TotalSeconds))
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"--duration must be more than 0 and at most {RunCap.TotalSeconds} seconds, got {s}."));
            }
        });
        var maxTokens = new Option<int>("--max-tokens") { Description = "max_tokens of every request.", DefaultValueFactory = _ => 16 }.Between(1, 2048);
        var chunkTokens = new Option<int>("--chunk-tokens") { Description = "Tokens per chunk (6 chunks per prompt).", DefaultValueFactory = _ => 256 }.AtLeast(16);
        var json = new Option<string?>("--json") { Description = "Write the results as JSON to this file." };
        var plot = new Option<string?>("--plot") { Description = "Write a plot (PNG) of TTFT, and of output tokens/s and p99 TTFT by scheduler, against clients to this file (default: the --json path with .png, else bench-serve.png)." };
        var queueActive = new Option<int>("--queue-active") { Description = "Requests the queue scheduler runs at once, taking turns step by step (1: one request at a time, the service before batching).", DefaultValueFactory = _ => 1 }.Between(1, 1024);
        var schedulers = new Option<string>("--scheduler") { Description = "Comma-separated schedulers to compare, each on a server of its own: queue (requests decode in turn), batching (continuous batching).", DefaultValueFactory = _ => "queue,batching" };
        var command = new Command("serve", "Load test of the service in this process: concurrent streamed chat completions over loopback HTTP, blend against full prefill and batching against the queue in the same run; TTFT p50/p99, time per output token and output tokens/s per client count.")
        {
            model, threads, device, corpus, clients, requests, duration, maxTokens, chunkTokens, schedulers, queueActive, json, plot,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var clientCounts = BenchCommands.ParseList(parse.GetValue(clients)!, "--clients");
            var schedulerNames = ParseSchedulers(parse.GetValue(schedulers)!);
            if (clientCounts.Max() > 1024)
            {
                throw new CliException("--clients: at most 1024 clients.");
            }

            var requestCount = parse.GetValue(requests);
            var seconds = parse.GetValue(duration);
            if (requestCount is not null && seconds is not null)
            {
                throw new CliException("--requests and --duration both bound a run: give one of them.");
            }

            var options = new ServeBenchmarkOptions
            {
                Requests = seconds is null ? requestCount ?? 32 : null,
                Duration = seconds is { } s ? TimeSpan.FromSeconds(s) : null,
                MaxTokens = parse.GetValue(maxTokens),
                RunCap = RunCap,
            };
            CommonOptions.CheckOptions(options.Validate);
            var size = parse.GetValue(chunkTokens);
            var corpusPath = EvalCasesCommand.ResolveCorpus(parse.GetValue(corpus));
            var modelDir = CommonOptions.ResolveModel(parse.GetValue(model));
            var deviceName = parse.GetValue(device)!;
            var threadCount = parse.GetValue(threads);
            string deviceDescription;
            using (var probe = CommonOptions.CreateBackend(deviceName, threadCount))
            {
                // Fails here, with the command's own message, on a device that is not there.
                deviceDescription = probe.DeviceName;
            }

            var jsonPath = parse.GetValue(json);
            var plotPath = parse.GetValue(plot) ?? (jsonPath is null ? "bench-serve.png" : Path.ChangeExtension(jsonPath, ".png"));
            var setup = new Setup(modelDir, corpusPath, size, clientCounts, options, parse.GetValue(queueActive));
            var runs = new List<ServeRunResult>();
            double? loadBefore = null;
            double? loadAfter = null;
            var root = Path.Combine(Path.GetTempPath(), "kvfusion-bench-serve-" + Guid.NewGuid().ToString("N"));
            try
            {
                await CommonOptions.Diagnostics.Progress().StartAsync(async ctx =>
                {
                    foreach (var scheduler in schedulerNames)
                    {
                        var start = ctx.AddTask($"starting the server ({scheduler})", maxValue: 1);
                        var app = Build(Path.Combine(root, scheduler), setup, scheduler, () => CommonOptions.CreateBackend(deviceName, threadCount));
                        await using (app.ConfigureAwait(false))
                        {
                            await app.StartAsync(ct).ConfigureAwait(false);
                            try
                            {
                                start.Value = 1;
                                var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
                                using var http = CreateClient(address, clientCounts.Max());
                                var prompts = await PrepareAsync(http, setup, ctx, ct).ConfigureAwait(false);
                                await WarmUpAsync(http, prompts, options.MaxTokens, ct).ConfigureAwait(false);
                                loadBefore ??= LoadAverage();
                                foreach (var c in clientCounts)
                                {
                                    foreach (var mode in Modes)
                                    {
                                        var label = string.Create(CultureInfo.InvariantCulture, $"{scheduler}, {c} clients, {mode.Name}");
                                        var task = ctx.AddTask(label, maxValue: options.Requests ?? 1);
                                        var started = DateTime.UtcNow;
                                        var progress = new CallbackProgress(done =>
                                        {
                                            task.Description = string.Create(CultureInfo.InvariantCulture, $"{label}: {done} requests");
                                            task.Value = options.Requests is null ? Math.Min(1, (DateTime.UtcNow - started) / options.Duration!.Value) : done;
                                        });
                                        runs.Add(await ServeBenchmark.RunAsync(http, prompts, mode, c, options, scheduler, progress, ct).ConfigureAwait(false));
                                        task.Value = task.MaxValue;
                                    }
                                }

                                loadAfter = LoadAverage();
                            }
                            finally
                            {
                                // Ctrl+C or a failure still stops the server (and its model and store) before the folder goes.
                                using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                                await app.StopAsync(stopping.Token).ConfigureAwait(false);
                            }
                        }
                    }
                }).ConfigureAwait(false);
            }
            catch (OptionsValidationException e)
            {
                throw new CliException("invalid settings: " + string.Join(" ", e.Failures));
            }
            finally
            {
                TryDelete(root);
            }

            WriteTable(runs, setup, deviceDescription);
            if (loadBefore is { } lb && loadAfter is { } la)
            {
                AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"[grey]load average (1 min) of the machine: {lb:F2} before the runs, {la:F2} after, on {Environment.ProcessorCount} cores (this process alone keeps it near the thread count; more means other work shared the cores).[/]"));
            }

            if (jsonPath is not null)
            {
                WriteJson(jsonPath, setup, deviceDescription, threadCount, runs, loadBefore, loadAfter);
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {jsonPath}[/]");
            }

            FusionCharts.ServeByClients(
                plotPath,
                $"{Path.GetFileName(modelDir)}: {ChunksPerPrompt} chunks of {size} tokens, max_tokens {options.MaxTokens}",
                runs.Select(r => new ClientServePoint(string.Create(CultureInfo.InvariantCulture, $"{r.Scheduler} {r.Mode}"), r.Clients, r.TtftP50Ms, r.TtftP99Ms, r.OutputTokensPerSecond)).ToList());
            CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {plotPath}[/]");
            var failed = runs.Where(r => r.Errors > 0).ToList();
            if (failed.Count > 0)
            {
                var first = failed[0];
                throw new CliException(string.Create(CultureInfo.InvariantCulture,
                    $"{failed.Sum(r => r.Errors)} requests failed in {failed.Count} runs; first ({first.Clients} clients, {first.Mode}): {(first.ErrorMessages.Count > 0 ? first.ErrorMessages[0] : "")}"));
            }

            return 0;
        }));
        return command;
    }

    /// <summary>What every run shares: the model, the corpus, the chunk size, the client counts and the bound of a run.</summary>
    private sealed record Setup(string Model, string Corpus, int ChunkTokens, int[] Clients, ServeBenchmarkOptions Options, int QueueActive);

    private static string[] ParseSchedulers(string text)
    {
        var names = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0 || names.Any(n => n is not ("queue" or "batching")) || names.Distinct(StringComparer.Ordinal).Count() != names.Length)
        {
            throw new CliException($"--scheduler takes queue and/or batching, each once, comma-separated; got '{text}'.");
        }

        return names;
    }

    private static WebApplication Build(string root, Setup setup, string scheduler, ComputeBackendFactory backends)
    {
        var most = setup.Clients.Max();
        var overrides = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            // Port 0: the system picks a free one, read back once Kestrel listens, so nothing can take it in between.
            [WebHostDefaults.ServerUrlsKey] = "http://127.0.0.1:0",
            [$"{KvFusionServerOptions.SectionName}:Model"] = setup.Model,
            [$"{KvFusionServerOptions.SectionName}:DocumentsPath"] = Path.Combine(root, "documents"),
            [$"{KvFusionServerOptions.SectionName}:Queue:MaxActive"] = (scheduler == ServeBenchmark.QueueScheduler ? setup.QueueActive : most).ToString(CultureInfo.InvariantCulture),
            [$"{KvFusionServerOptions.SectionName}:Queue:Capacity"] = (2 * most).ToString(CultureInfo.InvariantCulture),
            [$"{KvFusionServerOptions.SectionName}:Queue:Scheduler"] = scheduler,
            [$"{KvFusionServerOptions.SectionName}:RateLimit:Burst"] = "1000000",
            [$"{KvFusionServerOptions.SectionName}:RateLimit:PerSecond"] = "1000000",
            [$"{KvFusionServerOptions.SectionName}:Limits:MaxCompletionTokens"] = Math.Max(2048, setup.Options.MaxTokens).ToString(CultureInfo.InvariantCulture),
            [$"{KvStorageOptions.SectionName}:Tiers"] = "rocksdb",
            [$"{KvStorageOptions.SectionName}:RocksDb:Path"] = Path.Combine(root, "rocksdb"),
        };

        // The content root is the empty temporary folder: no appsettings.json of the working directory changes the setup.
        Directory.CreateDirectory(root);
        return KvFusionServerHost.Build(overrides, backends, root, builder =>
        {
            // Request logs would interleave with the progress display; warnings go to standard error.
            builder.Logging.ClearProviders();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        });
    }

    private static HttpClient CreateClient(string address, int clients)
    {
#pragma warning disable CA2000 // The client owns and disposes the handler.
        var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(64, 2 * clients), PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) };
#pragma warning restore CA2000
        // Each run has its own hard cap; the client's 100 s default would fail slow queued requests before it.
        return new HttpClient(handler, disposeHandler: true) { BaseAddress = new Uri(address.TrimEnd('/') + "/"), Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Reads the corpus, makes the prompts' chunks and questions, and stores the chunks (untimed).</summary>
    private static async Task<List<ServePrompt>> PrepareAsync(HttpClient http, Setup setup, ProgressContext ctx, CancellationToken ct)
    {
        var read = ctx.AddTask($"reading {Markup.Escape(Path.GetFileName(setup.Corpus))}", maxValue: 1);
        var documents = await Task.Run(() => new CorpusReader(setup.Corpus).ReadAll(ct), ct).ConfigureAwait(false);
        IReadOnlyList<FusionCase> cases;
        using (var tokenizer = ModelTokenizer.Load(Path.Combine(setup.Model, "tokenizer.json")))
        {
            // Only the question is asked (the answer is not checked), so one answer token leaves the most room for it.
            var caseOptions = new FusionCaseOptions
            {
                Cases = Prompts,
                ChunksPerCase = ChunksPerPrompt,
                ChunkTokens = setup.ChunkTokens,
                QueryTokens = Math.Min(12, setup.ChunkTokens / 2),
                AnswerTokens = 1,
            };
            cases = await Task.Run(() => new FusionCaseGenerator(new ModelTokenizerAdapter(tokenizer), caseOptions).Generate(documents, null, ct), ct).ConfigureAwait(false);
        }

        read.Value = 1;
        var store = ctx.AddTask($"storing {Prompts} × {ChunksPerPrompt} chunks of {setup.ChunkTokens} tokens", maxValue: cases.Count);
        var prompts = new List<ServePrompt>(cases.Count);
        foreach (var c in cases)
        {
            var body = new CreateChunksRequest { Chunks = c.Chunks.Select(t => new ChunkSource { Text = t }).ToList() };
            using var response = await http.PostAsJsonAsync("v1/chunks", body, KvFusionJsonContext.Default.CreateChunksRequest, ct).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK && response.StatusCode != HttpStatusCode.Created)
            {
                var problem = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
                throw new CliException(string.Create(CultureInfo.InvariantCulture, $"the server refused the workload's chunks: HTTP {(int)response.StatusCode} {problem}"));
            }

            var stored = await response.Content.ReadFromJsonAsync(KvFusionJsonContext.Default.CreateChunksResponse, ct).ConfigureAwait(false);
            prompts.Add(new ServePrompt(stored!.Chunks.Select(i => i.Id).ToList(), c.Query));
            store.Increment(1);
        }

        return prompts;
    }

    /// <summary>
    /// One untimed request per prompt and mode: the first requests of a process compile the HTTP and JSON code paths,
    /// and a workload the server cannot serve (prompt beyond the context…) fails here with the server's reason.
    /// </summary>
    private static async Task WarmUpAsync(HttpClient http, List<ServePrompt> prompts, int maxTokens, CancellationToken ct)
    {
        foreach (var mode in Modes)
        {
            foreach (var p in prompts.Take(2))
            {
                var sample = await ServeBenchmark.StreamOnceAsync(http, ServeBenchmark.Request(p, mode, maxTokens), ct).ConfigureAwait(false);
                ct.ThrowIfCancellationRequested();
                if (sample.Error is { } error)
                {
                    throw new CliException($"the warm-up request ({mode.Name}) failed: {error}");
                }
            }
        }
    }

    private static void WriteTable(List<ServeRunResult> runs, Setup setup, string device)
    {
        static string F(double v, string format) => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "n/a";
        var bound = setup.Options.Requests is { } n
            ? string.Create(CultureInfo.InvariantCulture, $"{n} requests per run")
            : string.Create(CultureInfo.InvariantCulture, $"{setup.Options.Duration!.Value.TotalSeconds:0.#} s per run");
        var table = new Table()
            .Title(string.Create(CultureInfo.InvariantCulture, $"serve: {Path.GetFileName(setup.Model)} on {device}, {ChunksPerPrompt} chunks of {setup.ChunkTokens} tokens, max_tokens {setup.Options.MaxTokens}, {bound}, {Environment.ProcessorCount} cores"))
            .AddColumns("scheduler", "clients", "mode", "requests", "errors", "TTFT p50 ms", "TTFT p99 ms", "server TTFT p50 ms", "queue p50 ms", "TPOT p50 ms", "output tok/s", "full / mode p50", "full / mode p99", "queue / batching p99", "batching / queue tok/s", "per client");
        foreach (var r in runs)
        {
            var b = r.Mode == ServeMode.Full.Name ? null : ServeBenchmark.Baseline(runs, r, ServeMode.Full.Name);
            var q = r.Scheduler == ServeBenchmark.QueueScheduler ? null : ServeBenchmark.QueueBaseline(runs, r);
            table.AddRow(
                r.Scheduler, r.Clients.ToString(CultureInfo.InvariantCulture), r.Mode, r.Requests.ToString(CultureInfo.InvariantCulture),
                r.Errors > 0 ? $"[red]{r.Errors}[/]" : "0",
                F(r.TtftP50Ms, "F1"), F(r.TtftP99Ms, "F1"), F(r.ServerTtftP50Ms, "F1"), F(r.QueueP50Ms, "F1"), F(r.TpotP50Ms, "F2"), F(r.OutputTokensPerSecond, "F1"),
                b is null ? "[grey]baseline[/]" : F(b.TtftP50Ms / r.TtftP50Ms, "F2") + "x",
                b is null ? "[grey]baseline[/]" : F(b.TtftP99Ms / r.TtftP99Ms, "F2") + "x",
                q is null ? "[grey]baseline[/]" : F(q.TtftP99Ms / r.TtftP99Ms, "F2") + "x",
                q is null ? "[grey]baseline[/]" : F(r.OutputTokensPerSecond / q.OutputTokensPerSecond, "F2") + "x",
                string.Create(CultureInfo.InvariantCulture, $"{r.RequestsPerClientMin}..{r.RequestsPerClientMax}"));
        }

        AnsiConsole.Write(table);
        foreach (var r in runs.Where(r => r.Errors > 0))
        {
            AnsiConsole.MarkupLineInterpolated($"[red]{r.Clients} clients, {r.Mode}: {r.Errors} errors: {string.Join(" | ", r.ErrorMessages)}[/]");
        }

        if (runs.Sum(r => r.EmptyAnswers) is > 0 and var empty)
        {
            AnsiConsole.MarkupLineInterpolated($"[yellow]{empty} answers had no text (a random-weight model samples ids past its byte-level tokenizer): their TTFT is the time to the first event, sent when the first token is sampled.[/]");
        }

        AnsiConsole.MarkupLine("[grey]TTFT is client-side: from sending the request to the first event with answer text, over loopback HTTP. Server TTFT is the service's kvfusion.ttft_ms (from the request's arrival); queue is its wait for a place on the engine. p99 is the nearest rank (the slowest request below 100). TPOT: time per output token after the first, from the first answer text to the finishing event. Output tok/s: completion tokens of the run over its wall time. Queue / batching: the queue scheduler's run at the same clients and mode over this one. Per client: fewest..most requests one client finished.[/]");
    }

    private static void WriteJson(string path, Setup setup, string device, int? threads, List<ServeRunResult> runs, double? loadBefore, double? loadAfter)
    {
        using var report = JsonReport.Create(path, Path.GetFileName(setup.Model), device);
        var w = report.Writer;
        w.WriteNumber("chunk_tokens", setup.ChunkTokens);
        w.WriteNumber("chunks_per_prompt", ChunksPerPrompt);
        w.WriteNumber("prompts", Prompts);
        w.WriteNumber("max_tokens", setup.Options.MaxTokens);
        if (setup.Options.Requests is { } n)
        {
            w.WriteNumber("requests_per_run", n);
        }
        else
        {
            w.WriteNumber("duration_s", setup.Options.Duration!.Value.TotalSeconds);
        }

        w.WriteNumber("machine_cores", Environment.ProcessorCount);
        if (threads is { } t)
        {
            w.WriteNumber("threads", t);
        }
        else
        {
            w.WriteNull("threads");
        }

        foreach (var (name, value) in new[] { ("load_average_1m_before", loadBefore), ("load_average_1m_after", loadAfter) })
        {
            if (value is { } v)
            {
                w.WriteNumber(name, v);
            }
        }

        w.WriteNumber("queue_max_active", setup.QueueActive);
        w.WriteNumber("batching_max_active", setup.Clients.Max());
        w.WriteStartArray("schedulers");
        foreach (var name in runs.Select(r => r.Scheduler).Distinct(StringComparer.Ordinal))
        {
            w.WriteStringValue(name);
        }

        w.WriteEndArray();
        w.WriteString("baseline_mode", ServeMode.Full.Name);
        w.WriteString("ttft", "client-side, from sending the request to the first SSE event with answer text (or, when the tokens have no text, the first event, sent at the first token), over loopback HTTP");
        w.WriteString("tpot", "client-side, (finish event - first token) / (completion tokens - 1)");
        ServeBenchmark.WriteRuns(w, runs, ServeMode.Full.Name);
    }

    /// <summary>
    /// Reports on the client loop's thread at once (Spectre's task value is safe to set from there): Progress&lt;T&gt;
    /// would post to the thread pool, where counts can arrive out of order.
    /// </summary>
    private sealed class CallbackProgress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }

    /// <summary>The 1-minute load average (Linux), to tell a run on a busy machine from one on an idle one.</summary>
    private static double? LoadAverage()
    {
        try
        {
            var text = File.ReadAllText("/proc/loadavg");
            var first = text.Split(' ', 2)[0];
            return double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void TryDelete(string root)
    {
        try
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
        catch (IOException e)
        {
            CommonOptions.Diagnostics.MarkupLineInterpolated($"[yellow]could not remove {root}: {e.Message}[/]");
        }
    }
}
