using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KvFusion.Cuda.Kernels;

/// <summary>
/// Compiled cubins on disk, keyed by the source hash, the GPU architecture, the compiler version and its options,
/// so that NVRTC runs once per kernel change and machine. Each file carries a SHA-256 of its payload: a truncated
/// or corrupt entry is detected, recompiled and replaced. Writes are atomic (temporary file, then rename). A cache
/// folder that cannot be written only costs the recompilation.
/// </summary>
public sealed partial class CubinCache
{
    /// <summary>The environment variable that overrides the cache folder.</summary>
    public const string DirectoryVariable = "KVFUSION_CUBIN_CACHE";

    private static ReadOnlySpan<byte> Magic => "KVFCUBIN"u8;
    private const int FormatVersion = 1;
    private const int HeaderBytes = 8 + 4 + 8 + 32;

    private readonly ILogger _logger;

    /// <summary>Creates a cache in <paramref name="directory"/> (default: <see cref="DefaultDirectory"/>).</summary>
    public CubinCache(string? directory = null, ILogger? logger = null)
    {
        Directory = directory ?? DefaultDirectory();
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The cache folder.</summary>
    public string Directory { get; }

    /// <summary><c>KVFUSION_CUBIN_CACHE</c>, else <c>$XDG_CACHE_HOME/kvfusion/cubin</c>, else <c>~/.cache/kvfusion/cubin</c>.</summary>
    public static string DefaultDirectory()
    {
        var overridden = Environment.GetEnvironmentVariable(DirectoryVariable);
        if (!string.IsNullOrWhiteSpace(overridden))
        {
            return overridden;
        }

        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = !string.IsNullOrWhiteSpace(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "kvfusion", "cubin");
    }

    /// <summary>The cache key (hex SHA-256) of a source compiled for an architecture by a compiler.</summary>
    public static string Key(KernelSource source, string architecture, IKernelCompiler compiler)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(compiler);
        var text = new StringBuilder()
            .Append(source.Hash).Append('\n')
            .Append(architecture).Append('\n')
            .Append(compiler.Version).Append('\n')
            .AppendJoin(' ', compiler.Options(architecture))
            .ToString();
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>The file that holds (or will hold) the cubin of a source for an architecture.</summary>
    public string PathFor(KernelSource source, string architecture, IKernelCompiler compiler) =>
        Path.Combine(Directory, $"{source.Name}-{architecture}-{Key(source, architecture, compiler)[..24]}.cubin");

    /// <summary>Returns the cached cubin, or compiles, stores and returns it.</summary>
    public byte[] GetOrCompile(KernelSource source, string architecture, IKernelCompiler compiler, out bool fromCache)
    {
        var path = PathFor(source, architecture, compiler);
        var cached = TryRead(path);
        if (cached is not null)
        {
            fromCache = true;
            return cached;
        }

        var cubin = compiler.Compile(source, architecture);
        TryWrite(path, cubin);
        fromCache = false;
        return cubin;
    }

    private byte[]? TryRead(string path)
    {
        byte[] file;
        try
        {
            if (!File.Exists(path))
            {
                return null;
            }

            file = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            LogUnreadable(path, e.Message);
            return null;
        }
        catch (UnauthorizedAccessException e)
        {
            LogUnreadable(path, e.Message);
            return null;
        }

        var payload = Decode(file);
        if (payload is null)
        {
            LogCorrupt(path);
        }

        return payload;
    }

    /// <summary>The payload of a cache file, or null when its header, length or checksum is wrong.</summary>
    internal static byte[]? Decode(ReadOnlySpan<byte> file)
    {
        if (file.Length < HeaderBytes || !file[..8].SequenceEqual(Magic)
            || BinaryPrimitives.ReadInt32LittleEndian(file[8..]) != FormatVersion)
        {
            return null;
        }

        var length = BinaryPrimitives.ReadInt64LittleEndian(file[12..]);
        if (length != file.Length - HeaderBytes)
        {
            return null;
        }

        var payload = file[HeaderBytes..];
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(payload, hash);
        return hash.SequenceEqual(file.Slice(20, 32)) ? payload.ToArray() : null;
    }

    /// <summary>A cache file for a payload.</summary>
    internal static byte[] Encode(ReadOnlySpan<byte> payload)
    {
        var file = new byte[HeaderBytes + payload.Length];
        Magic.CopyTo(file);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(8), FormatVersion);
        BinaryPrimitives.WriteInt64LittleEndian(file.AsSpan(12), payload.Length);
        SHA256.HashData(payload, file.AsSpan(20, 32));
        payload.CopyTo(file.AsSpan(HeaderBytes));
        return file;
    }

    private void TryWrite(string path, byte[] cubin)
    {
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            File.WriteAllBytes(temp, Encode(cubin));
            File.Move(temp, path, overwrite: true);
        }
        catch (IOException e)
        {
            LogUnwritable(path, e.Message);
            TryDelete(temp);
        }
        catch (UnauthorizedAccessException e)
        {
            LogUnwritable(path, e.Message);
            TryDelete(temp);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cubin cache entry {Path} is corrupt or truncated; recompiling")]
    private partial void LogCorrupt(string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cubin cache entry {Path} cannot be read ({Reason}); recompiling")]
    private partial void LogUnreadable(string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cubin cache entry {Path} cannot be written ({Reason}); the kernels will be compiled again next time")]
    private partial void LogUnwritable(string path, string reason);
}
