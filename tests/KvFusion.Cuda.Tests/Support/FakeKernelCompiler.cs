using System.Security.Cryptography;
using System.Text;
using KvFusion.Cuda.Kernels;

namespace KvFusion.Cuda.Tests.Support;

/// <summary>A compiler that counts its calls and returns bytes derived from its inputs (same inputs, same bytes).</summary>
internal sealed class FakeKernelCompiler : IKernelCompiler
{
    private int _compileCount;

    public FakeKernelCompiler(string version = "12.8", params string[] extraOptions)
    {
        Version = version;
        ExtraOptions = extraOptions;
    }

    public string Version { get; }

    public IReadOnlyList<string> ExtraOptions { get; }

    public int CompileCount => Volatile.Read(ref _compileCount);

    public IReadOnlyList<string> Options(string architecture) => [$"--gpu-architecture={architecture}", .. ExtraOptions];

    public byte[] Compile(KernelSource source, string architecture)
    {
        Interlocked.Increment(ref _compileCount);
        return Expected(source, architecture);
    }

    /// <summary>What <see cref="Compile"/> returns for these inputs: a few KiB, varying with every input.</summary>
    public byte[] Expected(KernelSource source, string architecture)
    {
        var seed = SHA256.HashData(Encoding.UTF8.GetBytes($"{source.Hash}|{architecture}|{Version}|{string.Join(' ', Options(architecture))}"));
        var bytes = new byte[4096 + seed[0]];
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(seed[i % seed.Length] ^ i);
        }

        return bytes;
    }
}
