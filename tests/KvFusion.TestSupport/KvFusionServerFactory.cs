using System.Net;
using System.Net.Http.Headers;
using KvFusion.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace KvFusion.TestSupport;

/// <summary>
/// The real service in process (ASP.NET Core's TestServer) on the tiny model, with its own data folder removed on
/// dispose. Settings override the defaults: memory and RocksDB under the temporary folder, no API keys.
/// </summary>
public sealed class KvFusionServerFactory : WebApplicationFactory<KvFusionServerOptions>
{
    private readonly TempDirectory _data = new();
    private readonly Dictionary<string, string?> _settings;

    /// <summary>Creates the factory; the server starts on the first client. Skips when ../shared is absent.</summary>
    public KvFusionServerFactory(IReadOnlyDictionary<string, string?>? settings = null, string model = "tiny-pydocs")
    {
        _settings = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["KvFusion:Model"] = SharedModels.Path(model),
            ["KvFusion:DocumentsPath"] = _data.Combine("documents"),
            ["Storage:Tiers"] = "rocksdb",
            ["Storage:RocksDb:Path"] = _data.Combine("rocksdb"),
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            _settings[key] = value;
        }
    }

    /// <summary>The client address every request appears to come from (default: loopback, as TestServer leaves it).</summary>
    public IPAddress? RemoteIpAddress { get; set; }

    /// <summary>The temporary folder holding this server's data.</summary>
    public string DataDirectory => _data.Path;

    /// <summary>An HTTP client of the in-process server, sending <paramref name="apiKey"/> as a bearer token when given.</summary>
    public HttpClient CreateHttpClient(string? apiKey = null)
    {
        var client = CreateClient();
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return client;
    }

    /// <inheritdoc />
    protected override IHostBuilder CreateHostBuilder() => Host.CreateDefaultBuilder()
        .ConfigureAppConfiguration(c => c.AddInMemoryCollection(_settings))
        .ConfigureWebHost(web => web
            // WebApplicationFactory would look for the server's source folder as content root; the data folder will do.
            .UseSetting("TEST_CONTENTROOT_KVFUSION_SERVER", _data.Path)
            .ConfigureServices((context, services) =>
            {
                services.AddKvFusionServer(context.Configuration);
                services.AddSingleton<IStartupFilter>(new RemoteAddressFilter(this));
            })
            .Configure(app => app.UseKvFusionServer()));

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _data.Dispose();
        }
    }

    /// <summary>Sets the client address before the service's pipeline sees the request.</summary>
    private sealed class RemoteAddressFilter(KvFusionServerFactory factory) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                if (factory.RemoteIpAddress is { } address)
                {
                    context.Connection.RemoteIpAddress = address;
                }

                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
