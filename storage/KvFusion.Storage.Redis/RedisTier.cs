using System.Diagnostics;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace KvFusion.Storage.Redis;

/// <summary>
/// The shared tier: blobs in a standalone Redis or a Redis Cluster, each value cut into pieces of at most
/// <see cref="RedisTierOptions.PieceBytes"/> under their own keys (spread over a cluster's nodes), published by a
/// manifest written last. A reader sees a whole value or none: the manifest names the generation of its pieces and
/// the hash of the value, and a piece missing (expired, evicted, overwritten meanwhile) is a miss, never part of a
/// value. The protocol is in docs/storage-redis.md.
/// </summary>
/// <remarks>
/// Connection failures, timeouts and cluster errors are <see cref="KvTierUnavailableException"/>s naming the tier and
/// its endpoints; the connection is made with <c>abortConnect=false</c> and retried in the background, so a tier
/// created while Redis is down serves as soon as Redis is up. Requires Redis 6.2 or later (SET … GET, GETDEL).
/// </remarks>
public sealed class RedisTier : IKvTier
{
    /// <summary>The tier's <see cref="Name"/>.</summary>
    public const string TierName = "redis";

    private const int ScanPageSize = 1000;
    private const int StatisticsBatch = 256;

    // Deletes the manifest only while it still holds the bytes the caller read, so dropping an incomplete entry never
    // removes a newer one written meanwhile.
    private const string DeleteIfUnchangedScript = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

    // The pool (RedisTierOptions.Connections): each multiplexer is one socket per server with its own reader and
    // writer, so several of them move large values in parallel where one would serialize every caller's bytes.
    private readonly ConnectionMultiplexer[] _connections;
    private readonly IDatabase[] _dbs;
    private readonly RedisKeyLayout _keys;
    private readonly ILogger _logger;
    private readonly string _endpoints;
    private long _hits;
    private long _misses;
    private long _puts;
    private long _rejections;
    private long _incompleteDropped;
    private int _disposed;
    private int _nextConnection = -1;

    private RedisTier(ConnectionMultiplexer[] connections, RedisTierOptions options, ILogger logger)
    {
        _connections = connections;
        Options = options;
        _logger = logger;
        _dbs = [.. connections.Select(c => c.GetDatabase())];
        _keys = new RedisKeyLayout(options.KeyPrefix);
        _endpoints = options.DescribeEndpoints();
        foreach (var connection in connections)
        {
            connection.ConnectionFailed += OnConnectionFailed;
            connection.ConnectionRestored += OnConnectionRestored;
        }
    }

    /// <inheritdoc />
    public string Name => TierName;

    /// <summary>The settings.</summary>
    public RedisTierOptions Options { get; }

    /// <summary>The endpoints the tier was configured with (<c>host:port,…</c>), as its messages name them.</summary>
    public string Endpoints => _endpoints;

    /// <summary>Whether at least one connection of the pool is connected to at least one server now.</summary>
    public bool IsConnected => _connections.Any(c => c.IsConnected);

    /// <summary>
    /// Creates the tier and starts connecting its <see cref="RedisTierOptions.Connections"/> connections. Waits up to
    /// <see cref="RedisTierOptions.ConnectTimeout"/> for them, and returns the tier even when Redis does not answer
    /// (operations then fail as unavailable until it does; the client keeps reconnecting).
    /// </summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public static async Task<RedisTier> ConnectAsync(RedisTierOptions options, ILogger<RedisTier>? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var log = (ILogger?)logger ?? NullLogger.Instance;
        var connecting = new Task<ConnectionMultiplexer>[options.Connections];
        for (var i = 0; i < connecting.Length; i++)
        {
            connecting[i] = ConnectionMultiplexer.ConnectAsync(options.ToConfigurationOptions());
        }

        ConnectionMultiplexer[] connections;
        try
        {
            connections = await Task.WhenAll(connecting).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            foreach (var pending in connecting)
            {
                _ = pending.ContinueWith(static t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
                Observe(pending);
            }

            throw;
        }

        if (!connections.Any(c => c.IsConnected))
        {
            log.LogWarning("Redis tier: no server at {Endpoints} answered within {ConnectTimeout}; retrying in the background", options.DescribeEndpoints(), options.ConnectTimeout);
        }

        return new RedisTier(connections, options, log);
    }

