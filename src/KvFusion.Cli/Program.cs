using System.CommandLine;
using System.CommandLine.Invocation;
using KvFusion.Cli.Commands;

namespace KvFusion.Cli;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        // Tables written to a file or pipe keep their full width instead of the 80-column default.
        if (Console.IsOutputRedirected)
        {
            Spectre.Console.AnsiConsole.Profile.Width = 200;
        }

        var root = new RootCommand("KvFusion: KV-cache reuse, compression and fusion for LLM prompts that reuse text.");
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(ModelCommands.Create());
        root.Subcommands.Add(BenchCommands.Create());
        root.Subcommands.Add(EvalCommands.Create());
        root.Subcommands.Add(ProfileCommands.Create());
        root.Subcommands.Add(AskCommand.Create());
        root.Subcommands.Add(KvCommands.Create());
        root.Subcommands.Add(IngestCommand.Create());
        root.Subcommands.Add(StoreCommands.Create());
        root.Subcommands.Add(SelfTestCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        var parse = root.Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            // System.CommandLine would print every error and the whole help text; one line says what was wrong.
            return ErrorReport.ReportParseErrors(parse);
        }

        try
        {
            // Its default handler prints "Unhandled exception" and the stack trace; failures are reported here instead.
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false }).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return ErrorReport.Report(e);
        }
    }
}
