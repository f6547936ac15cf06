using System.Globalization;
using System.Text;
using StackExchange.Redis;

namespace KvFusion.Storage.Redis;

/// <summary>Settings of a <see cref="RedisTier"/> (docs/storage-redis.md).</summary>
public sealed record RedisTierOptions
{
    /// <summary>The smallest <see cref="PieceBytes"/>.</summary>
    public const int MinPieceBytes = 1024;

    /// <summary>The largest <see cref="PieceBytes"/> (well under Redis's 512 MB string limit, so one piece never holds a connection for long).</summary>
    public const int MaxPieceBytes = 64 << 20;

    /// <summary>The most <see cref="Connections"/>.</summary>
    public const int MaxConnections = 64;

    /// <summary>The longest <see cref="KeyPrefix"/>.</summary>
    public const int MaxKeyPrefixLength = 64;

    /// <summary>The default <see cref="Connections"/>: one. In <c>kvfusion bench store</c> on a 2-core machine with Redis on
    /// the same host, 2 and 4 connections moved no more bytes per second than one (the client's CPU, not the socket,
    /// is the limit there) and used more CPU; more connections are for hosts with cores and network to spare.</summary>
    public const int DefaultConnections = 1;

    /// <summary>The port a Redis URI host without one gets.</summary>
    public const int DefaultPort = 6379;

    /// <summary>
    /// The StackExchange.Redis configuration string: <c>host:port[,host:port…]</c> followed by its options
    /// (<c>password=…</c>, <c>user=…</c>, <c>ssl=true</c>, …). One endpoint of a standalone Redis, or any nodes of a
    /// Redis Cluster (the rest are discovered). <c>abortConnect</c>, <c>connectTimeout</c>, <c>syncTimeout</c> and
    /// <c>asyncTimeout</c> are replaced by this record's settings.
    /// </summary>
    public string Configuration { get; init; } = string.Empty;

    /// <summary>The first part of every key the tier writes (1 to 64 of <c>[A-Za-z0-9._-]</c>): tiers with different prefixes share a server without seeing each other's entries.</summary>
    public string KeyPrefix { get; init; } = "kvf";

    /// <summary>A value is cut into pieces of at most this many bytes, each its own key (so a cluster spreads them over its nodes).</summary>
    public int PieceBytes { get; init; } = 1 << 20;

    /// <summary>
    /// Connections the tier opens to each server (1 to 64), each its own StackExchange.Redis multiplexer. Operations
    /// take turns starting on them and spread their pieces over all of them, so large values from many callers, and
    /// the pieces of one value, travel in parallel instead of one after another on a single socket.
    /// </summary>
    public int Connections { get; init; } = DefaultConnections;

    /// <summary>How long an entry lives after it was written (the manifest's expiry).</summary>
    public TimeSpan TimeToLive { get; init; } = TimeSpan.FromHours(24);

    /// <summary>
    /// How much longer than the manifest a value's pieces live, so a manifest never outlives its pieces by expiry.
    /// Must exceed <see cref="OperationTimeout"/> (see docs/storage-redis.md for the reasoning).
    /// </summary>
    public TimeSpan PieceExpiryGrace { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The largest value the tier stores or hands out; larger puts are refused (counted as rejections), larger stored values are corrupt entries.</summary>
    public long MaxValueBytes { get; init; } = 256L << 20;

    /// <summary>How long connecting to a server may take.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one Redis command may take before the operation fails as unavailable (also how long commands wait for a lost connection).</summary>
    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names the setting.</exception>
    public void Validate()
    {
        ParseConfiguration();
        if (!IsValidKeyPrefix(KeyPrefix))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{nameof(KeyPrefix)} must be 1 to {MaxKeyPrefixLength} of [A-Za-z0-9._-]; got '{KeyPrefix}'."));
        }

        if (PieceBytes is < MinPieceBytes or > MaxPieceBytes)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{nameof(PieceBytes)} must be {MinPieceBytes} to {MaxPieceBytes}; got {PieceBytes}."));
        }

