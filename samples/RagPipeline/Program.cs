// The RAG pipeline on KvFusion, standalone: ingest ten pages of the Python docs (chunk, precompute each chunk's KV
// cache, embed with MiniLM, store the records), then answer questions from the retrieved chunks twice, with a full
// prefill and with CacheBlend, and compare the time to first token and the answers.
//
//   dotnet run -c Release --project samples/RagPipeline -- [--model DIR] [--store DIR] [--corpus PATH]
//       [--questions N] [--top K] [--max-tokens N] [--json FILE] [--plot FILE] [--short]
//
// --short asks 2 questions with 16 tokens each (what the tests run). The store (default ./data) keeps the chunk
// caches (host memory over RocksDB) and the chunk records (./data/vectors): a second run computes nothing.
using System.Globalization;
using KvFusion.Diagnostics.Rag;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Errors;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;
using KvFusion.Storage.Hosting;
using KvFusion.Storage.RocksDb;
using Spectre.Console;

string? model = null;
string? corpus = null;
var store = RocksDbTierOptions.DefaultPath;
var questions = RagDemoSet.Questions.Count;
var top = 4;
var maxTokens = 32;
string? json = null;
string? plot = null;
try
{
    for (var i = 0; i < args.Length; i++)
    {
        switch (args[i])
        {
            case "--model": model = Value(args, ref i); break;
            case "--store": store = Value(args, ref i); break;
            case "--corpus": corpus = Value(args, ref i); break;
            case "--questions": questions = Number(args, ref i); break;
            case "--top": top = Number(args, ref i); break;
            case "--max-tokens": maxTokens = Number(args, ref i); break;
            case "--json": json = Value(args, ref i); break;
            case "--plot": plot = Value(args, ref i); break;
            case "--short":
                questions = 2;
                maxTokens = 16;
                break;
            default: throw new ArgumentException($"Unknown argument '{args[i]}'. Options: --model --store --corpus --questions --top --max-tokens --json --plot --short.");
        }
    }

    if (questions < 1 || questions > RagDemoSet.Questions.Count)
    {
        throw new ArgumentException($"--questions must be from 1 to {RagDemoSet.Questions.Count}, got {questions}.");
    }

    var options = new RagPipelineOptions
    {
        CorpusPath = corpus,
        Questions = [.. RagDemoSet.Questions.Take(questions)],
        Top = top,
        MaxTokens = maxTokens,
    };
    options.Validate();

    // Results on standard output; progress on standard error, so the output can be piped or saved.
    if (Console.IsOutputRedirected)
    {
        AnsiConsole.Profile.Width = 200;
    }

    var progress = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
    using var backend = new CpuBackend();
    using var loaded = TransformerModel.Load(ModelDirectory.Resolve(model), backend);
    var storageOptions = new KvStorageOptions { Tiers = "rocksdb", RocksDb = new RocksDbTierOptions { Path = store } };
    await using var storage = await KvStorage.OpenAsync(storageOptions);
    var report = await RagDemo.RunAsync(loaded, storage, options, new RagDemoFiles(store, json, plot), AnsiConsole.Console, progress);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Done: {report.Summary.Questions} questions, mean speedup {report.Summary.MeanSpeedup:0.00}x."));
    return 0;
}
catch (Exception e) when (e is ArgumentException or KvFusionException or FileNotFoundException or IOException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

static string Value(string[] args, ref int i) =>
    i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");

static int Number(string[] args, ref int i)
{
    var name = args[i];
    var text = Value(args, ref i);
    return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)
        ? n
        : throw new ArgumentException($"{name} takes a whole number, got '{text}'.");
}
