using System.Globalization;
using KvFusion.Cuda.Interop;
using KvFusion.Cuda.Kernels;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;
using KvFusion.Engine.SafeTensors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KvFusion.Cuda.Backend;

/// <summary>
/// The GPU backend: weights in their stored dtype (F16, BF16 or F32) in device memory, float32 activations and KV
/// cache, GEMMs through <c>cublasGemmEx</c> with the activations converted to the weights' half type and float32
/// accumulation, and KvFusion's own kernels for everything else. All work is queued on one non-blocking stream;
/// the host waits only where it reads results (<see cref="Download"/>, <see cref="Synchronize"/>). Uploads are staged
/// in pinned buffers (<see cref="StagingRing"/>), so a caller's span is free as soon as an upload returns.
/// Safe for concurrent use by any number of sessions: every operation (and each measurement of
/// <see cref="MeasureMilliseconds"/>) holds the backend's operation lock while it checks its arguments, grows
/// scratch, stages uploads, queues its work and, for a download, waits for and copies out the result; operations of
/// different threads therefore never overlap on the host, and the one stream orders their device work as they
/// were queued. Scratch a queued operation reads (converted GEMM input, attention partials, half-precision import
/// staging) is overwritten only by work queued after it on the same stream, and grown only after the stream has
/// drained; the pinned download buffer is copied out before the lock is released.
/// Index errors found by kernels (a token id outside the vocabulary, a cache slot outside the capacity) are raised at
/// the next synchronization point, which may be another session's operation.
/// </summary>
public sealed unsafe partial class CudaBackend : ComputeBackend, IAsyncDisposable
{
    private const int ElementwiseThreads = 256;
    private const float Log2E = 1.4426950408889634f;

    private readonly CudaContextHandle _context;
    private readonly nint _contextRaw;
    private readonly CudaStreamHandle _stream;
    private readonly nint _streamRaw;
    private readonly CublasHandle _cublas;
    private readonly KernelModules _kernels;
    private readonly StagingRing _staging;
    private readonly CudaDeviceMemory _errorWord;
    private readonly PinnedHostBuffer _errorHost;
    private readonly ILogger _logger;
    private readonly int _maxGridBlocks;

    private readonly CudaWeightPrecision _weightPrecision;
    private PinnedHostBuffer? _download;
    private CudaDeviceMemory? _gemmInput;
    private CudaDeviceMemory? _attentionPartials;
    private CudaDeviceMemory? _attentionLse;
    private CudaDeviceMemory? _importHalf;

