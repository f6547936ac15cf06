using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KvFusion.TestSupport;

/// <summary>
/// A loopback HTTP server in the Hugging Face hub's URL layout serving a model folder, with real sizes, sha256s
/// (LFS files) and git blob sha1s (other files). Switches make it cut a download short, corrupt a byte, or gate the repo.
/// </summary>
public sealed class FakeHub : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly Dictionary<string, Revision> revisions = new(StringComparer.Ordinal);
    private int requests;
    private int cutsLeft;

    private FakeHub(WebApplication app, string owner, string name)
    {
        this.app = app;
        Owner = owner;
        Name = name;
    }

    /// <summary>The repository's owner.</summary>
    public string Owner { get; }

    /// <summary>The repository's name.</summary>
    public string Name { get; }

    /// <summary>The server's base address.</summary>
    public Uri Endpoint { get; private set; } = null!;

    /// <summary>HTTP requests served so far.</summary>
    public int Requests => Volatile.Read(ref requests);

    /// <summary>Requests for file ranges (resumes).</summary>
    public List<string> RangeRequests { get; } = [];

    /// <summary>Cuts the connection midway through the next <paramref name="count"/> downloads of the largest safetensors file.</summary>
    public void CutNextDownloads(int count) => cutsLeft = count;

    /// <summary>Flips one byte of the served copy of this file.</summary>
    public string? CorruptFile { get; set; }

    /// <summary>A token the hub requires (answering 401 gated without it), or null for a public repo.</summary>
    public string? RequiredToken { get; set; }

    /// <summary>Starts a hub serving <paramref name="folder"/> as OWNER/NAME at <c>main</c>.</summary>
    public static async Task<FakeHub> StartAsync(string folder, string owner = "kvfusion", string name = "tiny-pydocs")
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var hub = new FakeHub(app, owner, name);
        hub.AddRevision("main", folder);
        app.Use(async (context, next) =>
        {
            Interlocked.Increment(ref hub.requests);
            await next(context);
        });
        app.MapGet("/api/models/{owner}/{name}/revision/{revision}", hub.RevisionInfoAsync);
        app.MapGet("/{owner}/{name}/resolve/{commit}/{file}", hub.ResolveAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        hub.Endpoint = new Uri(address + "/");
        return hub;
    }

    /// <summary>Serves <paramref name="folder"/> under the branch or tag <paramref name="revision"/>; returns its commit sha.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "Git object ids are SHA-1 by definition; no security rests on them.")]
    public string AddRevision(string revision, string folder, IReadOnlyDictionary<string, byte[]>? overrides = null)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var path in Directory.GetFiles(folder))
        {
            var fileName = Path.GetFileName(path);
            if (!fileName.StartsWith('.'))
            {
                files[fileName] = File.ReadAllBytes(path);
            }
        }

        foreach (var (key, value) in overrides ?? new Dictionary<string, byte[]>())
        {
            files[key] = value;
        }

        var commit = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(revision + string.Join(",", files.Select(f => f.Key + GitBlob(f.Value))))));
        var rev = new Revision(commit, files);
        revisions[revision] = rev;
        revisions[commit] = rev;
        return commit;
    }

    /// <summary>The git blob sha1 of some bytes (what the hub lists as blobId).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "Git object ids are SHA-1 by definition; no security rests on them.")]
    public static string GitBlob(byte[] content)
    {
        var header = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"blob {content.Length}\0"));
        return Convert.ToHexStringLower(SHA1.HashData([.. header, .. content]));
    }

    private bool Authorized(HttpContext context) =>
        RequiredToken is null || context.Request.Headers.Authorization.ToString() == $"Bearer {RequiredToken}";

    private async Task RevisionInfoAsync(HttpContext context, string owner, string name, string revision)
    {
        if (owner != Owner || name != Name)
        {
            context.Response.StatusCode = 404;
            context.Response.Headers["X-Error-Code"] = "RepoNotFound";
            await context.Response.WriteAsJsonAsync(new { error = "Repository not found" });
            return;
        }

        if (!Authorized(context))
        {
            context.Response.StatusCode = 401;
            context.Response.Headers["X-Error-Code"] = "GatedRepo";
            await context.Response.WriteAsJsonAsync(new { error = "Access to model is restricted: it is gated." });
            return;
        }

        if (!revisions.TryGetValue(revision, out var rev))
        {
            context.Response.StatusCode = 404;
            context.Response.Headers["X-Error-Code"] = "RevisionNotFound";
            await context.Response.WriteAsJsonAsync(new { error = "Invalid rev id" });
            return;
        }

        var siblings = rev.Files.Select(f => f.Key.EndsWith(".safetensors", StringComparison.Ordinal)
            ? (object)new { rfilename = f.Key, size = f.Value.Length, blobId = GitBlob(Encoding.UTF8.GetBytes("pointer")), lfs = new { sha256 = Convert.ToHexStringLower(SHA256.HashData(f.Value)), size = f.Value.Length, pointerSize = 134 } }
            : new { rfilename = f.Key, size = f.Value.Length, blobId = GitBlob(f.Value) });
        await context.Response.WriteAsJsonAsync(new { id = $"{Owner}/{Name}", sha = rev.Commit, siblings });
    }

    private async Task ResolveAsync(HttpContext context, string owner, string name, string commit, string file)
    {
        if (owner != Owner || name != Name || !revisions.TryGetValue(commit, out var rev) || !rev.Files.TryGetValue(file, out var content))
        {
            context.Response.StatusCode = 404;
            return;
        }

        if (!Authorized(context))
        {
            context.Response.StatusCode = 401;
            return;
        }

        if (CorruptFile == file)
        {
            content = [.. content];
            content[content.Length / 2] ^= 0x5A;
        }

        long start = 0;
        var range = context.Request.Headers.Range.ToString();
        if (range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            start = long.Parse(range.AsSpan(6, range.Length - 7), CultureInfo.InvariantCulture);
            lock (RangeRequests)
            {
                RangeRequests.Add($"{file}:{start}");
            }

            context.Response.StatusCode = 206;
            context.Response.Headers.ContentRange = $"bytes {start}-{content.Length - 1}/{content.Length}";
        }

        context.Response.ContentLength = content.Length - start;
        var largest = rev.Files.Where(f => f.Key.EndsWith(".safetensors", StringComparison.Ordinal)).MaxBy(f => f.Value.Length).Key;
        if (file == largest && start == 0 && Interlocked.Decrement(ref cutsLeft) >= 0)
        {
            await context.Response.Body.WriteAsync(content.AsMemory(0, content.Length / 3));
            await context.Response.Body.FlushAsync();
            context.Abort();
            return;
        }

        await context.Response.Body.WriteAsync(content.AsMemory((int)start));
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    private sealed record Revision(string Commit, Dictionary<string, byte[]> Files);
}
