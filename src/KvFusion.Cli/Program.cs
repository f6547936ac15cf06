using System.CommandLine;
using KvFusion.Cli.Commands;

namespace KvFusion.Cli;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("KvFusion: KV-cache reuse, compression and fusion for LLM prompts that reuse text.");
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(ModelCommands.Create());
        root.Subcommands.Add(BenchCommands.Create());
        return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
    }
}