    private CudaBackend(CudaDeviceInfo device, CudaBackendOptions options, ILogger logger)
    {
        Device = device;
        _logger = logger;
        _weightPrecision = options.WeightPrecision;
        var handle = CudaDevices.Handle(device.Ordinal);
        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(out var ctx, handle), nameof(CudaDriver.cuDevicePrimaryCtxRetain));
        _context = new CudaContextHandle(ctx, handle);
        _contextRaw = ctx;
        try
        {
            MakeCurrent();
            _stream = CudaStreamHandle.Create(CudaDriver.StreamNonBlocking);
            _streamRaw = _stream.DangerousGetHandle();
            _cublas = CublasHandle.Create();
            CuBlas.Check(CuBlas.cublasSetStream(_cublas.DangerousGetHandle(), _streamRaw), nameof(CuBlas.cublasSetStream));
            CuBlas.Check(CuBlas.cublasGetVersion(_cublas.DangerousGetHandle(), out var cublasVersion), nameof(CuBlas.cublasGetVersion));
            CublasVersion = cublasVersion;
            var compiler = NvrtcCompiler.Create();
            CompilerVersion = compiler.Version;
            _kernels = new KernelModules(device.Architecture, new CubinCache(options.CubinCacheDirectory, logger), compiler, logger);
            _staging = new StagingRing(options.StagingBufferBytes);
            _errorWord = CudaDeviceMemory.Allocate(sizeof(int));
            _errorHost = PinnedHostBuffer.Allocate(sizeof(int));
            CudaDriver.Check(CudaDriver.cuMemsetD32Async(_errorWord.Pointer, 0, 1, _streamRaw), nameof(CudaDriver.cuMemsetD32Async));
            _maxGridBlocks = Math.Max(1, device.Multiprocessors * 16);
            LogOpened(device.ToString(), cublasVersion, compiler.Version, _weightPrecision);
        }
        catch
        {
            DisposeResources();
            throw;
        }
    }

    /// <summary>The device this backend computes on.</summary>
    public CudaDeviceInfo Device { get; }

    /// <summary>The NVRTC version that compiled (or keyed) the kernels.</summary>
    public string CompilerVersion { get; }

    /// <summary>The cuBLAS version (e.g. 130000).</summary>
    public int CublasVersion { get; }

    /// <inheritdoc />
    public override string DeviceName => string.Create(CultureInfo.InvariantCulture,
        $"CUDA: {Device}, cuBLAS {CublasVersion}, NVRTC {CompilerVersion}{(_weightPrecision == CudaWeightPrecision.Float32 ? ", float32 weights" : "")}");

    /// <summary>Opens device <see cref="CudaBackendOptions.DeviceOrdinal"/>, loads cuBLAS and the kernels.</summary>
    /// <exception cref="CudaLibraryNotFoundException">The driver, NVRTC or cuBLAS is not installed.</exception>
    /// <exception cref="CudaException">The driver reports no usable device, or a CUDA call fails.</exception>
    public static CudaBackend Create(CudaBackendOptions? options = null, ILogger? logger = null)
    {
        options ??= new CudaBackendOptions();
        options.Validate();
        var device = CudaDevices.Describe(options.DeviceOrdinal);
        CudaLibraries.Require(CudaLibraryKind.Cublas);
        CudaLibraries.Require(CudaLibraryKind.Nvrtc);
        return new CudaBackend(device, options, logger ?? NullLogger.Instance);
    }

    /// <inheritdoc />
    internal override DeviceTensor Allocate(TensorDType dtype, int rows, int cols)
    {
        using var op = Enter();

        MakeCurrent();
        var t = NewTensor(dtype, rows, cols);
        try
        {
            Check(CudaDriver.cuMemsetD8Async(t.Pointer, 0, (nuint)t.ByteCount, _streamRaw), nameof(CudaDriver.cuMemsetD8Async));
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    internal override DeviceTensor CreateWeight(SafeTensor source, int rows, int cols)
    {
        using var op = Enter();

        if ((long)rows * cols != source.ElementCount)
        {
            throw new ModelLoadException($"Tensor '{source.Name}' has {source.ElementCount} elements; expected {rows}×{cols}.");
        }

        MakeCurrent();
        if (_weightPrecision == CudaWeightPrecision.Float32 && source.DType is TensorDType.F16 or TensorDType.BF16)
        {
            return WidenedWeight(source, rows, cols);
        }

        // From pageable (memory-mapped) memory the copy is staged by the driver; queuing it on our stream orders it
        // before every kernel that reads the weight (a plain cuMemcpyHtoD runs on the legacy stream, which a
        // non-blocking stream does not wait for).
        var t = NewTensor(source.DType, rows, cols);
        try
        {
            Check(CudaDriver.cuMemcpyHtoDAsync(t.Pointer, source.Data, (nuint)source.ByteLength, _streamRaw), nameof(CudaDriver.cuMemcpyHtoDAsync));
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    private CudaTensor WidenedWeight(SafeTensor source, int rows, int cols)
    {
        using var half = CudaDeviceMemory.Allocate(source.ByteLength);
        Check(CudaDriver.cuMemcpyHtoDAsync(half.Pointer, source.Data, (nuint)source.ByteLength, _streamRaw), nameof(CudaDriver.cuMemcpyHtoDAsync));
        var t = NewTensor(TensorDType.F32, rows, cols);
        try
        {
            ulong ph = half.Pointer, pt = t.Pointer;
            var n = t.ElementCount;
            void** args = stackalloc void*[] { &ph, &n, &pt };
            Launch(source.DType == TensorDType.F16 ? "convert_f16_to_f32" : "convert_bf16_to_f32", Blocks(n), 1, 1, ElementwiseThreads, 0, args);
            Check(CudaDriver.cuStreamSynchronize(_streamRaw), nameof(CudaDriver.cuStreamSynchronize));
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    internal override void Upload(ReadOnlySpan<float> source, DeviceTensor destination, int rowOffset)
    {
        using var op = Enter();

        var t = Check(destination, TensorDType.F32);
        BackendArguments.Range(t, rowOffset, source.Length);
        fixed (float* p = source)
        {
            UploadBytes((byte*)p, (long)source.Length * sizeof(float), t.RowPointer(rowOffset));
        }
    }

    /// <inheritdoc />
    internal override void Upload(ReadOnlySpan<int> source, DeviceTensor destination, int rowOffset)
    {
        using var op = Enter();

        var t = Check(destination, TensorDType.I32);
        BackendArguments.Range(t, rowOffset, source.Length);
        fixed (int* p = source)
        {
            UploadBytes((byte*)p, (long)source.Length * sizeof(int), t.RowPointer(rowOffset));
        }
    }

    /// <inheritdoc />
    internal override void Download(DeviceTensor source, int rowOffset, int rowCount, Span<float> destination)
    {
        using var op = Enter();

        var t = Check(source, TensorDType.F32);
        var count = (long)rowCount * t.Cols;
        BackendArguments.Range(t, rowOffset, count);
        if (destination.Length < count)
        {
            throw new ArgumentException($"Destination holds {destination.Length} floats; {count} needed.", nameof(destination));
        }

        MakeCurrent();
        var bytes = count * sizeof(float);
        if (_download is null || _download.Bytes < bytes)
        {
            _download?.Dispose();
            _download = PinnedHostBuffer.Allocate(Math.Max(bytes, 1 << 20));
        }

        if (bytes > 0)
        {
            Check(CudaDriver.cuMemcpyDtoHAsync(_download.Pointer, t.RowPointer(rowOffset), (nuint)bytes, _streamRaw), nameof(CudaDriver.cuMemcpyDtoHAsync));
        }

        WaitAndCheckKernelErrors();
        new ReadOnlySpan<float>(_download.Pointer, (int)count).CopyTo(destination);
    }

    /// <inheritdoc />
    internal override void CopyRows(DeviceTensor source, int sourceRow, DeviceTensor destination, int destinationRow, int rowCount)
    {
        using var op = Enter();

        var s = Own(source);
        var d = Own(destination);
        if (s.DType != d.DType || s.Cols != d.Cols)
        {
            throw new ArgumentException("CopyRows needs tensors of the same dtype and width.");
        }

        BackendArguments.Range(s, sourceRow, (long)rowCount * s.Cols);
        BackendArguments.Range(d, destinationRow, (long)rowCount * d.Cols);
        var bytes = (long)rowCount * s.Cols * s.DType.SizeInBytes();
        if (bytes == 0)
        {
            return;
        }

        MakeCurrent();
        Check(CudaDriver.cuMemcpyDtoDAsync(d.RowPointer(destinationRow), s.RowPointer(sourceRow), (nuint)bytes, _streamRaw), nameof(CudaDriver.cuMemcpyDtoDAsync));
    }

    /// <inheritdoc />
    internal override void Embed(DeviceTensor table, DeviceTensor ids, int count, DeviceTensor output)
    {
        using var op = Enter();

        var tab = Own(table);
        var idx = Check(ids, TensorDType.I32);
        var o = Check(output, TensorDType.F32);
        BackendArguments.Rows(o, count);
        BackendArguments.Rows(idx, count);
        if (o.Cols < tab.Cols)
        {
            throw new ArgumentException($"Embed: output rows of {o.Cols} cannot hold embeddings of {tab.Cols}.");
        }

        if (count == 0)
        {
            return;
        }

        var name = tab.DType switch
        {
            TensorDType.F32 => "embed_f32",
            TensorDType.F16 => "embed_f16",
            TensorDType.BF16 => "embed_bf16",
            _ => throw new ArgumentException($"Embedding tables must be F32, F16 or BF16, not {tab.DType}."),
        };
        ulong pt = tab.Pointer, pi = idx.Pointer, po = o.Pointer, pe = _errorWord.Pointer;
        int vocab = tab.Rows, cols = tab.Cols, n = count;
        long ldo = o.Cols;
        void** args = stackalloc void*[] { &pt, &vocab, &cols, &pi, &n, &po, &ldo, &pe };
        Launch(name, (uint)Math.Min(count, _maxGridBlocks), 1, 1, ElementwiseThreads, 0, args);
    }

    /// <inheritdoc />
    internal override void RmsNorm(DeviceTensor x, int rows, DeviceTensor weight, float epsilon, DeviceTensor output)
    {
        using var op = Enter();

        var xs = Check(x, TensorDType.F32);
        var o = Check(output, TensorDType.F32);
        var w = Own(weight);
        BackendArguments.Rows(xs, rows);
        BackendArguments.Rows(o, rows);
        if (w.ElementCount < xs.Cols || o.Cols < xs.Cols)
        {
            throw new ArgumentException($"RmsNorm: {xs.Cols} columns need a weight of as many (it has {w.ElementCount}) and an output as wide (it has {o.Cols}).");
        }

        if (rows == 0)
        {
            return;
        }

        ulong px = xs.Pointer, pw = w.Pointer, po = o.Pointer;
        long ldx = xs.Cols, ldo = o.Cols;
        int r = rows, cols = xs.Cols;
        var eps = epsilon;
        void** args = stackalloc void*[] { &px, &ldx, &r, &cols, &pw, &eps, &po, &ldo };
        Launch(ByWeightType("rms_norm", w.DType), (uint)Math.Min(rows, _maxGridBlocks), 1, 1, (uint)NormThreads(cols), 0, args);
    }

    /// <inheritdoc />
    internal override void RmsNormHeads(DeviceTensor x, int rows, int headDim, DeviceTensor weight, float epsilon)
    {
        using var op = Enter();

        var xs = Check(x, TensorDType.F32);
        var w = Own(weight);
        BackendArguments.Rows(xs, rows);
        if (headDim <= 0 || xs.Cols % headDim != 0 || w.ElementCount < headDim)
        {
            throw new ArgumentException($"RmsNormHeads: {xs.Cols} columns do not split into heads of {headDim} with a weight of {w.ElementCount}.");
        }

        if (rows == 0)
        {
            return;
        }

        ulong px = xs.Pointer, pw = w.Pointer;
        long ldx = xs.Cols;
        int r = rows, cols = xs.Cols, hd = headDim;
        var eps = epsilon;
        void** args = stackalloc void*[] { &px, &ldx, &r, &cols, &hd, &pw, &eps };
        var warps = (long)rows * (cols / headDim);
        Launch(ByWeightType("rms_norm_heads", w.DType), Blocks(warps * 32), 1, 1, ElementwiseThreads, 0, args);
    }

    /// <inheritdoc />
    internal override void MatMul(DeviceTensor x, int rows, DeviceTensor weight, DeviceTensor? bias, DeviceTensor output, bool accumulate)
    {
        using var op = Enter();

        var a = Check(x, TensorDType.F32);
        var w = Own(weight);
        var c = Check(output, TensorDType.F32);
        var b = bias is null ? null : Own(bias);
        BackendArguments.MatMul(a, rows, w, b, c);
        if (w.DType is not (TensorDType.F32 or TensorDType.F16 or TensorDType.BF16))
        {
            throw new ArgumentException($"MatMul weights must be F32, F16 or BF16, not {w.DType}.", nameof(weight));
        }

        // Resolved before anything is queued, so a bad bias dtype leaves the output untouched.
        var biasKernel = b is null ? null : ByWeightType("add_bias", b.DType);
        if (rows == 0)
        {
            return;
        }

        MakeCurrent();
        Gemm(a.Pointer, a.Cols, rows, w, c.Pointer, c.Cols, accumulate);
        if (b is not null)
        {
            ulong po = c.Pointer, pb = b.Pointer;
            long ldo = c.Cols;
            int r = rows, cols = w.Rows;
            void** args = stackalloc void*[] { &po, &ldo, &r, &cols, &pb };
            Launch(biasKernel!, Blocks((long)rows * cols), 1, 1, ElementwiseThreads, 0, args);
        }
    }

    /// <summary>
    /// C[rows, w.Rows] (+)= A[rows, w.Cols] · Wᵀ in row-major terms, which is the column-major product
    /// Cᵀ = W·Aᵀ: cuBLAS sees W transposed (m = out features) and A untransposed (n = rows).
    /// </summary>
    internal void Gemm(ulong a, long lda, int rows, CudaTensor w, ulong c, long ldc, bool accumulate)
    {
        var alpha = 1f;
        var beta = accumulate ? 1f : 0f;
        ulong input = a;
        var inputLd = (int)lda;
        var type = w.DType switch
        {
            TensorDType.F16 => CuBlas.DataTypeF16,
            TensorDType.BF16 => CuBlas.DataTypeBF16,
            TensorDType.F32 => CuBlas.DataTypeF32,
            _ => throw new ArgumentException($"MatMul weights must be F32, F16 or BF16, not {w.DType}."),
        };
        if (w.DType != TensorDType.F32)
        {
            var bytes = (long)rows * w.Cols * 2;
            ulong pa = a, ph = Scratch(ref _gemmInput, bytes);
            var ld = lda;
            int r = rows, cols = w.Cols;
            void** args = stackalloc void*[] { &pa, &ld, &r, &cols, &ph };
            Launch(w.DType == TensorDType.F16 ? "convert_f32_to_f16" : "convert_f32_to_bf16", Blocks((long)rows * cols), 1, 1, ElementwiseThreads, 0, args);
            input = ph;
            inputLd = w.Cols;
        }

        CuBlas.Check(
            CuBlas.cublasGemmEx(
                _cublas.DangerousGetHandle(), CuBlas.OperationT, CuBlas.OperationN, w.Rows, rows, w.Cols, &alpha,
                w.Pointer, type, w.Cols, input, type, inputLd, &beta, c, CuBlas.DataTypeF32, (int)ldc,
                CuBlas.ComputeF32, CuBlas.GemmDefault),
            nameof(CuBlas.cublasGemmEx));
    }

    /// <inheritdoc />
    internal override void ApplyRope(DeviceTensor x, int rows, int headDim, DeviceTensor positions, DeviceTensor inverseFrequencies, DeviceTensor output)
    {
        using var op = Enter();

        var xs = Check(x, TensorDType.F32);
        var pos = Check(positions, TensorDType.I32);
        var inv = Check(inverseFrequencies, TensorDType.F32);
        var o = Check(output, TensorDType.F32);
        BackendArguments.Rows(xs, rows);
        BackendArguments.Rows(o, rows);
        BackendArguments.Rows(pos, rows);
        if (headDim <= 0 || headDim % 2 != 0 || xs.Cols % headDim != 0 || o.Cols < xs.Cols || inv.ElementCount < headDim / 2)
        {
            throw new ArgumentException($"ApplyRope: {xs.Cols} columns, head dim {headDim}, output {o.Cols} columns and {inv.ElementCount} frequencies do not fit.");
        }

        if (rows == 0)
        {
            return;
        }

        ulong px = xs.Pointer, pp = pos.Pointer, pf = inv.Pointer, po = o.Pointer;
        long ldx = xs.Cols, ldo = o.Cols;
        int r = rows, cols = xs.Cols, hd = headDim;
        void** args = stackalloc void*[] { &px, &ldx, &r, &cols, &hd, &pp, &pf, &po, &ldo };
        Launch("rope_apply", Blocks((long)rows * cols / 2), 1, 1, ElementwiseThreads, 0, args);
    }

    /// <inheritdoc />
    internal override void SiluMultiply(DeviceTensor gate, DeviceTensor up, int rows, DeviceTensor output)
    {
        using var op = Enter();

        var g = Check(gate, TensorDType.F32);
        var u = Check(up, TensorDType.F32);
        var o = Check(output, TensorDType.F32);
        BackendArguments.Rows(g, rows);
        BackendArguments.Rows(u, rows);
        BackendArguments.Rows(o, rows);
        if (u.Cols != g.Cols || o.Cols != g.Cols)
        {
            throw new ArgumentException("SiluMultiply needs tensors of the same width.");
        }

        var n = (long)rows * g.Cols;
        if (n == 0)
        {
            return;
        }

        ulong pg = g.Pointer, pu = u.Pointer, po = o.Pointer;
        void** args = stackalloc void*[] { &pg, &pu, &n, &po };
        Launch("silu_multiply", Blocks(Math.Max(1, n / 4)), 1, 1, ElementwiseThreads, 0, args);
    }

    /// <inheritdoc />
    internal override void Add(DeviceTensor target, DeviceTensor source, int rows)
    {
        using var op = Enter();

        var t = Check(target, TensorDType.F32);
        var s = Check(source, TensorDType.F32);
        BackendArguments.Rows(t, rows);
        BackendArguments.Rows(s, rows);
        if (t.Cols != s.Cols)
        {
            throw new ArgumentException("Add needs tensors of the same width.");
        }

        var n = (long)rows * t.Cols;
        if (n == 0)
        {
            return;
        }

        ulong pt = t.Pointer, ps = s.Pointer;
        void** args = stackalloc void*[] { &pt, &ps, &n };
        Launch("add_inplace", Blocks(Math.Max(1, n / 4)), 1, 1, ElementwiseThreads, 0, args);
    }

    /// <inheritdoc />
    internal override void ScatterToCache(DeviceTensor source, int rows, DeviceTensor slots, DeviceTensor cache, int kvHeads, int capacity)
    {
        using var op = Enter();

        var s = Check(source, TensorDType.F32);
        var sl = Check(slots, TensorDType.I32);
        var c = Check(cache, TensorDType.F32);
        BackendArguments.Rows(s, rows);
        BackendArguments.Rows(sl, rows);
        CheckCache(c, kvHeads, capacity, s.Cols);
        if (rows == 0)
        {
            return;
        }

        ulong ps = s.Pointer, pl = sl.Pointer, pc = c.Pointer, pe = _errorWord.Pointer;
        long lds = s.Cols;
        int r = rows, kvh = kvHeads, cap = capacity, hd = c.Cols;
        void** args = stackalloc void*[] { &ps, &lds, &r, &pl, &pc, &kvh, &cap, &hd, &pe };
        Launch("scatter_to_cache", (uint)Math.Min(rows, _maxGridBlocks), 1, 1, ElementwiseThreads, 0, args);
    }

    /// <inheritdoc />
    internal override void ImportHalfToCache(ReadOnlySpan<Half> source, int count, DeviceTensor cache, int kvHeads, int capacity, int firstSlot, DeviceTensor? positions, DeviceTensor? inverseFrequencies)
    {
        using var op = Enter();

        var c = Check(cache, TensorDType.F32);
        BackendArguments.HalfImport(source.Length, count, c, kvHeads, capacity, firstSlot, positions, inverseFrequencies);
        var hd = c.Cols;
        var values = (long)kvHeads * count * hd;
        ulong pp = 0, pf = 0;
        if (positions is not null)
        {
            pp = Check(positions, TensorDType.I32).Pointer;
            pf = Check(inverseFrequencies!, TensorDType.F32).Pointer;
        }

        if (count == 0)
        {
            return;
        }

        MakeCurrent();
        var ph = Scratch(ref _importHalf, values * 2);
        fixed (Half* p = source)
        {
            UploadBytes((byte*)p, values * 2, ph);
        }

        ulong pc = c.Pointer;
        int n = count, kvh = kvHeads, headDim = hd, cap = capacity, first = firstSlot;
        void** args = stackalloc void*[] { &ph, &n, &kvh, &headDim, &pc, &cap, &first, &pp, &pf };
        Launch("import_half_to_cache", Blocks(values / 2), 1, 1, ElementwiseThreads, 0, args);
    }

    /// <inheritdoc />
    internal override void GatherFromCache(DeviceTensor cache, int kvHeads, int capacity, DeviceTensor slots, int rows, DeviceTensor destination)
    {
        using var op = Enter();

        var c = Check(cache, TensorDType.F32);
        var sl = Check(slots, TensorDType.I32);
        var d = Check(destination, TensorDType.F32);
        BackendArguments.Rows(sl, rows);
        BackendArguments.Rows(d, rows);
        CheckCache(c, kvHeads, capacity, d.Cols);
        if (rows == 0)
        {
            return;
        }

        ulong pc = c.Pointer, pl = sl.Pointer, pd = d.Pointer, pe = _errorWord.Pointer;
        long ldd = d.Cols;
        int kvh = kvHeads, cap = capacity, hd = c.Cols, r = rows;
        void** args = stackalloc void*[] { &pc, &kvh, &cap, &hd, &pl, &r, &pd, &ldd, &pe };
        Launch("gather_from_cache", (uint)Math.Min(rows, _maxGridBlocks), 1, 1, ElementwiseThreads, 0, args);
    }

    /// <inheritdoc />
    internal override void GatherRows(DeviceTensor source, DeviceTensor indices, int count, DeviceTensor destination)
    {
        using var op = Enter();

        var s = Own(source);
        var idx = Check(indices, TensorDType.I32);
        var d = Own(destination);
        if (s.DType != d.DType || s.Cols != d.Cols)
        {
            throw new ArgumentException("GatherRows needs tensors of the same dtype and width.");
        }

        BackendArguments.Rows(d, count);
        BackendArguments.Rows(idx, count);
        if (count == 0)
        {
            return;
        }

        ulong ps = s.Pointer, pi = idx.Pointer, pd = d.Pointer, pe = _errorWord.Pointer;
        int sourceRows = s.Rows, n = count;
        long words = s.Cols;
        void** args = stackalloc void*[] { &ps, &sourceRows, &words, &pi, &n, &pd, &pe };
        Launch(s.DType.SizeInBytes() == 4 ? "gather_rows_b32" : "gather_rows_b16", (uint)Math.Min(count, _maxGridBlocks), 1, 1, ElementwiseThreads, 0, args);
    }

    /// <inheritdoc />
    internal override void CacheDeviation(DeviceTensor fresh, int rows, DeviceTensor slots, DeviceTensor cache, int kvHeads, int capacity, DeviceTensor output)
    {
        using var op = Enter();

        var f = Check(fresh, TensorDType.F32);
        var sl = Check(slots, TensorDType.I32);
        var c = Check(cache, TensorDType.F32);
        var o = Check(output, TensorDType.F32);
        BackendArguments.Rows(f, rows);
        BackendArguments.Rows(sl, rows);
        BackendArguments.Rows(o, rows);
        CheckCache(c, kvHeads, capacity, f.Cols);
        if (rows == 0)
        {
            return;
        }

        ulong pf = f.Pointer, pl = sl.Pointer, pc = c.Pointer, po = o.Pointer, pe = _errorWord.Pointer;
        long ldf = f.Cols;
        int r = rows, kvh = kvHeads, cap = capacity, hd = c.Cols;
        void** args = stackalloc void*[] { &pf, &ldf, &r, &pl, &pc, &kvh, &cap, &hd, &po, &pe };
        Launch("cache_deviation", (uint)Math.Min(rows, _maxGridBlocks), 1, 1, ElementwiseThreads, 0, args);
    }

    /// <inheritdoc />
    internal override void SelectTopK(DeviceTensor scores, int count, int k, DeviceTensor indices)
    {
        using var op = Enter();

        var s = Check(scores, TensorDType.F32);
        var o = Check(indices, TensorDType.I32);
        BackendArguments.TopK(s, count, k, o);
        if (k == 0)
        {
            return;
        }

        ulong ps = s.Pointer, po = o.Pointer;
        int n = count, kk = k;
        void** args = stackalloc void*[] { &ps, &n, &kk, &po };
        Launch("topk_select", 1, 1, 1, 1024, 0, args);
    }

    /// <inheritdoc />
    internal override void Synchronize()
    {
        using var op = Enter();

        MakeCurrent();
        WaitAndCheckKernelErrors();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        // Release in this backend's context whatever thread disposes it; a failing call here leaves nothing to do.
        if (CudaDriver.cuCtxSetCurrent(_contextRaw) == 0)
        {
            _ = CudaDriver.cuStreamSynchronize(_streamRaw);
        }

        DisposeResources();
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private void DisposeResources()
    {
        _download?.Dispose();
        _gemmInput?.Dispose();
        _attentionPartials?.Dispose();
        _attentionLse?.Dispose();
        _importHalf?.Dispose();
        _errorHost?.Dispose();
        _errorWord?.Dispose();
        _staging?.Dispose();
        _kernels?.Dispose();
        _cublas?.Dispose();
        _stream?.Dispose();
        _context.Dispose();
    }

    /// <summary>
    /// Makes this backend's context current on the calling thread. The driver is asked each time (a cheap call) rather
    /// than trusting a cache, since other CUDA code on the thread may switch contexts between our calls.
    /// </summary>
    internal void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (CudaDriver.cuCtxGetCurrent(out var current) != 0 || current != _contextRaw)
        {
            CudaDriver.Check(CudaDriver.cuCtxSetCurrent(_contextRaw), nameof(CudaDriver.cuCtxSetCurrent));
        }
    }

    /// <summary>
    /// Frees a tensor's memory in this backend's context, from whichever thread disposes it. After the backend is
    /// disposed the memory went with its context, so the handle is only marked released.
    /// </summary>
    internal void Release(CudaDeviceMemory memory)
    {
        lock (OperationLock)
        {
            if (IsDisposed)
            {
                memory.SetHandleAsInvalid();
                return;
            }

            _ = CudaDriver.cuCtxSetCurrent(_contextRaw);
            memory.Dispose();
        }
    }

    private void UploadBytes(byte* source, long bytes, ulong destination)
    {
        if (bytes == 0)
        {
            return;
        }

        MakeCurrent();
        _staging.Upload(source, bytes, destination, _streamRaw);
    }

    private void WaitAndCheckKernelErrors()
    {
        Check(CudaDriver.cuMemcpyDtoHAsync(_errorHost.Pointer, _errorWord.Pointer, sizeof(int), _streamRaw), nameof(CudaDriver.cuMemcpyDtoHAsync));
        Check(CudaDriver.cuStreamSynchronize(_streamRaw), nameof(CudaDriver.cuStreamSynchronize));
        var code = *(int*)_errorHost.Pointer;
        if (code == 0)
        {
            return;
        }

        Check(CudaDriver.cuMemsetD32Async(_errorWord.Pointer, 0, 1, _streamRaw), nameof(CudaDriver.cuMemsetD32Async));
        Check(CudaDriver.cuStreamSynchronize(_streamRaw), nameof(CudaDriver.cuStreamSynchronize));
        throw code switch
        {
            1 => new ArgumentOutOfRangeException("ids", "A token id is outside the vocabulary (found by the CUDA embedding kernel)."),
            2 => new ArgumentOutOfRangeException("slots", "A cache slot is outside the cache capacity (found by a CUDA cache kernel)."),
            3 => new ArgumentOutOfRangeException("indices", "A row index is outside the source tensor (found by the CUDA row gather)."),
            _ => new CudaException($"A CUDA kernel reported error code {code}."),
        };
    }

    private CudaTensor NewTensor(TensorDType dtype, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        var bytes = (long)rows * cols * dtype.SizeInBytes();
        return new CudaTensor(dtype, rows, cols, CudaDeviceMemory.Allocate(bytes), this);
    }

    private void Launch(string kernel, uint gridX, uint gridY, uint gridZ, uint block, uint sharedBytes, void** args)
    {
        MakeCurrent();
        var function = _kernels[kernel];
        _kernels.EnsureDynamicShared(function, (int)sharedBytes);
        var status = CudaDriver.cuLaunchKernel(function, gridX, gridY, gridZ, block, 1, 1, sharedBytes, _streamRaw, args, null);
        if (status != 0)
        {
            throw new CudaException($"cuLaunchKernel({kernel})", status, CudaStatus.DriverName(status));
        }
    }

    private uint Blocks(long threads) => (uint)Math.Clamp((threads + ElementwiseThreads - 1) / ElementwiseThreads, 1, _maxGridBlocks);

    private static int NormThreads(int cols) => cols >= 1024 ? 1024 : Math.Max(32, (cols + 31) / 32 * 32);

    private static string ByWeightType(string prefix, TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => prefix + "_f32",
        TensorDType.F16 => prefix + "_f16",
        TensorDType.BF16 => prefix + "_bf16",
        _ => throw new ArgumentException($"{prefix} weights must be F32, F16 or BF16, not {dtype}."),
    };

    private static void Check(int status, string call) => CudaDriver.Check(status, call);

    [LoggerMessage(Level = LogLevel.Information, Message = "CUDA backend on {Device}: cuBLAS {CublasVersion}, NVRTC {NvrtcVersion}, weights {WeightPrecision}")]
    private partial void LogOpened(string device, int cublasVersion, string nvrtcVersion, CudaWeightPrecision weightPrecision);

    private CudaTensor Own(DeviceTensor t)
    {
        var c = t as CudaTensor ?? throw new ArgumentException("The tensor belongs to another backend.");
        return ReferenceEquals(c.Owner, this) ? c : throw new ArgumentException("The tensor belongs to another CUDA backend.");
    }

    private CudaTensor Check(DeviceTensor t, TensorDType dtype)
    {
        var c = Own(t);
        return c.DType == dtype ? c : throw new ArgumentException($"Expected a {dtype} tensor, got {c.DType}.");
    }

    private static void CheckCache(CudaTensor cache, int kvHeads, int capacity, int rowWidth)
    {
        if (kvHeads <= 0 || capacity < 0 || (long)kvHeads * capacity > cache.Rows || rowWidth < kvHeads * cache.Cols)
        {
            throw new ArgumentException($"Cache of {cache.Rows}×{cache.Cols} does not hold {kvHeads} heads × {capacity} slots for rows of {rowWidth}.");
        }
    }
}
