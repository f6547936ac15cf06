using System.CommandLine;
using KvFusion.Diagnostics.Rag;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion demo</c>: the RAG pipeline end to end on the default model and the embedded store: ingest ten pages of
/// the shared corpus (chunk, precompute, embed, store), then answer questions from retrieved chunks with a full prefill
/// and with blend, and compare their time to first token and their answers. A second run reuses what the first stored.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var store = StorageOptions.Store();
        var corpus = new Option<string?>("--corpus") { Description = "The corpus archive or folder (default: ../shared/corpus/pydocs.tar.xz)." };
        var questions = new Option<int>("--questions")
        {
            Description = $"How many of the {RagDemoSet.Questions.Count} questions to ask.",
            DefaultValueFactory = _ => RagDemoSet.Questions.Count,
        }.Between(1, RagDemoSet.Questions.Count);
        var top = new Option<int>("--top") { Description = "Chunks retrieved per question.", DefaultValueFactory = _ => 4 }.Between(1, 32);
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens per answer (greedy).", DefaultValueFactory = _ => 32 }.Between(1, 1024);
        var json = new Option<string?>("--json") { Description = "Write the report as JSON to this file." };
        var plot = new Option<string?>("--plot") { Description = "Write the TTFT chart (PNG) to this file." };
        var command = new Command("demo", "The RAG demo: ingest pages of the corpus, then answer questions with full prefill and with blend, comparing TTFT and answers.")
        {
            model, threads, device, store, corpus, questions, top, maxTokens, json, plot,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var options = new RagPipelineOptions
            {
                CorpusPath = parse.GetValue(corpus),
                Questions = [.. RagDemoSet.Questions.Take(parse.GetValue(questions))],
                Top = parse.GetValue(top),
                MaxTokens = parse.GetValue(maxTokens),
            };
            CommonOptions.CheckOptions(options.Validate);

            // A missing corpus is reported before the model and the store are opened.
            _ = RagDemoSet.FindCorpus(options.CorpusPath);
            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            await using var storage = await StorageOptions.OpenAsync(parse.GetValue(store), null, ct).ConfigureAwait(false);
            var files = new RagDemoFiles(storage.Options.RocksDb.Path, parse.GetValue(json), parse.GetValue(plot));
            await RagDemo.RunAsync(m, storage, options, files, AnsiConsole.Console, CommonOptions.Diagnostics, CommonOptions.Logs, ct).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }
}
