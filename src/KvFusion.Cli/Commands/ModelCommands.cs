using System.CommandLine;
using KvFusion.Engine.Models;
using KvFusion.Diagnostics.Synthetic;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary><c>kvfusion model info|init</c>.</summary>
internal static class ModelCommands
{
    public static Command Create()
    {
        var command = new Command("model", "Inspect models or create random-weight models in real shapes.");
        command.Subcommands.Add(Info());
        command.Subcommands.Add(Init());
        return command;
    }

    private static Command Info()
    {
        var dir = new Argument<string?>("DIR") { Description = "Model directory (default: the default model).", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("info", "Print a model's architecture, shapes, dtype, parameter count and fingerprints.") { dir };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(() =>
        {
            using var backend = CommonOptions.CreateBackend("cpu", 1);
            using var m = CommonOptions.LoadModel(parse.GetValue(dir), backend);
            var c = m.Config;
            var table = new Table().AddColumn("property").AddColumn("value").Border(TableBorder.Simple);
            void Row(string k, string v) => table.AddRow(Markup.Escape(k), Markup.Escape(v));
            Row("directory", m.Directory);
            Row("architecture", $"{c.ArchitectureName} ({c.Architecture})");
            Row("layers", c.LayerCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Row("hidden / intermediate", $"{c.HiddenSize} / {c.IntermediateSize}");
            Row("heads / kv heads / head_dim", $"{c.HeadCount} / {c.KvHeadCount} / {c.HeadDim}");
            Row("vocabulary", $"{c.VocabSize}{(m.Tokenizer is { } t ? $" (tokenizer: {t.VocabSize})" : " (no tokenizer)")}");
            Row("context", c.MaxPositionEmbeddings.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Row("rope", $"{c.Rope.RopeType}, theta {c.Rope.Theta}{(c.Rope.RopeType == "llama3" ? $", factor {c.Rope.Factor}" : "")}");
            Row("switches", $"qkv bias {c.QkvBias}, qk norm {c.QkNorm}, tied embeddings {c.TieWordEmbeddings}");
            Row("weights dtype", m.WeightDType.ToString());
            Row("parameters", $"{m.ParameterCount:N0}");
            Row("model fingerprint", m.Fingerprint.Model);
            Row("tokenizer fingerprint", m.Fingerprint.Tokenizer);
            AnsiConsole.Write(table);
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command Init()
    {
        var shape = new Option<string>("--shape") { Description = $"Shape name: {string.Join(", ", ModelShape.Known.Select(s => s.Name))}.", Required = true };
        var output = new Option<string>("--out") { Description = "Output directory (must be empty or absent).", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "f16, bf16 or f32.", DefaultValueFactory = _ => "f16" };
        var seed = new Option<ulong>("--seed") { Description = "Weight seed.", DefaultValueFactory = _ => 0UL };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace a non-empty output directory." };
        var command = new Command("init", "Write a model with deterministic random weights in the real shape of a known model.")
        {
            shape, output, dtype, seed, overwrite,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var s = ModelShape.Get(parse.GetValue(shape)!);
            var dt = parse.GetValue(dtype)!.ToLowerInvariant() switch
            {
                "f16" or "fp16" or "float16" => TensorDType.F16,
                "bf16" or "bfloat16" => TensorDType.BF16,
                "f32" or "fp32" or "float32" => TensorDType.F32,
                var other => throw new CliException($"Unknown dtype '{other}' (f16, bf16, f32)."),
            };
            var options = new SyntheticModelOptions { DType = dt, Seed = parse.GetValue(seed), Overwrite = parse.GetValue(overwrite) };
            var outDir = parse.GetValue(output)!;
            await CommonOptions.Diagnostics.Progress().StartAsync(async ctx =>
            {
                var task = ctx.AddTask($"{s.Name} → {outDir}", maxValue: 1.0);
                var progress = new Progress<double>(v => task.Value = v);
                await Task.Run(() => SyntheticModelWriter.Write(s, outDir, options, progress, ct), ct).ConfigureAwait(false);
                task.Value = 1.0;
            }).ConfigureAwait(false);
            CommonOptions.Diagnostics.MarkupLineInterpolated($"wrote {s.Name} ({s.ParameterCount:N0} parameters, {dt}) to {outDir}");
            return 0;
        }));
        return command;
    }
}
