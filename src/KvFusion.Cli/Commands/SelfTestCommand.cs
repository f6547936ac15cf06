using System.CommandLine;
using System.Globalization;
using KvFusion.Diagnostics.SelfTest;
using KvFusion.Cuda.Backend;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Diagnostics.Conformance;
using KvFusion.Diagnostics.Golden;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion selftest --device cuda</c>: every backend operation against the CPU backend on fresh random inputs,
/// then the golden model checks and the fusion exactness checks on the device. Exit code 0 only when all pass.
/// </summary>
internal static class SelfTestCommand
{
    private static readonly string[] GoldenModels = ["tiny-pydocs", "tiny-pydocs-coder", "zoo/qwen2-bias", "zoo/qwen3-qknorm", "zoo/mistral", "zoo/llama3-ropescaling"];

    public static Command Create()
    {
        var device = CommonOptions.Device();
        var models = new Option<string?>("--models") { Description = "Folder holding tiny-pydocs and zoo/ (default: the folder of the default model, e.g. ../shared/models)." };
        var skipModels = new Option<bool>("--ops-only") { Description = "Only compare the backend operations (no model files needed)." };
        var json = new Option<string?>("--json") { Description = "Write every check as JSON to this file." };
        var command = new Command("selftest", "Checks a compute device against the CPU backend, the golden model outputs and the fusion exactness rules.")
        {
            device, models, skipModels, json,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var deviceName = parse.GetValue(device)!;
            var rows = new List<(string Stage, string Check, string Error, string Limit, bool Passed, string? Detail)>();
            using (var candidate = CommonOptions.CreateBackend(deviceName, null))
            using (var reference = new CpuBackend())
            {
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]{candidate.DeviceName}[/]");
                using var conformance = new BackendConformance(candidate, reference, Path.Combine(Path.GetTempPath(), "kvfusion-selftest"));
                IReadOnlyList<BackendCheck> ops = [];
                CommonOptions.Diagnostics.Status().Start("operations vs CPU", _ => ops = conformance.RunAll(cancellationToken: ct));
                foreach (var r in ops)
                {
                    rows.Add(("ops", $"{r.Operation}: {r.Case}", Format(r.RelativeError), Format(r.Tolerance), r.Passed,
                        r.Failure ?? (r.Unwritten > 0 ? $"{r.Unwritten} of {r.Elements} elements unwritten" : null)));
                }
            }

            if (!parse.GetValue(skipModels))
            {
                var root = parse.GetValue(models) ?? Path.GetDirectoryName(ModelDirectory.Resolve(null))!;
                foreach (var (precision, tolerance) in new[] { (CudaWeightPrecision.Float32, 2e-3), (CudaWeightPrecision.AsStored, 5e-2) })
                {
                    var label = precision == CudaWeightPrecision.Float32 ? "golden (f32 weights)" : "golden (stored weights)";
                    using var backend = CommonOptions.CreateBackend(deviceName, null, precision);
                    foreach (var name in GoldenModels)
                    {
                        var dir = Path.Combine(root, name);
                        if (!File.Exists(Path.Combine(dir, "golden.json")))
                        {
                            rows.Add((label, name, "-", "-", false, $"no golden.json under {dir}"));
                            continue;
                        }

                        using var model = TransformerModel.Load(dir, backend);
                        foreach (var r in GoldenCheck.Run(model, Path.Combine(dir, "golden.json"), tolerance, ct))
                        {
                            rows.Add((label, $"{name}: {r.Case}", r.GreedyMatches is null ? Format(r.MaxAbsError) : (r.GreedyMatches.Value ? "identical" : "differs"), r.GreedyMatches is null ? Format(r.Tolerance) : "identical", r.Passed, r.Detail));
                        }
                    }
                }

                using (var backend = CommonOptions.CreateBackend(deviceName, null))
                using (var model = TransformerModel.Load(Path.Combine(root, "tiny-pydocs"), backend))
                {
                    foreach (var r in await FusionSelfCheck.RunAsync(model, ct).ConfigureAwait(false))
                    {
                        rows.Add(("fusion", r.Check, Format(r.MaxAbsError), Format(r.Tolerance), r.Passed, r.Detail));
                    }
                }
            }

            var table = new Table().Title($"selftest: {Markup.Escape(deviceName)}").AddColumns("stage", "check", "error", "limit", "result", "detail");
            foreach (var r in rows)
            {
                table.AddRow(Markup.Escape(r.Stage), Markup.Escape(r.Check), r.Error, r.Limit, r.Passed ? "[green]pass[/]" : "[red]FAIL[/]", Markup.Escape(r.Detail ?? string.Empty));
            }

            AnsiConsole.Write(table);
            var failed = rows.Count(r => !r.Passed);
            AnsiConsole.MarkupLine(failed == 0 ? $"[green]all {rows.Count} checks passed[/]" : $"[red]{failed} of {rows.Count} checks failed[/]");
            if (parse.GetValue(json) is { } path)
            {
                using var report = JsonReport.Create(path, "selftest", deviceName);
                var w = report.Writer;
                w.WriteNumber("checks", rows.Count);
                w.WriteNumber("failed", failed);
                w.WriteStartArray("results");
                foreach (var r in rows)
                {
                    w.WriteStartObject();
                    w.WriteString("stage", r.Stage);
                    w.WriteString("check", r.Check);
                    w.WriteString("error", r.Error);
                    w.WriteString("limit", r.Limit);
                    w.WriteBoolean("passed", r.Passed);
                    w.WriteString("detail", r.Detail);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }

            return failed == 0 ? 0 : 1;
        }));
        return command;
    }

    private static string Format(double value) => double.IsNaN(value) ? "-" : value.ToString("G3", CultureInfo.InvariantCulture);
}
