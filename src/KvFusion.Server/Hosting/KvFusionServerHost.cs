using KvFusion.Storage.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace KvFusion.Server.Hosting;

/// <summary>Builds the service as a web application: Kestrel, configuration sources, the services and the pipeline.</summary>
public static class KvFusionServerHost
{
    /// <summary>Listening address when none is configured: loopback only.</summary>
    public const string DefaultUrls = "http://127.0.0.1:8080";

    /// <summary>
    /// Builds the application. Configuration: appsettings.json in <paramref name="contentRoot"/> (default: the current
    /// folder), environment variables (<c>KvFusion__…</c>, and <c>KVFUSION_Storage__…</c> as the other commands read
    /// them), then <paramref name="overrides"/> (the command line's options).
    /// </summary>
    public static WebApplication Build(IReadOnlyDictionary<string, string?>? overrides = null, ComputeBackendFactory? backends = null, string? contentRoot = null, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = Path.GetFullPath(contentRoot ?? Directory.GetCurrentDirectory()),
            Args = [],
        });
        builder.Configuration.AddEnvironmentVariables(KvStorageConfiguration.EnvironmentPrefix);
        if (overrides is not null)
        {
            builder.Configuration.AddInMemoryCollection(overrides);
        }

        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
        {
            builder.WebHost.UseUrls(DefaultUrls);
        }

        builder.Services.AddKvFusionServer(builder.Configuration, backends);
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            var limits = context.Configuration.GetSection(KvFusionServerOptions.SectionName).Get<KvFusionServerOptions>()?.Limits ?? new RequestLimitOptions();
            kestrel.Limits.MaxRequestBodySize = Math.Max(limits.MaxRequestBodyBytes, limits.MaxKvUploadBytes);
            kestrel.AddServerHeader = false;
        });
        configure?.Invoke(builder);
        var app = builder.Build();
        app.UseKvFusionServer();
        return app;
    }
}
