namespace KvFusion.Cuda.Kernels;

/// <summary>Compiles a kernel source to a cubin for one GPU architecture.</summary>
public interface IKernelCompiler
{
    /// <summary>The compiler's version (part of the cubin cache key).</summary>
    string Version { get; }

    /// <summary>The options used for an architecture (part of the cubin cache key).</summary>
    IReadOnlyList<string> Options(string architecture);

    /// <summary>Compiles <paramref name="source"/> for <paramref name="architecture"/> (e.g. <c>sm_90</c>).</summary>
    byte[] Compile(KernelSource source, string architecture);
}
