using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;

namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// <c>kvfusion serve</c> as a real process on a free loopback port: the CLI from this test's output folder, on the
/// tiny model, with its own working folder and environment. Started by <see cref="StartAsync"/> (which returns once
/// <c>/readyz</c> answers 200); disposed with SIGTERM, as an operator or an orchestrator stops it, so the host's
/// graceful shutdown runs; killed only when it does not exit in time.
/// </summary>
public sealed partial class ServeProcess : IAsyncDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(30);
    private readonly Process _process;
    private readonly TempDirectory _workingDirectory;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Lock _gate = new();

    private ServeProcess(Process process, TempDirectory workingDirectory, int port)
    {
        _process = process;
        _workingDirectory = workingDirectory;
        Port = port;
        BaseAddress = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}/"));
    }

    /// <summary>The loopback port it listens on.</summary>
    public int Port { get; }

    /// <summary><c>http://127.0.0.1:PORT/</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>The process id.</summary>
    public int ProcessId => _process.Id;

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>The exit code, once it has exited.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>What it wrote to standard output so far.</summary>
    public string StandardOutput
    {
        get
        {
            lock (_gate)
            {
                return _stdout.ToString();
            }
        }
    }

    /// <summary>What it wrote to standard error so far.</summary>
    public string StandardError
    {
        get
        {
            lock (_gate)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>
    /// Starts <c>kvfusion serve --urls http://127.0.0.1:PORT --model tiny-pydocs --store <paramref name="store"/></c>
    /// with <paramref name="environment"/> added, and waits until it is ready.
    /// </summary>
    /// <param name="store">A folder, or <c>redis://host:port[,host:port]</c>.</param>
    /// <param name="environment">Extra variables, e.g. <c>KvFusion__Auth__Keys__0__Key</c>.</param>
    /// <exception cref="SkipException">../shared (the model) is absent.</exception>
    public static async Task<ServeProcess> StartAsync(string store, IReadOnlyDictionary<string, string>? environment = null, CancellationToken cancellationToken = default)
    {
        var model = SharedModels.Path("tiny-pydocs");
        var port = RedisServerProcess.FreeLoopbackPort();
        var workingDirectory = new TempDirectory();
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory.Path,
        };

        // The test host's own ASP.NET/.NET settings must not leak into the child (e.g. a test runner's URLS).
        start.Environment.Remove("ASPNETCORE_URLS");
        start.Environment.Remove("ASPNETCORE_ENVIRONMENT");
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        foreach (var a in new[]
                 {
                     "exec", Path.Combine(AppContext.BaseDirectory, "kvfusion.dll"), "serve",
                     "--urls", string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}"),
                     "--model", model, "--store", store,
                 })
        {
            start.ArgumentList.Add(a);
        }

        var process = new Process { StartInfo = start };
        var server = new ServeProcess(process, workingDirectory, port);
        process.OutputDataReceived += (_, e) => server.Append(server._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(server._stderr, e.Data);
        if (!process.Start())
        {
            workingDirectory.Dispose();
            throw new InvalidOperationException("dotnet did not start");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitUntilReadyAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>A client of this server, sending <paramref name="apiKey"/> as a bearer token when given.</summary>
    public HttpClient CreateHttpClient(string? apiKey = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return client;
    }

    /// <summary>Sends SIGTERM (the host's graceful shutdown) and waits up to 30 s for the exit; returns whether it exited.</summary>
    public async Task<bool> TerminateAsync()
    {
        if (_process.HasExited)
        {
            return true;
        }

        if (Kill(_process.Id, SigTerm) != 0)
        {
            return _process.HasExited;
        }

        using var timeout = new CancellationTokenSource(ExitTimeout);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!await TerminateAsync())
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
            // The process never started or is already gone.
        }
        finally
        {
            _process.Dispose();
            _workingDirectory.Dispose();
        }
    }

    /// <summary>Its output, for a failed assertion's message.</summary>
    public string Describe() => $"kvfusion serve on {BaseAddress} (pid {_process.Id})\n--- stdout ---\n{StandardOutput}\n--- stderr ---\n{StandardError}";

    private async Task WaitUntilReadyAsync(CancellationToken cancellationToken)
    {
        using var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
            {
                // Let the output readers drain what the process wrote before it went.
                await _process.WaitForExitAsync(cancellationToken);
                throw new InvalidOperationException($"kvfusion serve exited with code {_process.ExitCode} before it was ready.\n{Describe()}");
            }

            try
            {
                using var response = await client.GetAsync(new Uri("readyz", UriKind.Relative), cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Not listening yet.
            }

            if (clock.Elapsed > ReadyTimeout)
            {
                throw new TimeoutException($"kvfusion serve was not ready within {ReadyTimeout.TotalSeconds:0} s.\n{Describe()}");
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private void Append(StringBuilder target, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            target.AppendLine(line);
        }
    }

    private const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
