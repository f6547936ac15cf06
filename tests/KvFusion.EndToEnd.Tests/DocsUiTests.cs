using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// The API reference at /docs in a real headless browser, offline: the Scalar UI comes from the service's own
/// assets, fetches the OpenAPI document, and renders the endpoints.
/// </summary>
[Collection(KeyedServers.Name)]
public sealed partial class DocsUiTests(KeyedServer fixture)
{
    private static readonly Lazy<string?> Chromium = new(() =>
        new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists));

    [SkippableFact]
    public async Task The_docs_page_loads_its_script_from_the_service_itself()
    {
        using var http = fixture.Server.CreateHttpClient();
        var html = await http.GetStringAsync(new Uri("docs", UriKind.Relative));

        var scripts = ScriptSource().Matches(html).Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(scripts);
        var largest = 0;
        foreach (var src in scripts)
        {
            // Offline: nothing from a CDN. /docs redirects to /docs/, which the sources are relative to.
            var uri = new Uri(new Uri(fixture.Server.BaseAddress, "docs/"), src);
            Assert.True(uri.Host == "127.0.0.1", $"/docs loads {src} from another host");
            using var response = await http.GetAsync(uri);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{uri}: {(int)response.StatusCode}");
            largest = Math.Max(largest, (await response.Content.ReadAsByteArrayAsync()).Length);
        }

        // One of them is Scalar's standalone bundle (megabytes), not a loader that fetches the UI from elsewhere.
        Assert.True(largest > 500_000, $"the largest script of /docs is {largest} bytes");

        using var openApi = await http.GetAsync(new Uri("openapi/v1.json", UriKind.Relative));
        await Http.EnsureAsync(openApi, HttpStatusCode.OK);
    }

    [SkippableFact]
    public async Task Headless_chromium_renders_the_chunk_and_chat_endpoints()
    {
        var browser = RequireChromium();
        var url = new Uri(fixture.Server.BaseAddress, "docs").ToString();

        var dom = await RunChromiumAsync(browser, "--dump-dom", url);

        // Scalar renders the first tag's operations and lists the other tags in its sidebar.
        Assert.Contains("Precompute and store chunks", dom, StringComparison.Ordinal);
        Assert.Contains("/v1/chunks/{id}/kv", dom, StringComparison.Ordinal);
        Assert.Contains("href=\"#tag/completions\"", dom, StringComparison.Ordinal);

        // The other sections render when linked to, as a reader's click on the sidebar does.
        var chat = await RunChromiumAsync(browser, "--dump-dom", url + "/#tag/completions/POST/v1/chat/completions");
        Assert.Contains("Chat completion, fusing stored chunks", chat, StringComparison.Ordinal);
        Assert.Contains("/v1/chat/completions", chat, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Headless_chromium_takes_a_screenshot_of_the_rendered_reference()
    {
        var browser = RequireChromium();
        using var temp = new TempDirectory();
        var png = temp.Combine("docs.png");

        await RunChromiumAsync(browser, "--screenshot=" + png, "--window-size=1400,1000", new Uri(fixture.Server.BaseAddress, "docs").ToString());

        Assert.True(File.Exists(png), "chromium wrote no screenshot");
        var bytes = await File.ReadAllBytesAsync(png);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        Assert.True(bytes.Length > 10_000, $"the screenshot is {bytes.Length} bytes: a blank page?");

        // KVF_E2E_SCREENSHOT keeps a copy for a person to look at.
        if (Environment.GetEnvironmentVariable("KVF_E2E_SCREENSHOT") is { Length: > 0 } keep)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(keep))!);
            File.Copy(png, keep, overwrite: true);
        }
    }

    private static string RequireChromium()
    {
        Skip.If(Chromium.Value is null, "chromium is not installed (Debian: apt-get install chromium)");
        return Chromium.Value!;
    }

    /// <summary>Runs headless chromium on its own profile folder and returns its standard output.</summary>
    private static async Task<string> RunChromiumAsync(string browser, params string[] args)
    {
        using var profile = new TempDirectory();
        var start = new ProcessStartInfo(browser)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--user-data-dir=" + profile.Path, "--virtual-time-budget=15000",
                 }.Concat(args))
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"chromium did not finish within 90 s; stderr:\n{await stderr}");
        }

        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"chromium exited with {process.ExitCode}; stderr:\n{await stderr}");
        return output;
    }

    [GeneratedRegex("""<script[^>]*\bsrc\s*=\s*["']([^"']+)["']""", RegexOptions.IgnoreCase)]
    private static partial Regex ScriptSource();
}
