using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Storage;

/// <summary>Settings of a <see cref="DirectoryBlobStore"/>.</summary>
public sealed record DirectoryBlobStoreOptions
{
    /// <summary>The largest blob read back (a larger file is refused with <see cref="KvBlobException"/>, not allocated).</summary>
    public long MaxBlobBytes { get; init; } = Array.MaxLength;

    /// <summary>Flush each written blob to the disk before it is renamed into place (survives a power loss, costs a sync).</summary>
    public bool FlushToDisk { get; init; } = true;

    /// <summary>Checks the ranges.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        if (MaxBlobBytes < 1 || MaxBlobBytes > Array.MaxLength)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(MaxBlobBytes)} must be from 1 to {Array.MaxLength}; got {MaxBlobBytes}."));
        }
    }
}

/// <summary>
/// Blobs as files, one per key, in one folder: <c>chunk-ID-VARIANT.kvc</c> or <c>prefix-ID.kvc</c>. The name is
/// derived from the key so that no key can name a path outside the folder; a write goes to a temporary file beside
/// the target and is renamed over it, so a reader sees the old blob or the new one, never half of one.
/// </summary>
public sealed class DirectoryBlobStore : IKvBlobStore
{
    /// <summary>The extension of the blob files.</summary>
    public const string Extension = ".kvc";

    // Variants beyond this are named by their hash, keeping names far below the usual 255-byte limit.
    private const int MaxVariantNameLength = 120;

    private readonly DirectoryBlobStoreOptions _options;

    /// <summary>Opens (creating it when needed) the folder <paramref name="directory"/>.</summary>
    /// <exception cref="ArgumentException">The options are out of range.</exception>
    /// <exception cref="IOException">The folder cannot be created.</exception>
    public DirectoryBlobStore(string directory, DirectoryBlobStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        _options = options ?? new DirectoryBlobStoreOptions();
        _options.Validate();
        Directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(Directory);
    }

    /// <summary>The folder, as a full path.</summary>
    public string Directory { get; }

    /// <summary>The file that holds <paramref name="key"/>'s blob.</summary>
    /// <exception cref="ArgumentException">The key's id is not lowercase hex.</exception>
    public string PathOf(CacheKey key) => Path.Combine(Directory, FileNameOf(key));

    /// <summary>The file name of a key: only lowercase ASCII letters, digits, '-', '_' and the extension's '.'; never a path.</summary>
    /// <exception cref="ArgumentException">The key's id is not 1 to 128 lowercase hex digits.</exception>
    public static string FileNameOf(CacheKey key)
    {
        if (key.Id is not { Length: >= 1 and <= 128 } id || !id.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f'))
        {
            throw new ArgumentException($"A stored key's id must be 1 to 128 lowercase hex digits; got '{key.Id}'.", nameof(key));
        }

        return key.Kind switch
        {
            CacheEntryKind.Chunk => $"chunk-{id}-{VariantName(key.Variant ?? string.Empty)}{Extension}",
            CacheEntryKind.PrefixBlock => $"prefix-{id}{Extension}",
            _ => throw new ArgumentException($"Unknown entry kind {key.Kind}.", nameof(key)),
        };
    }

    /// <inheritdoc />
    public async ValueTask<ReadOnlyMemory<byte>?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        FileStream stream;
        try
        {
            // Delete sharing: a concurrent put renames over the file, and a remove deletes it, while it is read.
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }

        await using (stream.ConfigureAwait(false))
        {
            var length = stream.Length;
            if (length > _options.MaxBlobBytes)
            {
                throw new KvBlobException(string.Create(CultureInfo.InvariantCulture, $"{path}: {length} bytes, more than the {_options.MaxBlobBytes} this store reads."));
            }

            var blob = new byte[length];
            try
            {
                await stream.ReadExactlyAsync(blob, cancellationToken).ConfigureAwait(false);
            }
            catch (EndOfStreamException e)
            {
                throw new KvBlobException($"{path}: the file ended before its length while it was read.", e);
            }

            return blob;
        }
    }

    /// <inheritdoc />
    public async ValueTask PutAsync(CacheKey key, ReadOnlyMemory<byte> blob, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        // Beside the target, so the rename stays within one file system and is atomic.
        var temp = Path.Combine(Directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(blob, cancellationToken).ConfigureAwait(false);
                if (_options.FlushToDisk)
                {
                    stream.Flush(flushToDisk: true);
                }
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            // A no-op after the rename; removes the partial file after a failure or cancellation.
            File.Delete(temp);
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        if (!File.Exists(path))
        {
            return ValueTask.FromResult(false);
        }

        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
            return ValueTask.FromResult(false);
        }

        return ValueTask.FromResult(true);
    }

    /// <inheritdoc />
    public ValueTask<bool> ContainsAsync(CacheKey key, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(File.Exists(PathOf(key)));

    /// <summary>
    /// Lowercase letters, digits and '-' stay; every other UTF-8 byte is <c>_xx</c> (so ':' is <c>_3a</c>),
    /// which keeps distinct variants distinct; a long result is replaced by <c>_h</c> and its SHA-256 (an escape is
    /// always followed by a hex digit, so the two kinds of name never meet).
    /// </summary>
    private static string VariantName(string variant)
    {
        var sb = new StringBuilder(variant.Length + 8);
        foreach (var b in Encoding.UTF8.GetBytes(variant))
        {
            if (b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'0' and <= (byte)'9') or (byte)'-')
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append('_').Append(b.ToString("x2", CultureInfo.InvariantCulture));
            }
        }

        return sb.Length <= MaxVariantNameLength
            ? sb.ToString()
            : "_h" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(variant)));
    }
}
