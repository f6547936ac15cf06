using System.CommandLine;
using KvFusion.Engine.Models;
using KvFusion.Server.Hosting;
using KvFusion.Storage.Redis;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion serve</c>: the cache service (REST + OpenAI-compatible) on the embedded defaults: the default model,
/// RocksDB under ./data with a memory tier, listening on loopback. appsettings.json and environment variables set the
/// rest (sections KvFusion and Storage); the options here override them.
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var urls = new Option<string?>("--urls") { Description = $"Addresses to listen on, ';'-separated (default: the configured ones, else {KvFusionServerHost.DefaultUrls})." };
        var model = CommonOptions.Model();
        var store = StorageOptions.Store();
        var device = CommonOptions.Device();
        var threads = CommonOptions.Threads();
        var agents = new Option<string[]>("--agent")
        {
            Description = "Another model to serve beside --model: a fine-tuned agent of its family (folder or hf:OWNER/NAME; repeatable). Agents fuse each other's caches with kvfusion.shared_from.",
            AllowMultipleArgumentsPerToken = false,
        };
        var profiles = new Option<string[]>("--sharing-profile") { Description = "A sharing profile (kvfusion profile sharing) for a pair of served models (repeatable)." };
        var command = new Command("serve", "Run the cache service: chunks, documents and OpenAI-compatible completions that fuse stored caches, with an API reference at /docs.")
        {
            urls, model, store, device, threads, agents, profiles,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var overrides = Overrides(parse.GetValue(urls), parse.GetValue(model), parse.GetValue(store), parse.GetValue(agents), parse.GetValue(profiles));
            var deviceName = parse.GetValue(device)!;
            var threadCount = parse.GetValue(threads);
            using var probe = CommonOptions.CreateBackend(deviceName, threadCount);
            probe.Dispose();
            WebApplication app;
            try
            {
                app = KvFusionServerHost.Build(overrides, () => CommonOptions.CreateBackend(deviceName, threadCount));
            }
            catch (OptionsValidationException e)
            {
                throw new CliException("invalid settings: " + string.Join(" ", e.Failures));
            }

            await using (app.ConfigureAwait(false))
            {
                app.Lifetime.ApplicationStarted.Register(() => Announce(app));
                try
                {
                    await app.RunAsync(ct).ConfigureAwait(false);
                }
                catch (OptionsValidationException e)
                {
                    throw new CliException("invalid settings: " + string.Join(" ", e.Failures));
                }
            }

            return 0;
        }));
        return command;
    }

    /// <summary>The configuration keys the command line sets.</summary>
    internal static Dictionary<string, string?> Overrides(string? urls, string? model, string? store, IReadOnlyList<string>? agents = null, IReadOnlyList<string>? profiles = null)
    {
        var overrides = StorageOptions.Overrides(store, null);
        if (!string.IsNullOrWhiteSpace(urls))
        {
            overrides[WebHostDefaults.ServerUrlsKey] = urls;
        }

        overrides[$"{KvFusionServerOptions.SectionName}:Model"] = CommonOptions.ResolveModel(model);
        for (var i = 0; i < (agents?.Count ?? 0); i++)
        {
            overrides[$"{KvFusionServerOptions.SectionName}:Agents:{i}"] = CommonOptions.ResolveModel(agents![i]);
        }

        for (var i = 0; i < (profiles?.Count ?? 0); i++)
        {
            overrides[$"{KvFusionServerOptions.SectionName}:Sharing:Profiles:{i}"] = Path.GetFullPath(profiles![i]);
        }
        if (store is not null && !RedisTierOptions.IsRedisUri(store))
        {
            overrides[$"{KvFusionServerOptions.SectionName}:DocumentsPath"] = Path.Combine(store, "documents");
        }

        return overrides;
    }

    private static void Announce(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var options = app.Services.GetRequiredService<IOptions<KvFusionServerOptions>>().Value;
        var first = addresses.FirstOrDefault() ?? KvFusionServerHost.DefaultUrls;
        var console = CommonOptions.Diagnostics;
        console.MarkupLine($"[bold]kvfusion serve[/]: listening on {Markup.Escape(string.Join(", ", addresses))}");
        console.MarkupLine($"  API reference: {Markup.Escape(first)}{KvFusionServerExtensions.DocsPath}   OpenAPI: {Markup.Escape(first)}{KvFusionServerExtensions.OpenApiPath}   metrics: {Markup.Escape(first)}/metrics");
        console.MarkupLine(options.Auth.Keys.Count == 0
            ? $"  [yellow]No API keys configured (KvFusion:Auth:Keys): only clients on this machine are served, as tenant '{Markup.Escape(options.Auth.AnonymousTenant)}'.[/]"
            : $"  {options.Auth.Keys.Count} API key(s) configured; requests without a valid key get 401.");
    }
}
