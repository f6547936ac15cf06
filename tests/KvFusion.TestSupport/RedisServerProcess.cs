using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace KvFusion.TestSupport;

/// <summary>
/// A private <c>redis-server</c> for one test: loopback only, on a free port, no persistence, its folder a
/// <see cref="TempDirectory"/>. It can be stopped (killed, as a crash) and started again on the same port, which is
/// how fault tests take Redis away under a running client. Tests skip, with the reason, when redis-server is not
/// installed.
/// </summary>
public sealed class RedisServerProcess : IAsyncDisposable
{
    private static readonly Lazy<string?> Located = new(() => FindOnPath("redis-server"));
    private readonly TempDirectory _directory = new();
    private readonly string[] _extraArguments;
    private Process? _process;

    private RedisServerProcess(int port, string[] extraArguments)
    {
        Port = port;
        _extraArguments = extraArguments;
    }

    /// <summary>The redis-server executable on PATH, or null.</summary>
    public static string? Executable => Located.Value;

    /// <summary>The port, the same across restarts.</summary>
    public int Port { get; }

    /// <summary><c>127.0.0.1:{port}</c>, the StackExchange.Redis configuration of this server.</summary>
    public string Address => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    /// <summary>Whether the server process is running.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>The folder the server runs in (its log, and its nodes.conf when it is a cluster node).</summary>
    public string DataDirectory => _directory.Path;

    /// <summary>Starts a server on a free loopback port and waits until it answers PING.</summary>
    /// <exception cref="SkipException">redis-server is not installed.</exception>
    public static Task<RedisServerProcess> StartNewAsync(CancellationToken cancellationToken = default) => StartNewAsync([], cancellationToken);

    /// <summary>Starts a server with more redis-server arguments (kept for restarts; e.g. <c>--cluster-enabled yes</c>).</summary>
    /// <exception cref="SkipException">redis-server is not installed.</exception>
    public static async Task<RedisServerProcess> StartNewAsync(IReadOnlyList<string> extraArguments, CancellationToken cancellationToken = default)
    {
        if (Executable is null)
        {
            throw new SkipException("redis-server is not installed (Debian: apt-get install redis-server)");
        }

        // A cluster node also listens on its port + 10000 (the cluster bus), so it needs a pair of free ports.
        var port = extraArguments.Contains("--cluster-enabled") ? FreeLoopbackPortPair(10000) : FreeLoopbackPort();
        var server = new RedisServerProcess(port, [.. extraArguments]);
        try
        {
            await server.StartAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the server again (on the same port) and waits until it answers PING.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (IsRunning)
        {
            return;
        }

        var info = new ProcessStartInfo(Executable!)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _directory.Path,
        };
        foreach (var arg in new[]
                 {
                     "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--daemonize", "no",
                     "--dir", _directory.Path, "--logfile", _directory.Combine("redis.log"), "--save", string.Empty, "--appendonly", "no",
                 })
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var arg in _extraArguments)
        {
            info.ArgumentList.Add(arg);
        }

        _process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start");
        _process.OutputDataReceived += static (_, _) => { };
        _process.ErrorDataReceived += static (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (!await AnswersPingAsync(Address, TimeSpan.FromSeconds(1), cancellationToken))
        {
            if (_process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(20))
            {
                var log = File.Exists(_directory.Combine("redis.log")) ? await File.ReadAllTextAsync(_directory.Combine("redis.log"), cancellationToken) : "(no log)";
                await StopAsync();
                throw new InvalidOperationException($"redis-server on {Address} did not answer PING; its log:\n{log}");
            }

            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>Kills the server (as a crash: connections drop, nothing is saved) and waits for it to exit.</summary>
    public async Task StopAsync()
    {
        if (_process is null)
        {
            return;
        }

        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await _process.WaitForExitAsync();
        }
        finally
        {
            _process.Dispose();
            _process = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _directory.Dispose();
    }

    /// <summary>Whether a Redis at <paramref name="address"/> (<c>host:port</c>) answers PING within <paramref name="timeout"/>.</summary>
    public static async Task<bool> AnswersPingAsync(string address, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        (await SendAsync(address, "PING", timeout, cancellationToken))?.StartsWith("+PONG", StringComparison.Ordinal) == true;

    /// <summary>Sends one inline command to <paramref name="address"/> and returns what came back first, or null when nothing answered in time.</summary>
    public static async Task<string?> SendAsync(string address, string inlineCommand, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var colon = address.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(address.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port))
        {
            return null;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(address[..colon], port, cts.Token);
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(inlineCommand + "\r\n"), cts.Token);
            var buffer = new byte[16384];
            var read = await stream.ReadAsync(buffer, cts.Token);
            return read > 0 ? Encoding.ASCII.GetString(buffer, 0, read) : null;
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>A loopback port nothing listens on now.</summary>
    public static int FreeLoopbackPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    /// <summary>A loopback port p below 55536 with p and p + <paramref name="offset"/> both free now.</summary>
    public static int FreeLoopbackPortPair(int offset)
    {
        for (var attempt = 0; attempt < 1000; attempt++)
        {
            var port = Random.Shared.Next(20000, 65536 - offset);
            if (IsFree(port) && IsFree(port + offset))
            {
                return port;
            }
        }

        throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"found no free loopback port pair {offset} apart"));

        static bool IsFree(int port)
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            try
            {
                listener.Start();
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
            finally
            {
                listener.Stop();
            }
        }
    }

    private static string? FindOnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = System.IO.Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
