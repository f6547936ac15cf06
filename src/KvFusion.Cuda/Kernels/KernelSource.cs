using System.Reflection;
using System.Security.Cryptography;
using System.Text;

namespace KvFusion.Cuda.Kernels;

/// <summary>One kernel source file (a CUDA module) with the headers it includes.</summary>
public sealed class KernelSource
{
    internal KernelSource(string name, string text, IReadOnlyList<KernelHeader> headers)
    {
        Name = name;
        Text = text;
        Headers = headers;
        var sha = new StringBuilder();
        sha.Append(FileName).Append('\n').Append(text);
        foreach (var h in headers)
        {
            sha.Append('\n').Append(h.Name).Append('\n').Append(h.Text);
        }

        Hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sha.ToString())));
    }

    /// <summary>The module name (the file name without <c>.cu</c>).</summary>
    public string Name { get; }

    /// <summary>The file name, as NVRTC reports it in diagnostics.</summary>
    public string FileName => Name + ".cu";

    /// <summary>The source text.</summary>
    public string Text { get; }

    /// <summary>The headers the source may include, by name.</summary>
    public IReadOnlyList<KernelHeader> Headers { get; }

    /// <summary>SHA-256 (hex) over the file name, the source and every header: the source part of the cubin cache key.</summary>
    public string Hash { get; }
}

/// <summary>A header a kernel source includes (<c>#include "name"</c>).</summary>
/// <param name="Name">The include name.</param>
/// <param name="Text">The header text.</param>
public sealed record KernelHeader(string Name, string Text);

/// <summary>The kernel sources embedded in this assembly (the repository's <c>kernels/*.cu</c> and <c>kernels/*.cuh</c>).</summary>
public static class KernelSources
{
    private const string Prefix = "KvFusion.Cuda.kernels.";
    private static readonly Lazy<IReadOnlyList<KernelSource>> Loaded = new(Load);

    /// <summary>Every embedded module, ordered by name.</summary>
    public static IReadOnlyList<KernelSource> All => Loaded.Value;

    /// <summary>The module of the given name.</summary>
    /// <exception cref="KeyNotFoundException">No such module is embedded.</exception>
    public static KernelSource Get(string name)
    {
        foreach (var s in All)
        {
            if (s.Name == name)
            {
                return s;
            }
        }

        throw new KeyNotFoundException($"No kernel module '{name}' is embedded in {typeof(KernelSources).Assembly.GetName().Name}.");
    }

    private static List<KernelSource> Load()
    {
        var assembly = typeof(KernelSources).Assembly;
        var headers = new List<KernelHeader>();
        var sources = new List<(string Name, string Text)>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(Prefix, StringComparison.Ordinal))
            {
                continue;
            }

            var file = resource[Prefix.Length..];
            var text = Read(assembly, resource);
            if (file.EndsWith(".cuh", StringComparison.Ordinal))
            {
                headers.Add(new KernelHeader(file, text));
            }
            else if (file.EndsWith(".cu", StringComparison.Ordinal))
            {
                sources.Add((file[..^3], text));
            }
        }

        headers.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        sources.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        var list = new List<KernelSource>(sources.Count);
        foreach (var (name, text) in sources)
        {
            list.Add(new KernelSource(name, text, headers));
        }

        return list;
    }

    private static string Read(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"Embedded resource '{resource}' is missing.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