        if (Connections is < 1 or > MaxConnections)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{nameof(Connections)} must be 1 to {MaxConnections}; got {Connections}."));
        }

        if (TimeToLive < TimeSpan.FromMilliseconds(1))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(TimeToLive)} must be at least 1 ms; got {TimeToLive}."));
        }

        CheckMilliseconds(ConnectTimeout, nameof(ConnectTimeout));
        CheckMilliseconds(OperationTimeout, nameof(OperationTimeout));
        if (PieceExpiryGrace <= OperationTimeout)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{nameof(PieceExpiryGrace)} must be longer than {nameof(OperationTimeout)} ({OperationTimeout}); got {PieceExpiryGrace}."));
        }

        if (TimeToLive + PieceExpiryGrace > TimeSpan.FromDays(3650))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{nameof(TimeToLive)} plus {nameof(PieceExpiryGrace)} must be at most 3650 days; got {TimeToLive + PieceExpiryGrace}."));
        }

        if (MaxValueBytes < 1 || MaxValueBytes > Array.MaxLength)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(MaxValueBytes)} must be 1 to {Array.MaxLength}; got {MaxValueBytes}."));
        }
    }

    /// <summary>Whether <paramref name="text"/> starts with <c>redis://</c> or <c>rediss://</c>.</summary>
    public static bool IsRedisUri(string? text) =>
        text is not null && (text.StartsWith("redis://", StringComparison.OrdinalIgnoreCase) || text.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Options for a Redis URI, the form the CLI takes: <c>redis://[[user]:password@]host[:port][,host[:port]…][/db][?option=value&amp;…]</c>.
    /// Several hosts name the nodes of a cluster (or fallbacks); a host without a port gets 6379; <c>rediss://</c>
    /// turns TLS on; query options are StackExchange.Redis configuration options (<c>?ssl=true&amp;name=x</c>).
    /// The other settings are <paramref name="template"/>'s (the defaults when null).
    /// </summary>
    /// <exception cref="ArgumentException">The text is not such a URI; the message says which part is wrong (and never repeats a password).</exception>
    public static RedisTierOptions ParseUri(string uri, RedisTierOptions? template = null)
    {
        ArgumentNullException.ThrowIfNull(uri);
        const string form = "redis://[[user]:password@]host[:port][,host[:port]...][/db]";
        string rest;
        var tls = false;
        if (uri.StartsWith("redis://", StringComparison.OrdinalIgnoreCase))
        {
            rest = uri["redis://".Length..];
        }
        else if (uri.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase))
        {
            rest = uri["rediss://".Length..];
            tls = true;
        }
        else
        {
            throw Malformed("it does not start with redis:// or rediss://");
        }

        string? query = null;
        var q = rest.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            query = rest[(q + 1)..];
            rest = rest[..q];
        }

        string? database = null;
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            database = rest[(slash + 1)..];
            rest = rest[..slash];
        }

        string? user = null, password = null;
        var at = rest.LastIndexOf('@');
        if (at >= 0)
        {
            var userInfo = rest[..at];
            rest = rest[(at + 1)..];
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            user = Uri.UnescapeDataString(colon >= 0 ? userInfo[..colon] : userInfo);
            password = colon >= 0 ? Uri.UnescapeDataString(userInfo[(colon + 1)..]) : null;
            if (password is null)
            {
                // redis://secret@host is the common shorthand for a password without a user.
                (user, password) = (null, user);
            }
        }

        if (rest.Length == 0)
        {
            throw Malformed("it names no host");
        }

        var config = new StringBuilder();
        foreach (var hostPort in rest.Split(','))
        {
            config.Append(ParseHost(hostPort)).Append(',');
        }

        if (!string.IsNullOrEmpty(database))
        {
            if (!int.TryParse(database, NumberStyles.None, CultureInfo.InvariantCulture, out var db) || db > 15)
            {
                throw Malformed($"the database '/{database}' is not a number from 0 to 15");
            }

            config.Append(CultureInfo.InvariantCulture, $"defaultDatabase={db},");
        }

        if (tls)
        {
            config.Append("ssl=true,");
        }

        if (!string.IsNullOrEmpty(user))
        {
            config.Append("user=").Append(user).Append(',');
        }

        if (!string.IsNullOrEmpty(password))
        {
            config.Append("password=").Append(password).Append(',');
        }

        if (!string.IsNullOrEmpty(query))
        {
            foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw Malformed($"the query part '{pair}' is not option=value");
                }

                var name = Uri.UnescapeDataString(pair[..eq]);
                var value = Uri.UnescapeDataString(pair[(eq + 1)..]);
                if (name.Contains(',', StringComparison.Ordinal) || value.Contains(',', StringComparison.Ordinal))
                {
                    throw Malformed($"the query option '{name}' holds a comma");
                }

                config.Append(name).Append('=').Append(value).Append(',');
            }
        }

        var options = (template ?? new RedisTierOptions()) with { Configuration = config.ToString().TrimEnd(',') };
        try
        {
            options.ParseConfiguration();
        }
        catch (ArgumentException e)
        {
            throw Malformed(e.Message);
        }

        return options;

        ArgumentException Malformed(string why) => new($"The Redis URI is malformed ({why}); expected {form}.", nameof(uri));

        string ParseHost(string part)
        {
            if (part.Length == 0)
            {
                throw Malformed("a host in the list is empty");
            }

            string host;
            string? port = null;
            if (part.StartsWith('['))
            {
                var close = part.IndexOf(']', StringComparison.Ordinal);
                if (close < 0)
                {
                    throw Malformed($"the host '{part}' opens '[' without closing it");
                }

                host = part[..(close + 1)];
                var after = part[(close + 1)..];
                if (after.Length > 0)
                {
                    if (after[0] != ':')
                    {
                        throw Malformed($"the host '{part}' has text after ']' that is not :port");
                    }

                    port = after[1..];
                }
            }
            else
            {
                var colon = part.LastIndexOf(':');
                host = colon >= 0 ? part[..colon] : part;
                port = colon >= 0 ? part[(colon + 1)..] : null;
            }

            if (host.Length == 0 || host.AsSpan().IndexOfAny(" \t{}") >= 0 || (!host.StartsWith('[') && host.Contains(':', StringComparison.Ordinal)))
            {
                throw Malformed($"'{part}' is not host:port");
            }

            var portNumber = DefaultPort;
            if (port is not null && (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out portNumber) || portNumber is < 1 or > 65535))
            {
                throw Malformed($"the port of '{part}' is not a number from 1 to 65535");
            }

            return string.Create(CultureInfo.InvariantCulture, $"{host}:{portNumber}");
        }
    }

    /// <summary>The StackExchange.Redis configuration the tier connects with.</summary>
    internal ConfigurationOptions ToConfigurationOptions()
    {
        var config = ParseConfiguration();
        config.AbortOnConnectFail = false;
        config.ConnectTimeout = (int)ConnectTimeout.TotalMilliseconds;
        config.SyncTimeout = (int)OperationTimeout.TotalMilliseconds;
        config.AsyncTimeout = (int)OperationTimeout.TotalMilliseconds;

        // Reconnect soon after a server comes back: retries start at 250 ms and back off to at most 5 s.
        config.ReconnectRetryPolicy = new ExponentialRetry(250, 5000);

        // SET ... GET and GETDEL need Redis 6.2; assume it until the server says its version.
        if (config.DefaultVersion < new Version(6, 2))
        {
            config.DefaultVersion = new Version(6, 2);
        }

        // The .NET thread pool serves the sockets instead of StackExchange.Redis's dedicated threads: in bench store (a
        // 2-core machine, 256 KiB and 4 MiB values) the process spent about a fifth less CPU for the same bytes, and
        // the tier's own awaits run on the thread pool anyway. The tier never blocks a thread-pool thread on Redis.
        config.SocketManager = SocketManager.ThreadPool;
        config.ClientName ??= "kvfusion";
        return config;
    }

    /// <summary>The endpoints of <see cref="Configuration"/>, for messages (never its options, which may hold a password).</summary>
    internal string DescribeEndpoints()
    {
        try
        {
            return string.Join(',', ParseConfiguration().EndPoints.Select(e => e.ToString()));
        }
        catch (ArgumentException)
        {
            return "(unparsed configuration)";
        }
    }

    private ConfigurationOptions ParseConfiguration()
    {
        if (string.IsNullOrWhiteSpace(Configuration))
        {
            throw new ArgumentException($"{nameof(Configuration)} must name at least one Redis endpoint (host:port[,host:port...]).");
        }

        ConfigurationOptions config;
        try
        {
            config = ConfigurationOptions.Parse(Configuration, ignoreUnknown: false);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{nameof(Configuration)} is not a StackExchange.Redis configuration string: {e.Message}", e);
        }

        if (config.EndPoints.Count == 0)
        {
            throw new ArgumentException($"{nameof(Configuration)} must name at least one Redis endpoint (host:port[,host:port...]).");
        }

        return config;
    }

    private static bool IsValidKeyPrefix(string? prefix)
    {
        if (prefix is not { Length: >= 1 and <= MaxKeyPrefixLength })
        {
            return false;
        }

        foreach (var c in prefix)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    private static void CheckMilliseconds(TimeSpan value, string name)
    {
        if (value < TimeSpan.FromMilliseconds(1) || value.TotalMilliseconds > int.MaxValue)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{name} must be 1 ms to {int.MaxValue} ms; got {value}."));
        }
    }
}