    /// <summary>Creates the tier from options bound by Microsoft.Extensions.Options.</summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public static Task<RedisTier> ConnectAsync(IOptions<RedisTierOptions> options, ILogger<RedisTier>? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        return ConnectAsync(options.Value, logger, cancellationToken);
    }

    /// <inheritdoc />
    /// <exception cref="KvBlobException">The manifest is malformed, a piece has the wrong length, or the value's hash does not match.</exception>
    /// <exception cref="KvTierUnavailableException">Redis cannot be reached, timed out, or refused the command.</exception>
    public async ValueTask<ReadOnlyMemory<byte>?> GetAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        var manifestKey = _keys.Manifest(key);
        var first = PickConnection();
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                var raw = await WaitAsync(_dbs[first].StringGetAsync(manifestKey), cancellationToken).ConfigureAwait(false);
                if (raw.IsNull)
                {
                    Interlocked.Increment(ref _misses);
                    return null;
                }

                var manifest = RedisManifest.Parse((byte[])raw!, Options.MaxValueBytes, key.ToString());
                var value = await ReadPiecesAsync(key, manifest, first, cancellationToken).ConfigureAwait(false);
                if (value is not null)
                {
                    Interlocked.Increment(ref _hits);
                    return value;
                }

                if (attempt >= 1)
                {
                    // Twice a piece was missing: expired or evicted, not overwritten meanwhile. The entry is gone.
                    await DropIncompleteAsync(key, manifestKey, raw, manifest, first, cancellationToken).ConfigureAwait(false);
                    Interlocked.Increment(ref _misses);
                    return null;
                }
            }
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            throw Unavailable("get", key, e);
        }
        catch (RedisServerException e) when (IsWrongType(e))
        {
            throw new KvBlobException($"The Redis entry {key} cannot be used: a key of it holds another Redis type.", e);
        }
    }

    /// <inheritdoc />
    /// <remarks>A value over <see cref="RedisTierOptions.MaxValueBytes"/> is refused: counted in
    /// <see cref="KvTierStatistics.Rejections"/>, logged, and any older value under the key removed.</remarks>
    /// <exception cref="KvTierUnavailableException">Redis cannot be reached, timed out, or refused the command.</exception>
    public async ValueTask PutAsync(TierKey key, ReadOnlyMemory<byte> blob, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        if (blob.Length > Options.MaxValueBytes)
        {
            Interlocked.Increment(ref _rejections);
            _logger.LogWarning("Redis tier refused {Key}: {Bytes} bytes is over MaxValueBytes ({MaxValueBytes})", key, blob.Length, Options.MaxValueBytes);
            await RemoveAsync(key, cancellationToken).ConfigureAwait(false);
            return;
        }

        var generation = NewGeneration();
        var manifest = RedisManifest.For(generation, blob.Span, Options.PieceBytes);
        var pieceTtl = Options.TimeToLive + Options.PieceExpiryGrace;
        var started = Stopwatch.GetTimestamp();
        var first = PickConnection();
        try
        {
            // Every piece first, issued together and spread over the pool's connections (each pipelines its share, and
            // a cluster routes each piece to its node). The pieces are slices of the caller's memory, not copies.
            var writes = new Task<bool>[manifest.PieceCount];
            for (var i = 0; i < writes.Length; i++)
            {
                var offset = (int)((long)i * manifest.PieceBytes);
                writes[i] = Database(first, i).StringSetAsync(_keys.Piece(key, generation, i), blob.Slice(offset, manifest.PieceLength(i)), pieceTtl);
            }

            try
            {
                await WaitAllAsync(writes, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                DeletePiecesInBackground(key, manifest, first);
                throw;
            }

            // The manifest must expire before its pieces: they were set at or after `started` with TTL + grace; the
            // manifest reaches the server at most one operation timeout after it is sent.
            var elapsed = Stopwatch.GetElapsedTime(started);
            var manifestTtl = Options.TimeToLive + Options.PieceExpiryGrace - elapsed - Options.OperationTimeout;
            if (manifestTtl > Options.TimeToLive)
            {
                manifestTtl = Options.TimeToLive;
            }

            if (manifestTtl < TimeSpan.FromMilliseconds(1))
            {
                DeletePiecesInBackground(key, manifest, first);
                throw new KvTierUnavailableException($"The Redis tier '{Name}' at {_endpoints} took {elapsed} to write the pieces of {key}, longer than PieceExpiryGrace allows; the value was not published.");
            }

            // Published only after every piece was acknowledged (on whichever connection): a reader that finds the
            // manifest finds its pieces.
            var previous = await WaitAsync(_dbs[first].StringSetAndGetAsync(_keys.Manifest(key), manifest.ToBytes(), manifestTtl, When.Always, CommandFlags.None), cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _puts);
            if (!previous.IsNull && RedisManifest.TryParse((byte[])previous!, long.MaxValue, out var old, out _) && old.Generation != generation)
            {
                await DeletePiecesAsync(key, old, first, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            throw Unavailable("put", key, e);
        }
    }

    /// <inheritdoc />
    /// <exception cref="KvTierUnavailableException">Redis cannot be reached, timed out, or refused the command.</exception>
    public async ValueTask<bool> RemoveAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        var first = PickConnection();
        var db = _dbs[first];
        try
        {
            // GETDEL: the manifest is gone at once for every reader; its pieces follow.
            RedisValue raw;
            try
            {
                raw = await WaitAsync(db.StringGetDeleteAsync(_keys.Manifest(key)), cancellationToken).ConfigureAwait(false);
            }
            catch (RedisServerException e) when (IsWrongType(e))
            {
                // Not a manifest at all (a key of another type under the manifest's name): removing the entry removes it.
                return await WaitAsync(db.KeyDeleteAsync(_keys.Manifest(key)), cancellationToken).ConfigureAwait(false);
            }

            if (raw.IsNull)
            {
                return false;
            }

            if (RedisManifest.TryParse((byte[])raw!, long.MaxValue, out var manifest, out _))
            {
                await DeletePiecesAsync(key, manifest, first, cancellationToken).ConfigureAwait(false);
            }

            return true;
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            throw Unavailable("remove", key, e);
        }
    }

    /// <inheritdoc />
    /// <remarks>True when the manifest is valid and every piece it names exists (the value's hash is checked only by
    /// <see cref="GetAsync"/>).</remarks>
    /// <exception cref="KvTierUnavailableException">Redis cannot be reached, timed out, or refused the command.</exception>
    public async ValueTask<bool> ContainsAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        var first = PickConnection();
        try
        {
            var raw = await WaitAsync(_dbs[first].StringGetAsync(_keys.Manifest(key)), cancellationToken).ConfigureAwait(false);
            if (raw.IsNull || !RedisManifest.TryParse((byte[])raw!, Options.MaxValueBytes, out var manifest, out _))
            {
                return false;
            }

            var exists = new Task<bool>[manifest.PieceCount];
            for (var i = 0; i < exists.Length; i++)
            {
                exists[i] = Database(first, i).KeyExistsAsync(_keys.Piece(key, manifest.Generation, i));
            }

            await WaitAllAsync(exists, cancellationToken).ConfigureAwait(false);
            return exists.All(t => t.Result);
        }
        catch (RedisServerException e) when (IsWrongType(e))
        {
            return false;
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            throw Unavailable("contains", key, e);
        }
    }

    /// <inheritdoc />
    /// <remarks>SCANs the manifest keys on every primary (in a cluster, each node holds its own slots).</remarks>
    /// <exception cref="KvTierUnavailableException">A primary is not connected, or a SCAN failed.</exception>
    public async IAsyncEnumerable<TierKey> ListAsync(KvNamespace? ns = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var pattern = _keys.ManifestPattern(ns);
        var first = PickConnection();
        foreach (var server in Primaries("list", first))
        {
            var keys = server.KeysAsync(_dbs[first].Database, pattern, ScanPageSize).GetAsyncEnumerator(cancellationToken);
            try
            {
                while (true)
                {
                    RedisKey current;
                    try
                    {
                        if (!await keys.MoveNextAsync().ConfigureAwait(false))
                        {
                            break;
                        }

                        current = keys.Current;
                    }
                    catch (Exception e) when (IsUnavailable(e))
                    {
                        throw Unavailable("list", server.EndPoint, e);
                    }

                    if (_keys.TryParseManifest(current, out var key) && (ns is null || key.Value.Namespace == ns.Value))
                    {
                        yield return key.Value;
                    }
                }
            }
            finally
            {
                await keys.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>Entries and bytes come from SCANning and reading every manifest (a full pass over the key space: for
    /// reports, not for a hot path); hits, misses, puts, rejections and expirations count this instance's operations.
    /// <see cref="KvTierStatistics.Expirations"/> counts entries found with a piece gone and dropped.</remarks>
    /// <exception cref="KvTierUnavailableException">A primary is not connected, or a command failed.</exception>
    public async ValueTask<KvTierStatistics> GetStatisticsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        long entries = 0, bytes = 0;
        var batch = new List<RedisKey>(StatisticsBatch);
        var first = PickConnection();
        foreach (var server in Primaries("statistics", first))
        {
            try
            {
                await foreach (var redisKey in server.KeysAsync(_dbs[first].Database, _keys.ManifestPattern(null), ScanPageSize).WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    batch.Add(redisKey);
                    if (batch.Count == StatisticsBatch)
                    {
                        (entries, bytes) = Add(await SumManifestsAsync(batch, first, cancellationToken).ConfigureAwait(false), entries, bytes);
                        batch.Clear();
                    }
                }

                (entries, bytes) = Add(await SumManifestsAsync(batch, first, cancellationToken).ConfigureAwait(false), entries, bytes);
                batch.Clear();
            }
            catch (Exception e) when (IsUnavailable(e))
            {
                throw Unavailable("statistics", server.EndPoint, e);
            }
        }

        return new KvTierStatistics
        {
            Tier = Name,
            Entries = entries,
            Bytes = bytes,
            Hits = Interlocked.Read(ref _hits),
            Misses = Interlocked.Read(ref _misses),
            Puts = Interlocked.Read(ref _puts),
            Rejections = Interlocked.Read(ref _rejections),
            Expirations = Interlocked.Read(ref _incompleteDropped),
        };

        static (long, long) Add((long Entries, long Bytes) sum, long entries, long bytes) => (entries + sum.Entries, bytes + sum.Bytes);
    }

    /// <inheritdoc />
    /// <remarks>PINGs every primary (one server when standalone) through every connection of the pool that is
    /// connected, so a slow connection shows here as it would to the operations that use it; a connection that is down
    /// while others serve is skipped, as operations skip it.</remarks>
    /// <exception cref="KvTierUnavailableException">A primary is not connected or does not answer in time.</exception>
    public async ValueTask ProbeAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        (IServer Server, Task<TimeSpan> Ping)[] pings;
        try
        {
            var connected = Enumerable.Range(0, _connections.Length).Where(c => _connections[c].IsConnected).ToArray();
            pings = [.. (connected.Length > 0 ? connected : [PickConnection()]).SelectMany(c => Primaries("probe", c)).Select(s => (s, s.PingAsync()))];
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            throw new KvTierUnavailableException($"The Redis tier '{Name}' at {_endpoints} is unavailable (probe): {e.Message}", e);
        }

        foreach (var (server, ping) in pings)
        {
            try
            {
                await WaitAsync(ping, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (IsUnavailable(e))
            {
                foreach (var (_, other) in pings)
                {
                    Observe(other);
                }

                throw Unavailable("probe", server.EndPoint, e);
            }
        }
    }

    /// <summary>Closes the connection (letting commands already sent finish).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var connection in _connections)
        {
            connection.ConnectionFailed -= OnConnectionFailed;
            connection.ConnectionRestored -= OnConnectionRestored;
        }

        await Task.WhenAll(_connections.Select(c => c.CloseAsync())).ConfigureAwait(false);
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Whether <paramref name="e"/> says Redis cannot serve now (as opposed to a bug or bad data).</summary>
    internal static bool IsUnavailable(Exception e) => e switch
    {
        RedisConnectionException or RedisTimeoutException or TimeoutException => true,
        RedisServerException server => !IsWrongType(server),
        _ => false,
    };

    private static bool IsWrongType(RedisServerException e) => e.Message.StartsWith("WRONGTYPE", StringComparison.Ordinal);

    private static UInt128 NewGeneration()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(bytes);
    }

    /// <summary>The value the pieces hold, or null when one is missing.</summary>
    /// <remarks>The pieces are read in parallel over the pool's connections, from <paramref name="first"/> on (so
    /// even one caller's value streams over several sockets), each into a pooled lease copied once into the value.</remarks>
    private async Task<byte[]?> ReadPiecesAsync(TierKey key, RedisManifest manifest, int first, CancellationToken cancellationToken)
    {
        var reads = new Task<Lease<byte>?>[manifest.PieceCount];
        for (var i = 0; i < reads.Length; i++)
        {
            reads[i] = Database(first, i).StringGetLeaseAsync(_keys.Piece(key, manifest.Generation, i));
        }

        try
        {
            await WaitAllAsync(reads, cancellationToken).ConfigureAwait(false);
            var value = GC.AllocateUninitializedArray<byte>((int)manifest.TotalLength);
            var missing = false;
            for (var i = 0; i < reads.Length; i++)
            {
                var piece = reads[i].Result;
                if (piece is null)
                {
                    missing = true;
                    continue;
                }

                var expected = manifest.PieceLength(i);
                if (piece.Length != expected)
                {
                    throw new KvBlobException($"The Redis entry {key} cannot be used: piece {i} is {piece.Length} bytes, not {expected}.");
                }

                piece.Span.CopyTo(value.AsSpan((int)((long)i * manifest.PieceBytes)));
            }

            if (missing)
            {
                return null;
            }

            if (XxHash3.HashToUInt64(value) != manifest.Hash)
            {
                throw new KvBlobException($"The Redis entry {key} cannot be used: the hash of its {manifest.TotalLength} bytes does not match its manifest.");
            }

            return value;
        }
        finally
        {
            foreach (var read in reads)
            {
                if (read.IsCompletedSuccessfully)
                {
                    read.Result?.Dispose();
                }
                else
                {
                    _ = read.ContinueWith(static t => t.Result?.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
                    Observe(read);
                }
            }
        }
    }

    private async Task DropIncompleteAsync(TierKey key, string manifestKey, RedisValue raw, RedisManifest manifest, int first, CancellationToken cancellationToken)
    {
        var deleted = await WaitAsync(_dbs[first].ScriptEvaluateAsync(DeleteIfUnchangedScript, [manifestKey], [raw]), cancellationToken).ConfigureAwait(false);
        if ((long)deleted == 1)
        {
            Interlocked.Increment(ref _incompleteDropped);
            _logger.LogInformation("Redis tier dropped {Key}: a piece of it expired or was evicted", key);
            await DeletePiecesAsync(key, manifest, first, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Deletes a generation's pieces (one DEL per key: in a cluster they live in different slots). A failure
    /// only leaves them until their expiry, so it is logged, not thrown.</summary>
    private async Task DeletePiecesAsync(TierKey key, RedisManifest manifest, int first, CancellationToken cancellationToken)
    {
        var deletes = new Task<bool>[manifest.PieceCount];
        for (var i = 0; i < deletes.Length; i++)
        {
            deletes[i] = Database(first, i).KeyDeleteAsync(_keys.Piece(key, manifest.Generation, i));
        }

        try
        {
            await WaitAllAsync(deletes, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            _logger.LogDebug(e, "Redis tier could not delete the old pieces of {Key}; they expire on their own", key);
        }
    }

    private void DeletePiecesInBackground(TierKey key, RedisManifest manifest, int first)
    {
        for (var i = 0; i < manifest.PieceCount; i++)
        {
            Database(first, i).KeyDelete(_keys.Piece(key, manifest.Generation, i), CommandFlags.FireAndForget);
        }
    }

    private async Task<(long Entries, long Bytes)> SumManifestsAsync(List<RedisKey> keys, int first, CancellationToken cancellationToken)
    {
        var reads = keys.Select((k, i) => Database(first, i).StringGetAsync(k)).ToArray();
        await WaitAllAsync(reads, cancellationToken).ConfigureAwait(false);
        long entries = 0, bytes = 0;
        foreach (var read in reads)
        {
            if (!read.Result.IsNull && RedisManifest.TryParse((byte[])read.Result!, long.MaxValue, out var manifest, out _))
            {
                entries++;
                bytes += manifest.TotalLength;
            }
        }

        return (entries, bytes);
    }

    /// <summary>
    /// The primaries to SCAN or PING, all connected: in a cluster, the servers that own slots in the cluster's current
    /// view (so an old primary that failed over and stays unreachable does not hold the tier down); otherwise every
    /// server the client knows that is not a replica.
    /// </summary>
    private IServer[] Primaries(string operation, int connection)
    {
        var known = _connections[connection].GetServers();
        var servers = known.Where(s => !s.IsReplica).ToArray();
        var cluster = known.Where(s => s.IsConnected && s.ServerType == ServerType.Cluster).Select(s => s.ClusterConfiguration).FirstOrDefault(c => c is not null);
        if (cluster is not null)
        {
            var owners = cluster.Nodes.Where(n => !n.IsReplica && n.Slots.Count > 0 && n.EndPoint is not null).Select(n => n.EndPoint!.ToString()).ToHashSet(StringComparer.OrdinalIgnoreCase);
            var owning = servers.Where(s => owners.Contains(s.EndPoint.ToString() ?? string.Empty)).ToArray();
            if (owning.Length == owners.Count)
            {
                servers = owning;
            }
        }

        if (servers.Length == 0)
        {
            throw new KvTierUnavailableException($"The Redis tier '{Name}' at {_endpoints} is unavailable ({operation}): no primary is known.");
        }

        foreach (var server in servers)
        {
            if (!server.IsConnected)
            {
                throw new KvTierUnavailableException($"The Redis tier '{Name}' at {_endpoints} is unavailable ({operation}): the primary {server.EndPoint} is not connected.");
            }
        }

        return servers;
    }

    /// <summary>
    /// The connection an operation starts on: the next in turn that is connected (the first in turn when none is, so
    /// the operation fails as unavailable the usual way). Round-robin rather than least-loaded: every operation
    /// spreads its pieces over all connections from there, so the load evens out without bookkeeping per command.
    /// </summary>
    private int PickConnection()
    {
        var count = _connections.Length;
        if (count == 1)
        {
            return 0;
        }

        var start = (int)((uint)Interlocked.Increment(ref _nextConnection) % (uint)count);
        for (var i = 0; i < count; i++)
        {
            var candidate = (start + i) % count;
            if (_connections[candidate].IsConnected)
            {
                return candidate;
            }
        }

        return start;
    }

    /// <summary>The connection for the <paramref name="index"/>th command of an operation that started on
    /// <paramref name="first"/>: the next ones in turn, or <paramref name="first"/> again when that one is down.</summary>
    private IDatabase Database(int first, int index)
    {
        var count = _connections.Length;
        if (count == 1)
        {
            return _dbs[0];
        }

        var candidate = (first + index) % count;
        return candidate == first || _connections[candidate].IsConnected ? _dbs[candidate] : _dbs[first];
    }

    private KvTierUnavailableException Unavailable(string operation, TierKey key, Exception e) =>
        new($"The Redis tier '{Name}' at {_endpoints} is unavailable ({operation} {key}): {e.Message}", e);

    private KvTierUnavailableException Unavailable(string operation, System.Net.EndPoint endPoint, Exception e) =>
        new($"The Redis tier '{Name}' at {_endpoints} is unavailable ({operation} on {endPoint}): {e.Message}", e);

    private static async Task<T> WaitAsync<T>(Task<T> task, CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            return await task.ConfigureAwait(false);
        }

        try
        {
            return await task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Observe(task);
            throw;
        }
    }

    private static async Task WaitAllAsync(Task[] tasks, CancellationToken cancellationToken)
    {
        try
        {
            await Task.WhenAll(tasks).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            foreach (var task in tasks)
            {
                Observe(task);
            }

            throw;
        }
    }

    /// <summary>Keeps a command abandoned by cancellation or a sibling's failure from raising an unobserved exception later.</summary>
    private static void Observe(Task task) =>
        task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e) =>
        _logger.LogWarning(e.Exception, "Redis tier lost {EndPoint} ({FailureType}); reconnecting", e.EndPoint, e.FailureType);

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e) =>
        _logger.LogInformation("Redis tier reconnected to {EndPoint}", e.EndPoint);
}
