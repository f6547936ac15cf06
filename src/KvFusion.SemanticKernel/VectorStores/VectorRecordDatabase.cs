using System.Text;
using RocksDbSharp;

namespace KvFusion.SemanticKernel.VectorStores;

/// <summary>
/// The RocksDB file of a <see cref="ChunkVectorStore"/>: one marker per collection and one value per record, keyed so a
/// collection's records are one contiguous range.
/// </summary>
internal sealed class VectorRecordDatabase : IDisposable
{
    private const byte CollectionTag = (byte)'c';
    private const byte RecordTag = (byte)'r';
    private const byte Separator = 0;

    private readonly RocksDb _db;
    private readonly DbOptions _options;
    private readonly WriteOptions _writes;

    private VectorRecordDatabase(string path, bool syncWrites)
    {
        Path = path;
        _options = new DbOptions().SetCreateIfMissing(true).SetWalRecoveryMode(Recovery.PointInTime).SetKeepLogFileNum(4);
        _writes = new WriteOptions().SetSync(syncWrites);
        try
        {
            Directory.CreateDirectory(path);
            _db = RocksDb.Open(_options, path);
        }
        catch (Exception e) when (e is RocksDbException or RocksDbSharpException or IOException or UnauthorizedAccessException)
        {
            throw new IOException($"The vector store cannot open its RocksDB database at {path}: {e.Message}", e);
        }
    }

    /// <summary>The database's directory.</summary>
    public string Path { get; }

    public static VectorRecordDatabase Open(string path, bool syncWrites) => new(path, syncWrites);

    /// <summary>Every collection with its records' keys and values.</summary>
    public Dictionary<string, Dictionary<string, byte[]>> LoadAll(CancellationToken cancellationToken)
    {
        var collections = new Dictionary<string, Dictionary<string, byte[]>>(StringComparer.Ordinal);
        Call(() =>
        {
            using var iterator = _db.NewIterator();
            for (iterator.SeekToFirst(); iterator.Valid(); iterator.Next())
            {
                cancellationToken.ThrowIfCancellationRequested();
                var key = iterator.GetKeySpan();
                if (key.Length == 0)
                {
                    continue;
                }
                var body = key[1..];
                if (key[0] == CollectionTag)
                {
                    var name = Encoding.UTF8.GetString(body);
                    if (!collections.ContainsKey(name))
                    {
                        collections[name] = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                    }
                }
                else if (key[0] == RecordTag)
                {
                    var split = body.IndexOf(Separator);
                    if (split < 0)
                    {
                        throw new InvalidDataException($"The vector store at {Path} has a record key without a collection name: {Convert.ToHexString(key)}.");
                    }
                    var name = Encoding.UTF8.GetString(body[..split]);
                    if (!collections.TryGetValue(name, out var records))
                    {
                        records = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                        collections[name] = records;
                    }
                    records[Encoding.UTF8.GetString(body[(split + 1)..])] = iterator.Value();
                }
            }
            return 0;
        }, "load");
        return collections;
    }

    public void CreateCollection(string name) => Call(() =>
    {
        _db.Put(CollectionKey(name), Array.Empty<byte>(), null, _writes);
        return 0;
    }, "create a collection");

    public void DeleteCollection(string name) => Call(() =>
    {
        using var batch = new WriteBatch();
        batch.Delete(CollectionKey(name));
        var prefix = RecordPrefix(name);
        var end = prefix.ToArray();
        end[^1] = Separator + 1;
        batch.DeleteRange(prefix, (ulong)prefix.Length, end, (ulong)end.Length);
        _db.Write(batch, _writes);
        return 0;
    }, "delete a collection");

    public void Put(string name, IReadOnlyList<(string Key, byte[] Value)> records) => Call(() =>
    {
        using var batch = new WriteBatch();
        foreach (var (key, value) in records)
        {
            batch.Put(RecordKey(name, key), value);
        }
        _db.Write(batch, _writes);
        return 0;
    }, "write records");

    public void Delete(string name, IReadOnlyList<string> keys) => Call(() =>
    {
        using var batch = new WriteBatch();
        foreach (var key in keys)
        {
            batch.Delete(RecordKey(name, key));
        }
        _db.Write(batch, _writes);
        return 0;
    }, "delete records");

    public void Dispose()
    {
        _db.Dispose();
    }

    private static byte[] CollectionKey(string name)
    {
        var bytes = new byte[1 + Encoding.UTF8.GetByteCount(name)];
        bytes[0] = CollectionTag;
        Encoding.UTF8.GetBytes(name, bytes.AsSpan(1));
        return bytes;
    }

    private static byte[] RecordPrefix(string name)
    {
        var bytes = new byte[2 + Encoding.UTF8.GetByteCount(name)];
        bytes[0] = RecordTag;
        Encoding.UTF8.GetBytes(name, bytes.AsSpan(1));
        bytes[^1] = Separator;
        return bytes;
    }

    private static byte[] RecordKey(string name, string key)
    {
        var prefix = RecordPrefix(name);
        var bytes = new byte[prefix.Length + Encoding.UTF8.GetByteCount(key)];
        prefix.CopyTo(bytes, 0);
        Encoding.UTF8.GetBytes(key, bytes.AsSpan(prefix.Length));
        return bytes;
    }

    private T Call<T>(Func<T> action, string operation)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is RocksDbException or RocksDbSharpException)
        {
            throw new IOException($"The vector store's RocksDB database at {Path} failed to {operation}: {e.Message}", e);
        }
    }
}
