using System.Globalization;
using System.Net;
using System.Net.Sockets;
using KvFusion.Cache.Tiers;

namespace KvFusion.Diagnostics.Networking;

/// <summary>
/// A loopback TCP proxy in front of a server (for example a Redis), so loading meets real network code on a slow
/// network: every connection to <see cref="Port"/> is forwarded to the target both ways; each direction's bytes
/// cross a <see cref="ThrottledLink"/> of <see cref="BitsPerSecond"/> shared by all connections (full duplex), and
/// each chunk read can also be held back for <see cref="Delay"/>, which makes the server look slow without changing
/// what it says. Changes apply to chunks read from then on, on open connections too.
/// </summary>
public sealed class ThrottlingTcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly string _targetHost;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<Task> _connections = [];
    private readonly Lock _gate = new();
    private readonly ThrottledLink _down = new(1, TimeSpan.Zero);
    private readonly ThrottledLink _up = new(1, TimeSpan.Zero);
    private long _delayTicks;
    private double _bitsPerSecond;

    /// <summary>
    /// Listens on a free loopback port and forwards to <paramref name="targetHost"/>:<paramref name="targetPort"/>,
    /// at <paramref name="bitsPerSecond"/> each way (null: as fast as loopback goes).
    /// </summary>
    public ThrottlingTcpProxy(string targetHost, int targetPort, double? bitsPerSecond = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(targetHost);
        _targetHost = targetHost;
        _targetPort = targetPort;
        BitsPerSecond = bitsPerSecond;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync(_stop.Token);
    }

    /// <summary>The port clients connect to.</summary>
    public int Port { get; }

    /// <summary><c>127.0.0.1:{port}</c>.</summary>
    public string Address => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    /// <summary>How long each chunk is held before it is forwarded (both directions); zero forwards at once.</summary>
    public TimeSpan Delay
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _delayTicks));
        set => Interlocked.Exchange(ref _delayTicks, value.Ticks);
    }

    /// <summary>The rate each direction carries, in bits per second; null: unlimited.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The rate is not a finite number above zero.</exception>
    public double? BitsPerSecond
    {
        get
        {
            var rate = Interlocked.CompareExchange(ref _bitsPerSecond, 0, 0);
            return rate > 0 ? rate : null;
        }

        set
        {
            if (value is { } rate)
            {
                _down.BitsPerSecond = rate;
                _up.BitsPerSecond = rate;
            }

            Interlocked.Exchange(ref _bitsPerSecond, value ?? 0);
        }
    }

    /// <summary>Bytes forwarded from the server to clients.</summary>
    public long BytesDown => _down.Bytes;

    /// <summary>Bytes forwarded from clients to the server.</summary>
    public long BytesUp => _up.Bytes;

    /// <summary>Stops listening, closes every connection and waits for their pumps to end.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        Task[] open;
        lock (_gate)
        {
            open = [.. _connections, _accepting];
        }

        try
        {
            await Task.WhenAll(open).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            lock (_gate)
            {
                _connections.RemoveAll(t => t.IsCompleted);
                _connections.Add(ForwardAsync(client, cancellationToken));
            }
        }
    }

    private async Task ForwardAsync(TcpClient client, CancellationToken cancellationToken)
    {
        using (client)
        using (var upstream = new TcpClient())
        using (var both = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            try
            {
                await upstream.ConnectAsync(_targetHost, _targetPort, cancellationToken).ConfigureAwait(false);
                var down = client.GetStream();
                var up = upstream.GetStream();
                var first = await Task.WhenAny(PumpAsync(down, up, _up, both.Token), PumpAsync(up, down, _down, both.Token)).ConfigureAwait(false);
                await both.CancelAsync().ConfigureAwait(false);
                await first.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
            {
            }
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, ThrottledLink link, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    return;
                }

                var delay = Delay;
                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                }

                if (BitsPerSecond is not null)
                {
                    await link.TransferAsync(read, cancellationToken).ConfigureAwait(false);
                }

                await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
        }
    }
}
