using System.Runtime.InteropServices;
using System.Text;
using KvFusion.Cuda.Interop;

namespace KvFusion.Cuda.Kernels;

/// <summary>Compiles kernel sources to cubins with NVRTC (no CUDA toolkit headers needed: the sources are self-contained).</summary>
public sealed unsafe class NvrtcCompiler : IKernelCompiler
{
    private NvrtcCompiler(string version)
    {
        Version = version;
    }

    /// <inheritdoc />
    public string Version { get; }

    /// <summary>Loads NVRTC and reads its version.</summary>
    /// <exception cref="CudaLibraryNotFoundException">NVRTC is not installed where the locator looks.</exception>
    public static NvrtcCompiler Create()
    {
        CudaLibraries.Require(CudaLibraryKind.Nvrtc);
        Nvrtc.Check(Nvrtc.nvrtcVersion(out var major, out var minor), nameof(Nvrtc.nvrtcVersion));
        return new NvrtcCompiler($"{major}.{minor}");
    }

    /// <inheritdoc />
    public IReadOnlyList<string> Options(string architecture) =>
        [$"--gpu-architecture={architecture}", "--std=c++17", "--device-as-default-execution-space"];

    /// <inheritdoc />
    public byte[] Compile(KernelSource source, string architecture)
    {
        ArgumentNullException.ThrowIfNull(source);
        var strings = new List<nint>();
        try
        {
            var src = Utf8(source.Text, strings);
            var name = Utf8(source.FileName, strings);
            var headerCount = source.Headers.Count;
            var headers = stackalloc byte*[Math.Max(headerCount, 1)];
            var includeNames = stackalloc byte*[Math.Max(headerCount, 1)];
            for (var i = 0; i < headerCount; i++)
            {
                headers[i] = Utf8(source.Headers[i].Text, strings);
                includeNames[i] = Utf8(source.Headers[i].Name, strings);
            }

            Nvrtc.Check(Nvrtc.nvrtcCreateProgram(out var raw, src, name, headerCount, headers, includeNames), nameof(Nvrtc.nvrtcCreateProgram));
            using var program = new NvrtcProgramHandle(raw);
            var options = Options(architecture);
            var optionPointers = stackalloc byte*[options.Count];
            for (var i = 0; i < options.Count; i++)
            {
                optionPointers[i] = Utf8(options[i], strings);
            }

            var status = Nvrtc.nvrtcCompileProgram(raw, options.Count, optionPointers);
            if (status != 0)
            {
                Nvrtc.Check(status, $"nvrtcCompileProgram({source.FileName}, {architecture})", Log(raw));
            }

            Nvrtc.Check(Nvrtc.nvrtcGetCUBINSize(raw, out var size), nameof(Nvrtc.nvrtcGetCUBINSize));
            var cubin = new byte[(int)size];
            fixed (byte* p = cubin)
            {
                Nvrtc.Check(Nvrtc.nvrtcGetCUBIN(raw, p), nameof(Nvrtc.nvrtcGetCUBIN));
            }

            return cubin;
        }
        finally
        {
            foreach (var p in strings)
            {
                Marshal.FreeHGlobal(p);
            }
        }
    }

    private static string Log(nint program)
    {
        if (Nvrtc.nvrtcGetProgramLogSize(program, out var size) != 0 || size <= 1)
        {
            return "no compiler log";
        }

        var buffer = new byte[(int)size];
        fixed (byte* p = buffer)
        {
            if (Nvrtc.nvrtcGetProgramLog(program, p) != 0)
            {
                return "no compiler log";
            }
        }

        return Encoding.UTF8.GetString(buffer, 0, buffer.Length - 1).Trim();
    }

    private static byte* Utf8(string text, List<nint> owned)
    {
        var bytes = Encoding.UTF8.GetByteCount(text);
        var p = (byte*)Marshal.AllocHGlobal(bytes + 1);
        owned.Add((nint)p);
        Encoding.UTF8.GetBytes(text, new Span<byte>(p, bytes));
        p[bytes] = 0;
        return p;
    }
}
