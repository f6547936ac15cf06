using System.CommandLine;
using KvFusion.Cache.Chunking;
using KvFusion.Cache.Evaluation;
using KvFusion.Engine.Models;
using KvFusion.Engine.Tokenization;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion eval cases</c>: generate fusion evaluation cases (chunks from distinct corpus documents, a query that
/// repeats a sentence start of one chunk, the answer that follows it) as JSON lines. See docs/fusion-cases.md.
/// </summary>
internal static class EvalCasesCommand
{
    /// <summary>The corpus looked for above the working directory when --corpus is not given.</summary>
    private const string SharedCorpus = "shared/corpus/pydocs.tar.xz";

    public static Command Create()
    {
        var defaults = new FusionCaseOptions();
        var corpus = new Option<string?>("--corpus")
        {
            Description = "Corpus: a .tar.xz/.tar of .txt/.rst files, or a directory of them (default: ../shared/corpus/pydocs.tar.xz, found upwards from the working directory).",
        };
        var model = new Option<string?>("--model")
        {
            Description = $"Model directory whose tokenizer.json counts the tokens (default: ${ModelDirectory.EnvironmentVariable}, else ../shared/models/tiny-pydocs). Only the tokenizer is loaded.",
        };
        var cases = new Option<int>("--cases") { Description = "Number of cases.", DefaultValueFactory = _ => defaults.Cases };
        var chunks = new Option<int>("--chunks") { Description = "Chunks per case, each from a different document.", DefaultValueFactory = _ => defaults.ChunksPerCase };
        var chunkTokens = new Option<int>("--chunk-tokens") { Description = "Tokens per chunk.", DefaultValueFactory = _ => defaults.ChunkTokens };
        var queryTokens = new Option<int>("--query-tokens") { Description = "Tokens of the query.", DefaultValueFactory = _ => defaults.QueryTokens };
        var answerTokens = new Option<int>("--answer-tokens") { Description = "Tokens of the answer.", DefaultValueFactory = _ => defaults.AnswerTokens };
        var seed = new Option<ulong>("--seed") { Description = "Random seed: the same seed, corpus and tokenizer give the same cases.", DefaultValueFactory = _ => defaults.Seed };
        var prefix = new Option<string?>("--prefix") { Description = "System prompt put before the chunks of every case (default: none)." };
        var handoff = new Option<bool>("--handoff") { Description = "Conversation-handoff cases: each case's texts joined into one segment (what one agent read and hands to another)." };
        var output = new Option<string>("--out") { Description = "Output file (JSON lines, one case per line).", Required = true };
        var command = new Command("cases", "Generate fusion evaluation cases from a corpus as JSON lines.")
        {
            corpus, model, cases, chunks, chunkTokens, queryTokens, answerTokens, seed, prefix, handoff, output,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var options = new FusionCaseOptions
            {
                Cases = parse.GetValue(cases),
                ChunksPerCase = parse.GetValue(chunks),
                ChunkTokens = parse.GetValue(chunkTokens),
                QueryTokens = parse.GetValue(queryTokens),
                AnswerTokens = parse.GetValue(answerTokens),
                Seed = parse.GetValue(seed),
                Prefix = parse.GetValue(prefix),
                Handoff = parse.GetValue(handoff),
            };
            CommonOptions.CheckOptions(options.Validate);
            var corpusPath = ResolveCorpus(parse.GetValue(corpus));
            var modelDir = CommonOptions.ResolveModel(parse.GetValue(model));

            // Cases are text: only the tokenizer is needed to count tokens, so the weights are never loaded.
            using var tokenizer = ModelTokenizer.Load(Path.Combine(modelDir, "tokenizer.json"));
            var outPath = parse.GetValue(output)!;
            IReadOnlyList<CorpusDocument> documents = [];
            IReadOnlyList<FusionCase> generated = [];
            await CommonOptions.Diagnostics.Progress().StartAsync(async ctx =>
            {
                var read = ctx.AddTask($"reading {Markup.Escape(Path.GetFileName(corpusPath))}", maxValue: 1);
                documents = await Task.Run(() => new CorpusReader(corpusPath).ReadAll(ct), ct).ConfigureAwait(false);
                read.Value = 1;
                var task = ctx.AddTask($"{options.Cases} cases × {options.ChunksPerCase} chunks of {options.ChunkTokens} tokens", maxValue: options.Cases);
                var generator = new FusionCaseGenerator(new ModelTokenizerAdapter(tokenizer), options);
                generated = await Task.Run(() => generator.Generate(documents, new CallbackProgress(done => task.Value = done), ct), ct).ConfigureAwait(false);
            }).ConfigureAwait(false);

            FusionCase.WriteJsonLines(outPath, generated);
            CommonOptions.Diagnostics.MarkupLineInterpolated(
                $"[grey]{generated.Count} cases from {documents.Count} documents of {corpusPath}, tokenizer {modelDir}, seed {options.Seed} → {outPath}[/]");
            return 0;
        }));
        return command;
    }

    internal static string ResolveCorpus(string? explicitPath)
    {
        if (!string.IsNullOrWhiteSpace(explicitPath))
        {
            return File.Exists(explicitPath) || Directory.Exists(explicitPath)
                ? Path.GetFullPath(explicitPath)
                : throw new CliException($"Corpus not found: {explicitPath}");
        }

        // Same convention as the default model: ../shared next to the checkout, found from wherever we run.
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, SharedCorpus);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new CliException($"No corpus given. Pass --corpus FILE (a .tar.xz of .txt/.rst files, or a directory), or run from a checkout that has ../{SharedCorpus}.");
    }

    /// <summary>Reports on the generator's thread: Spectre's task value is safe to set from there, and never lags.</summary>
    private sealed class CallbackProgress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}
