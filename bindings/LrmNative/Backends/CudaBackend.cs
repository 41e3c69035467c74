using System.Globalization;
using LrmNative.Backends.Cuda;
using LrmNative.Interop;

namespace LrmNative.Backends;

/// <summary>Operand precision of the matrix products (GEMM, attention) on the GPU.</summary>
public enum MatmulPrecision
{
    /// <summary>fp32 operands on CUDA cores: the parity path (‖gpu − cpu‖/‖cpu‖ &lt; 1e-5).</summary>
    Float32 = 0,
    /// <summary>bf16 operands, fp32 accumulation, on tensor cores (cuBLASLt, mma.sync): the fast path (&lt; 1e-2).</summary>
    BFloat16 = 1,
}

/// <summary>Options of <see cref="CudaBackend"/>.</summary>
public sealed record CudaBackendOptions
{
    /// <summary>Device ordinal (cuda:N).</summary>
    public int Ordinal { get; init; }

    /// <summary>Precision of GEMM and attention operands; LayerNorm, softmax and compositing stay fp32 either way.</summary>
    public MatmulPrecision Precision { get; init; } = MatmulPrecision.BFloat16;

    /// <summary>Wait for and check every kernel (slow; names a faulting kernel). Default: LRM_CUDA_SYNC=1.</summary>
    public bool SynchronizeEachLaunch { get; init; } = Environment.GetEnvironmentVariable("LRM_CUDA_SYNC") == "1";

    /// <summary>Where compiled kernels are cached; default LRM_KERNEL_CACHE or ~/.cache/lrm/kernels.</summary>
    public string? KernelCacheDirectory { get; init; }

    /// <summary>
    /// Which tensor-core attention kernel bf16 precision uses: 1 = attention_forward_mma_kernel (K/V staged
    /// through registers), 2 = attention_forward_mma2_kernel (cp.async double buffering, ldmatrix; needs
    /// 16-byte aligned K/V rows, else 1 is used). 1 until 2 has passed parity on a GPU (LRM_CUDA_ATTENTION=2 selects 2).
    /// </summary>
    internal int TensorCoreAttentionVersion { get; init; } = Environment.GetEnvironmentVariable("LRM_CUDA_ATTENTION") == "2" ? 2 : 1;
}

/// <summary>
/// The CUDA engine: every op runs hand-written kernels (kernels/*.cu, compiled by NVRTC for the
/// device at first use and cached on disk) or cuBLASLt, queued on one stream. Tensors passed in
/// must live on this device (<see cref="Empty"/>, <see cref="Upload(Tensor)"/>); memory comes from
/// a caching allocator, host transfers go through pinned buffers. Shapes are checked here as in
/// <see cref="CpuBackend"/>, before any pointer reaches a kernel. Every forward op, every backward op and the optimiser
/// (AdamWStep, SumOfSquares) have kernels; the backward ones are fp32 on CUDA cores for now (GEMMs use cuBLASLt in bf16
/// precision), and only the triplane sampler's plane gradient is not bit-reproducible (float atomics).
/// </summary>
public sealed unsafe class CudaBackend : IBackend
{
    private const int Threads = 256;
    private readonly CudaContext _context;
    private readonly DeviceAllocator _allocator;
    private readonly PinnedStaging _staging;
    private readonly KernelLauncher _launcher;
    private readonly KernelCompiler _compiler;
    private readonly Dictionary<string, CudaModule> _modules = new(StringComparer.Ordinal);
    private readonly CublasLtGemm? _cublas;
    private readonly Predicate<Tensor> _owns;
    private bool _disposed;

    /// <summary>Opens cuda:<paramref name="ordinal"/> with default options.</summary>
    public CudaBackend(int ordinal = 0) : this(new CudaBackendOptions { Ordinal = ordinal })
    {
    }

    /// <summary>
    /// Opens the device; throws <see cref="LrmCudaUnavailableException"/> with the reason when there is no usable driver,
    /// device or NVRTC, or when what NVRTC compiles does not load on the driver (an NVRTC newer than the driver).
    /// </summary>
    public CudaBackend(CudaBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!KernelCompiler.IsAvailable(out var nvrtcReason))
        {
            throw new LrmCudaUnavailableException($"the CUDA backend compiles its kernels with NVRTC: {nvrtcReason}");
        }
        Options = options;
        _owns = Owns;
        _context = CudaContext.Open(options.Ordinal);
        try
        {
            _allocator = new DeviceAllocator(_context);
            _staging = new PinnedStaging(_context);
            _launcher = new KernelLauncher(_context, options.SynchronizeEachLaunch);
            _compiler = new KernelCompiler(options.KernelCacheDirectory ?? KernelCompiler.DefaultCacheDirectory, _context.Major, _context.Minor);
            ProbeKernels();
            var haveCublas = CublasLtGemm.IsAvailable(out var cublasReason);
            CublasLtStatus = haveCublas ? cublasReason : cublasReason + "; GEMMs use the fp32 kernel";
            if (haveCublas)
            {
                try
                {
                    _cublas = new CublasLtGemm(_context, _allocator);
                }
                catch (LrmException error)
                {
                    // A cuBLASLt that loads but cannot start (e.g. too old for the driver) must not cost the whole backend.
                    CublasLtStatus = $"{cublasReason}, but it failed to start: {error.Message}; GEMMs use the fp32 kernel";
                }
            }
        }
        catch
        {
            _cublas?.Dispose();
            _staging?.Dispose();
            _allocator?.Dispose();
            _context.Dispose();
            throw;
        }
        Device = Device.Cuda(options.Ordinal);
    }

    // NVRTC's code must load on this driver: a CUDA 13 NVRTC's CUBIN does not on a 12.x driver. Found at the first op,
    // that would be too late for Device.Auto to take the CPU instead, so a tiny module is compiled (and cached like any
    // other) and loaded here; the cost is one cache read and one module load.
    private const string ProbeSource = "extern \"C\" __global__ void lrm_probe_kernel(int* flag) { if (flag != nullptr) *flag = 1; }\n";

    private void ProbeKernels()
    {
        try
        {
            using var probe = CudaModule.Load(_context, _compiler, "probe.cu", ProbeSource, new Dictionary<string, string>());
            probe.Kernel("lrm_probe_kernel");
        }
        catch (Exception error) when (error is LrmCudaException or LrmKernelCompileException)
        {
            throw new LrmCudaUnavailableException($"the CUDA backend's kernels cannot run on cuda:{Options.Ordinal} ({_context.Name}): {error.Message}");
        }
    }

    /// <summary>True when a CUDA driver, a device and NVRTC are all usable; otherwise <paramref name="reason"/> says what is missing.</summary>
    public static bool IsAvailable(out string reason, int ordinal = 0)
    {
        var driver = CudaDriverInfo.Probe();
        if (!driver.Available)
        {
            reason = driver.Summary.StartsWith("no CUDA driver", StringComparison.Ordinal) ? driver.Summary : $"no CUDA device: {driver.Summary}";
            return false;
        }
        if (ordinal >= driver.Devices.Count)
        {
            reason = $"no CUDA device cuda:{ordinal} ({driver.Summary})";
            return false;
        }
        if (!KernelCompiler.IsAvailable(out var nvrtc))
        {
            reason = nvrtc;
            return false;
        }
        reason = $"{driver.Devices[ordinal]}; NVRTC {nvrtc}";
        return true;
    }

    /// <summary>The options it was opened with.</summary>
    public CudaBackendOptions Options { get; }

    /// <inheritdoc />
    public string Name => "cuda";

    /// <inheritdoc />
    public Device Device { get; }

    /// <summary>The GPU's name, e.g. "NVIDIA H100 80GB HBM3".</summary>
    public string DeviceName => _context.Name;

    /// <summary>The architecture kernels are compiled for, e.g. "sm_90".</summary>
    public string Architecture => _context.Architecture;

    /// <summary>CUDA driver version, e.g. 13000 for 13.0.</summary>
    public int DriverVersion => _context.DriverVersion;

    /// <summary>Where cuBLASLt was loaded from, or why it is not used.</summary>
    public string CublasLtStatus { get; }

    /// <summary>The caching allocator's counters.</summary>
    public DeviceMemoryStatistics MemoryStatistics => _allocator.Statistics;

    internal KernelCompiler Compiler => _compiler;

    internal KernelLauncher Launcher => _launcher;

    internal CudaContext Context => _context;

    // ---- tensors and transfers ---------------------------------------------------------------

    /// <summary>A new tensor on this device, contents unspecified.</summary>
    public Tensor Empty(ReadOnlySpan<long> shape, DataType dataType = DataType.Float32)
    {
        ThrowIfUnusable();
        var count = 1L;
        foreach (var size in shape)
        {
            if (size < 0)
            {
                throw new LrmInvalidArgumentException($"tensor shape {Tensor.FormatShape(shape)} has a negative size");
            }
            count = checked(count * size);
        }
        var block = _allocator.Allocate(checked(count * dataType.ElementSize()), $"a {dataType} tensor of shape {Tensor.FormatShape(shape)}");
        return Tensor.OnDevice(shape, dataType, Device, block);
    }

    /// <summary>A device copy of a host tensor.</summary>
    public Tensor Upload(Tensor host)
    {
        ArgumentNullException.ThrowIfNull(host);
        var device = Empty(host.Shape, host.DataType);
        Upload(device, host);
        return device;
    }

    /// <summary>Copies a host tensor into a device tensor of the same shape and type.</summary>
    public void Upload(Tensor destination, Tensor host)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(host);
        Expect.OnDevice("Upload", Device, _owns, "destination", destination);
        Expect.Host("Upload", "host", host);
        SameLayout("Upload", destination, host);
        _staging.ToDevice(destination.DevicePointer, host.Pointer, host.ByteCount);
    }

    /// <summary>A host copy of a device tensor (waits for the queued work).</summary>
    public Tensor Download(Tensor device)
    {
        ArgumentNullException.ThrowIfNull(device);
        var host = Tensor.Empty(device.Shape, device.DataType);
        Download(host, device);
        return host;
    }

    /// <summary>Copies a device tensor into a host tensor of the same shape and type (waits for the queued work).</summary>
    public void Download(Tensor host, Tensor source)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(source);
        Expect.Host("Download", "host", host);
        Expect.OnDevice("Download", Device, _owns, "source", source);
        SameLayout("Download", host, source);
        _staging.ToHost(host.Pointer, source.DevicePointer, source.ByteCount);
    }

    /// <inheritdoc />
    public void Fill(Tensor output, float value)
    {
        ArgumentNullException.ThrowIfNull(output);
        Expect.OnDevice("Fill", Device, _owns, "output", output);
        if (output.ElementCount == 0)
        {
            return;
        }
        _context.MakeCurrent();
        var count = (nuint)output.ElementCount;
        _context.Check(output.DataType switch
        {
            DataType.Float32 => CudaDriver.cuMemsetD32Async(output.DevicePointer, BitConverter.SingleToUInt32Bits(value), count, _context.Stream),
            DataType.Int32 => CudaDriver.cuMemsetD32Async(output.DevicePointer, unchecked((uint)(int)value), count, _context.Stream),
            DataType.BFloat16 => CudaDriver.cuMemsetD16Async(output.DevicePointer, BackendMemory.BFloat16Bits(value), count, _context.Stream),
            _ => throw new LrmInternalException($"Fill: unhandled data type {output.DataType}"),
        }, $"Fill {output}");
    }

    private static void SameLayout(string op, Tensor a, Tensor b) => BackendMemory.SameLayout(op, a, b);

    /// <summary>Waits for every queued op; a kernel fault surfaces here, naming the last kernel launched.</summary>
    public void Synchronize() => _context.Synchronize();

    /// <summary>Device time of <paramref name="work"/> in milliseconds, measured with CUDA events on the backend's stream.</summary>
    public float ElapsedMilliseconds(Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        using var timer = CreateTimer();
        timer.Start();
        work();
        return timer.StopMilliseconds();
    }

    /// <summary>A start/stop pair of CUDA events on the backend's stream, for timing regions that do not fit a delegate (benchmarks).</summary>
    public DeviceTimer CreateTimer()
    {
        ThrowIfUnusable();
        return new DeviceTimer(this);
    }

    /// <summary>
    /// Two CUDA events on a backend's stream; <see cref="StopMilliseconds"/> waits for the work between them. Any thread
    /// may use it: each call binds the backend's context to the calling thread first.
    /// </summary>
    public sealed class DeviceTimer : IDisposable
    {
        private readonly CudaContext _context;
        private nint _start, _stop;

        internal DeviceTimer(CudaBackend backend)
        {
            _context = backend._context;
            _context.MakeCurrent();
            nint start, stop;
            _context.Check(CudaDriver.cuEventCreate(&start, CudaFlags.CU_EVENT_DEFAULT));
            var created = CudaDriver.cuEventCreate(&stop, CudaFlags.CU_EVENT_DEFAULT);
            if (created != CUresult.CUDA_SUCCESS)
            {
                CudaDriver.cuEventDestroy_v2(start);
                _context.Check(created, null, "cuEventCreate");
            }
            (_start, _stop) = (start, stop);
        }

        /// <summary>Records the start event.</summary>
        public void Start()
        {
            ObjectDisposedException.ThrowIf(_start == 0, this);
            _context.MakeCurrent();
            _context.Check(CudaDriver.cuEventRecord(_start, _context.Stream));
        }

        /// <summary>Records the stop event, waits for it and returns the milliseconds since <see cref="Start"/>.</summary>
        public float StopMilliseconds()
        {
            ObjectDisposedException.ThrowIf(_stop == 0, this);
            _context.MakeCurrent();
            _context.Check(CudaDriver.cuEventRecord(_stop, _context.Stream));
            _context.Check(CudaDriver.cuEventSynchronize(_stop));
            _context.Synchronized(); // everything queued before the stop event has finished
            float milliseconds;
            _context.Check(CudaDriver.cuEventElapsedTime(&milliseconds, _start, _stop));
            return milliseconds;
        }

        /// <summary>Destroys the events.</summary>
        public void Dispose()
        {
            if (_start != 0)
            {
                _context.TryMakeCurrent();
                CudaDriver.cuEventDestroy_v2(_start);
                CudaDriver.cuEventDestroy_v2(_stop);
                _start = _stop = 0;
            }
        }
    }

    /// <summary>
    /// For tests: a device tensor with <paramref name="guardElements"/> 32-bit words before and after it,
    /// everything set to <paramref name="poisonBits"/>; see <see cref="DeviceGuardsIntact"/>.
    /// </summary>
    internal Tensor CreateGuarded(ReadOnlySpan<long> shape, DataType dataType, uint poisonBits, long guardElements = 64)
    {
        var count = 1L;
        foreach (var size in shape)
        {
            count = checked(count * size);
        }
        var bytes = count * dataType.ElementSize();
        var words = (bytes + 3) / 4 + 2 * guardElements;
        var block = _allocator.Allocate(words * 4, "a guarded test tensor");
        _context.MakeCurrent();
        _context.Check(CudaDriver.cuMemsetD32Async(block.Address, poisonBits, (nuint)words, _context.Stream));
        return Tensor.OnDevice(shape, dataType, Device, new GuardedBuffer(block, guardElements * 4));
    }

    /// <summary>For tests: true when both guard regions of a <see cref="CreateGuarded"/> tensor still hold the poison.</summary>
    internal bool DeviceGuardsIntact(Tensor tensor, uint poisonBits)
    {
        if (tensor.DeviceBuffer is not GuardedBuffer guarded)
        {
            throw new LrmInvalidArgumentException("DeviceGuardsIntact needs a tensor made by CreateGuarded");
        }
        var words = (int)(guarded.GuardBytes / 4);
        var before = new uint[words];
        var after = new uint[words];
        fixed (uint* b = before, a = after)
        {
            _staging.ToHost(b, guarded.Block.Address, guarded.GuardBytes);
            var end = guarded.Address + (ulong)((tensor.ByteCount + 3) / 4 * 4);
            _staging.ToHost(a, end, guarded.GuardBytes);
        }
        return !before.AsSpan().ContainsAnyExcept(poisonBits) && !after.AsSpan().ContainsAnyExcept(poisonBits);
    }

    // True when the tensor's memory came from this backend's allocator (not another backend's on the same device).
    private bool Owns(Tensor tensor) => tensor.DeviceBuffer switch
    {
        DeviceBlock block => block.Allocator == _allocator,
        GuardedBuffer guarded => guarded.Block.Allocator == _allocator,
        _ => false,
    };

    private sealed class GuardedBuffer(DeviceBlock block, long guardBytes) : IDeviceBuffer
    {
        public DeviceBlock Block { get; } = block;
        public long GuardBytes { get; } = guardBytes;
        public ulong Address => Block.Address + (ulong)GuardBytes;
        public void Release() => Block.Release();
    }

    // ---- kernels ----------------------------------------------------------------------------------

    /// <summary>The kernel <paramref name="name"/> of kernels/<paramref name="file"/>, compiled (or loaded from the cache) at first use.</summary>
    internal CudaKernel Kernel(string file, string name)
    {
        ThrowIfUnusable();
        _context.MakeCurrent();
        if (!_modules.TryGetValue(file, out var module))
        {
            module = CudaModule.Load(_context, _compiler, file, KernelSources.Source(file), KernelSources.Headers);
            _modules[file] = module;
        }
        return module.Kernel(name);
    }

    private Dim3 StrideGrid(long count) => Dim3.Stride(count, Threads, _context.MultiprocessorCount);

    private DeviceBlock Scratch(long bytes, string what) => _allocator.Allocate(bytes, what);

    private static ulong P(Tensor? tensor) => tensor is null ? 0UL : tensor.DevicePointer;

    private void Check(string op, params ReadOnlySpan<(string Name, Tensor? Tensor)> tensors)
    {
        ThrowIfUnusable();
        Expect.DeviceFloat32(op, Device, _owns, tensors);
        _context.MakeCurrent();
    }

    private static int ToInt(long value, string op, string what) => value <= int.MaxValue
        ? (int)value
        : throw new LrmUnsupportedException($"{op}: {what} = {value} exceeds the kernels' 32-bit index range");

    // ---- GEMM -------------------------------------------------------------------------------------

    /// <inheritdoc />
    public void Gemm(Tensor output, Tensor a, Tensor b, Tensor? bias = null, Tensor? residual = null, bool transposeA = false, bool transposeB = false)
    {
        const string op = "Gemm";
        Check(op, ("output", output), ("bias", bias), ("residual", residual));
        Expect.OnDevice(op, Device, _owns, "a", a);
        Expect.OnDevice(op, Device, _owns, "b", b);
        if (a.DataType != b.DataType || a.DataType is not (DataType.Float32 or DataType.BFloat16))
        {
            throw new LrmShapeException($"{op}: 'a' and 'b' must both be Float32 or both BFloat16, got {a.DataType} and {b.DataType}");
        }
        var (m, n, k) = OpShapes.GemmSizes(op, a, b, transposeA, transposeB);
        var outShape = OpShapes.GemmOutputShape(a, n, transposeA, stackalloc long[transposeA ? 2 : a.Rank]);
        Expect.Shape(op, "output", output, outShape);
        Expect.Shape(op, "bias", bias, n);
        Expect.Shape(op, "residual", residual, outShape);
        GemmDevice(P(output), P(a), P(b), P(bias), P(residual), ToInt(m, op, "M"), ToInt(n, op, "N"), ToInt(k, op, "K"),
            transposeA, transposeB, a.DataType == DataType.BFloat16);
    }

    /// <summary>
    /// out (M, N) fp32 = op(a)·op(b) + bias + residual on raw device pointers; a and b fp32, or bf16 when
    /// <paramref name="operandsAreBFloat16"/>. bf16 precision (or bf16 operands) with cuBLASLt present: tensor
    /// cores; otherwise, or when cuBLASLt has no algorithm for the problem, the fp32 kernel.
    /// </summary>
    internal void GemmDevice(ulong output, ulong a, ulong b, ulong bias, ulong residual, int m, int n, int k,
        bool transposeA, bool transposeB, bool operandsAreBFloat16 = false)
    {
        if (m == 0 || n == 0)
        {
            return;
        }
        var tensorCores = _cublas is not null && k > 0 && (operandsAreBFloat16 || Options.Precision == MatmulPrecision.BFloat16);
        if (tensorCores)
        {
            using var aHalf = operandsAreBFloat16 ? null : ToBFloat16(a, (long)m * k, "Gemm 'a' as bf16");
            using var bHalf = operandsAreBFloat16 ? null : ToBFloat16(b, (long)k * n, "Gemm 'b' as bf16");
            // cuBLASLt's bias epilogue may assume a 16-byte aligned bias (its plan does not say): a bias
            // taken from inside another tensor is copied to an aligned block first.
            using var alignedBias = bias % 16 != 0 ? Scratch((long)n * 4, "Gemm bias, 16-byte aligned") : null;
            if (alignedBias is not null)
            {
                _context.Check(CudaDriver.cuMemcpyDtoDAsync_v2(alignedBias.Address, bias, (nuint)((long)n * 4), _context.Stream));
            }
            if (_cublas!.TryMatmul(output, cudaDataType_t.CUDA_R_32F, aHalf?.Address ?? a, bHalf?.Address ?? b, alignedBias?.Address ?? bias,
                residual, m, n, k, transposeA, transposeB))
            {
                return;
            }
            // No cuBLASLt algorithm for this problem (its answer is cached per shape): the fp32 kernel does it.
        }
        using var aFloat = operandsAreBFloat16 ? ToFloat32(a, (long)m * k, "Gemm 'a' as fp32") : null;
        using var bFloat = operandsAreBFloat16 ? ToFloat32(b, (long)k * n, "Gemm 'b' as fp32") : null;
        _launcher.Launch(Kernel("gemm.cu", "gemm_forward_kernel"), new Dim3(Dim3.CeilDiv(m, 64), Dim3.CeilDiv(n, 64)), 256, 0,
            output, aFloat?.Address ?? a, bFloat?.Address ?? b, bias, residual, m, n, k, transposeA ? 1 : 0, transposeB ? 1 : 0);
    }

    private DeviceBlock ToBFloat16(ulong source, long count, string what) => BackendMemory.Written(Scratch(count * 2, what), block =>
        _launcher.Launch(Kernel("elementwise.cu", "convert_f32_to_bf16_kernel"), StrideGrid(count), Threads, 0, block.Address, source, count));

    private DeviceBlock ToFloat32(ulong source, long count, string what) => BackendMemory.Written(Scratch(count * 4, what), block =>
        _launcher.Launch(Kernel("elementwise.cu", "convert_bf16_to_f32_kernel"), StrideGrid(count), Threads, 0, block.Address, source, count));

    /// <inheritdoc />
    public void GemmBackward(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b, bool transposeA = false, bool transposeB = false)
    {
        const string op = "GemmBackward";
        Check(op, ("gradA", gradA), ("gradB", gradB), ("gradBias", gradBias), ("gradOutput", gradOutput), ("a", a), ("b", b));
        var (m64, n64, k64) = OpShapes.GemmBackward(op, gradA, gradB, gradBias, gradOutput, a, b, transposeA, transposeB);
        int m = ToInt(m64, op, "M"), n = ToInt(n64, op, "N"), k = ToInt(k64, op, "K");
        // C = op(A)·op(B): dop(A) = dC·op(B)ᵀ, dop(B) = op(A)ᵀ·dC, each written in its operand's stored layout by one
        // forward GEMM with the operands' transpose flags chosen to match (docs/derivations/gemm.md).
        if (gradA is not null)
        {
            if (transposeA)
            {
                GemmDevice(P(gradA), P(b), P(gradOutput), 0, 0, k, m, n, transposeB, true);   // (K, M) = op(B)·dCᵀ
            }
            else
            {
                GemmDevice(P(gradA), P(gradOutput), P(b), 0, 0, m, k, n, false, !transposeB); // (M, K) = dC·op(B)ᵀ
            }
        }
        if (gradB is not null)
        {
            if (transposeB)
            {
                GemmDevice(P(gradB), P(gradOutput), P(a), 0, 0, n, k, m, true, transposeA);    // (N, K) = dCᵀ·op(A)
            }
            else
            {
                GemmDevice(P(gradB), P(a), P(gradOutput), 0, 0, k, n, m, !transposeA, false); // (K, N) = op(A)ᵀ·dC
            }
        }
        if (gradBias is not null)
        {
            ColumnDotAccumulate(P(gradBias), P(gradOutput), 0, m64, n);
        }
    }

    // out (cols) += Σ_rows x (rows, cols) · y (or 1 when y is 0), in double with a fixed order per column.
    private void ColumnDotAccumulate(ulong output, ulong x, ulong y, long rows, int cols) =>
        _launcher.Launch(Kernel("elementwise.cu", "column_dot_accumulate_kernel"), Dim3.CeilDiv(cols, 32), new Dim3(32, 8), 0, output, x, y, rows, cols);

    // ---- normalisation ------------------------------------------------------------------------------

    /// <inheritdoc />
    public void LayerNorm(Tensor output, Tensor? mean, Tensor? rstd, Tensor input, Tensor? weight, Tensor? bias, float epsilon)
    {
        const string op = "LayerNorm";
        Check(op, ("output", output), ("mean", mean), ("rstd", rstd), ("input", input), ("weight", weight), ("bias", bias));
        var (rows, channels) = OpShapes.LayerNorm(op, output, mean, rstd, input, weight, bias);
        Expect.Positive(op, "channels", channels);
        LayerNormDevice(P(output), 0, 0, P(mean), P(rstd), P(input), 0, P(weight), P(bias), 0, 0,
            ToInt(rows, op, "rows"), 1, ToInt(channels, op, "channels"), epsilon);
    }

    private void LayerNormDevice(ulong output, ulong outputBf16, ulong sum, ulong mean, ulong rstd, ulong input, ulong residual,
        ulong weight, ulong bias, ulong shift, ulong scale, int rows, int tokens, int channels, float epsilon)
    {
        // The register-resident kernel needs whole, 16-byte aligned float4 rows (bf16 rows: 8-byte aligned).
        var vectorised = channels % 4 == 0 && channels <= 2048
            && (output | sum | input | residual) % 16 == 0 && outputBf16 % 8 == 0;
        _launcher.Launch(Kernel("layernorm.cu", vectorised ? "layernorm_forward_vec4_kernel" : "layernorm_forward_kernel"),
            Dim3.CeilDiv(rows, 8), 256, 0,
            output, outputBf16, sum, mean, rstd, input, residual, weight, bias, shift, scale, rows, Math.Max(tokens, 1), channels, epsilon);
    }

    /// <inheritdoc />
    public void LayerNormBackward(Tensor gradInput, Tensor? gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor mean, Tensor rstd, Tensor input, Tensor? weight)
    {
        const string op = "LayerNormBackward";
        Check(op, ("gradInput", gradInput), ("gradWeight", gradWeight), ("gradBias", gradBias), ("gradOutput", gradOutput), ("mean", mean),
            ("rstd", rstd), ("input", input), ("weight", weight));
        var (rows, channels) = OpShapes.LayerNormBackward(op, gradInput, gradWeight, gradBias, gradOutput, mean, rstd, input, weight);
        // The parameter sums run over row groups of 256 (one "sample" each, no modulation), then over the groups in order.
        LayerNormBackwardDevice(P(gradInput), P(gradWeight), P(gradBias), 0, 0, P(gradOutput), P(mean), P(rstd), P(input), P(weight), 0, 0,
            ToInt(rows, op, "rows"), 256, ToInt(channels, op, "channels"));
    }

    // LayerNorm/ModLN backward (kernels/layernorm.cu): dx per row; the column sums per group of `tokens` rows (ModLN: a
    // sample, whose dshift/dscale they are), then dweight/dbias over the groups in order: deterministic on any device.
    private void LayerNormBackwardDevice(ulong gradInput, ulong gradWeight, ulong gradBias, ulong gradShift, ulong gradScale, ulong gradOutput,
        ulong mean, ulong rstd, ulong input, ulong weight, ulong bias, ulong scale, int rows, int tokens, int channels)
    {
        _launcher.Launch(Kernel("layernorm.cu", "layernorm_backward_input_kernel"), Dim3.CeilDiv(rows, 8), 256, 0,
            gradInput, gradOutput, mean, rstd, input, weight, scale, rows, tokens, channels);
        if (gradWeight == 0 && gradBias == 0 && gradShift == 0 && gradScale == 0)
        {
            return;
        }
        var groups = (rows + tokens - 1) / tokens;
        using var partial = Scratch((long)groups * 2 * channels * 8, "LayerNorm backward column sums");
        _launcher.Launch(Kernel("layernorm.cu", "layernorm_backward_params_kernel"), new Dim3(groups, Dim3.CeilDiv(channels, 32)), new Dim3(32, 8), 0,
            partial.Address, gradShift, gradScale, gradOutput, mean, rstd, input, weight, bias, scale, rows, tokens, channels);
        if (gradWeight != 0 || gradBias != 0)
        {
            _launcher.Launch(Kernel("layernorm.cu", "layernorm_backward_reduce_kernel"), StrideGrid(channels), Threads, 0,
                gradWeight, gradBias, partial.Address, groups, channels);
        }
    }

    /// <inheritdoc />
    public void ModLN(Tensor output, Tensor? mean, Tensor? rstd, Tensor input, Tensor? weight, Tensor? bias, Tensor shift, Tensor scale, float epsilon) =>
        ModLNResidual(output, null, null, mean, rstd, input, null, weight, bias, shift, scale, epsilon);

    /// <summary>
    /// The fused ModLN of the decoder: x = input + residual (residual optional; x written to <paramref name="sum"/>
    /// when given, which may be <paramref name="input"/> or <paramref name="residual"/> itself), then LN(x)·(1 + scale) + shift, written as fp32 (<paramref name="output"/>) and/or bf16
    /// (<paramref name="outputBFloat16"/>, the next GEMM's operand), statistics in fp32. input (B, T, C), shift/scale (B, C).
    /// </summary>
    public void ModLNResidual(Tensor? output, Tensor? outputBFloat16, Tensor? sum, Tensor? mean, Tensor? rstd, Tensor input, Tensor? residual,
        Tensor? weight, Tensor? bias, Tensor shift, Tensor scale, float epsilon)
    {
        const string op = "ModLN";
        Check(op, ("output", output), ("sum", sum), ("mean", mean), ("rstd", rstd), ("input", input), ("residual", residual),
            ("weight", weight), ("bias", bias), ("shift", shift), ("scale", scale));
        Expect.OnDevice(op, Device, _owns, "outputBFloat16", outputBFloat16);
        if (output is null && outputBFloat16 is null)
        {
            throw new LrmInvalidArgumentException($"{op}: give 'output', 'outputBFloat16' or both");
        }
        if (outputBFloat16 is not null && outputBFloat16.DataType != DataType.BFloat16)
        {
            throw new LrmShapeException($"{op}: tensor 'outputBFloat16' must be BFloat16, got {outputBFloat16.DataType}");
        }
        Expect.Shape(op, "input", input, -1, -1, -1);
        long batch = input.Size(0), tokens = input.Size(1), channels = input.Size(2);
        Expect.Positive(op, "channels", channels);
        Expect.Shape(op, "output", output, batch, tokens, channels);
        Expect.Shape(op, "outputBFloat16", outputBFloat16, batch, tokens, channels);
        Expect.Shape(op, "sum", sum, batch, tokens, channels);
        Expect.Shape(op, "residual", residual, batch, tokens, channels);
        Expect.Shape(op, "mean", mean, batch, tokens);
        Expect.Shape(op, "rstd", rstd, batch, tokens);
        Expect.Shape(op, "weight", weight, channels);
        Expect.Shape(op, "bias", bias, channels);
        Expect.Shape(op, "shift", shift, batch, channels);
        Expect.Shape(op, "scale", scale, batch, channels);
        LayerNormDevice(P(output), P(outputBFloat16), P(sum), P(mean), P(rstd), P(input), P(residual), P(weight), P(bias), P(shift), P(scale),
            ToInt(batch * tokens, op, "rows"), ToInt(tokens, op, "tokens"), ToInt(channels, op, "channels"), epsilon);
    }

    /// <inheritdoc />
    public void ModLNBackward(Tensor gradInput, Tensor? gradWeight, Tensor? gradBias, Tensor gradShift, Tensor gradScale, Tensor gradOutput, Tensor mean, Tensor rstd, Tensor input, Tensor? weight, Tensor? bias, Tensor scale)
    {
        const string op = "ModLNBackward";
        Check(op, ("gradInput", gradInput), ("gradWeight", gradWeight), ("gradBias", gradBias), ("gradShift", gradShift), ("gradScale", gradScale),
            ("gradOutput", gradOutput), ("mean", mean), ("rstd", rstd), ("input", input), ("weight", weight), ("bias", bias), ("scale", scale));
        var (batch, tokens, channels) = OpShapes.ModLNBackward(op, gradInput, gradWeight, gradBias, gradShift, gradScale, gradOutput, mean, rstd,
            input, weight, bias, scale);
        LayerNormBackwardDevice(P(gradInput), P(gradWeight), P(gradBias), P(gradShift), P(gradScale), P(gradOutput), P(mean), P(rstd), P(input),
            P(weight), P(bias), P(scale), ToInt(batch * tokens, op, "rows"), ToInt(tokens, op, "tokens"), ToInt(channels, op, "channels"));
    }

    // ---- attention ------------------------------------------------------------------------------------

    /// <inheritdoc />
    public void Attention(Tensor output, Tensor? logSumExp, ColumnSlice query, ColumnSlice key, ColumnSlice value, int heads, float scale)
    {
        const string op = "Attention";
        Check(op, ("output", output), ("lse", logSumExp), ("query", query.Source), ("key", key.Source), ("value", value.Source));
        var (batch, queryLength, keyLength, width) = OpShapes.AttentionSizes(op, output, logSumExp, query, key, value, heads);
        var headDim = width / heads;
        if (queryLength == 0)
        {
            return;
        }
        Expect.Positive(op, "key length", keyLength);
        var scaleLog2 = (float)(scale * 1.4426950408889634);
        long queryStride = query.Source.Size(2), keyStride = key.Source.Size(2);
        var grid = (Heads: (long)heads, Batch: batch);
        var evenLayout = queryStride % 2 == 0 && keyStride % 2 == 0
            && query.ColumnOffset % 2 == 0 && key.ColumnOffset % 2 == 0 && value.ColumnOffset % 2 == 0;
        if (Options.Precision == MatmulPrecision.BFloat16 && headDim == 64 && evenLayout)
        {
            // Tensor cores: q, k, v as bf16 copies of their source tensors (one copy when they share one, e.g. packed qkv).
            var converted = new Dictionary<Tensor, DeviceBlock>(ReferenceEqualityComparer.Instance);
            try
            {
                ulong Half(ColumnSlice slice)
                {
                    if (!converted.TryGetValue(slice.Source, out var block))
                    {
                        block = ToBFloat16(slice.Source.DevicePointer, slice.Source.ElementCount, "attention operands as bf16");
                        converted[slice.Source] = block;
                    }
                    return block.Address + (ulong)(slice.ColumnOffset * 2);
                }
                var pipelined = Options.TensorCoreAttentionVersion == 2 && keyStride % 8 == 0 && key.ColumnOffset % 8 == 0 && value.ColumnOffset % 8 == 0;
                _launcher.Launch(Kernel("attention.cu", pipelined ? "attention_forward_mma2_kernel" : "attention_forward_mma_kernel"),
                    new Dim3(Dim3.CeilDiv(queryLength, 64), grid.Heads, grid.Batch), 128, 0,
                    P(output), P(logSumExp), Half(query), Half(key), Half(value), heads, ToInt(queryLength, op, "query length"),
                    ToInt(keyLength, op, "key length"), queryStride, keyStride, scaleLog2);
            }
            finally
            {
                foreach (var block in converted.Values)
                {
                    block.Dispose();
                }
            }
            return;
        }
        if (headDim > 256)
        {
            throw new LrmUnsupportedException($"{op}: head dimension {headDim} > 256 is not supported by the CUDA kernel");
        }
        _launcher.Launch(Kernel("attention.cu", "attention_forward_kernel"), new Dim3(Dim3.CeilDiv(queryLength, 4), grid.Heads, grid.Batch), 128, 0,
            P(output), P(logSumExp), P(query.Source) + (ulong)(query.ColumnOffset * 4), P(key.Source) + (ulong)(key.ColumnOffset * 4),
            P(value.Source) + (ulong)(value.ColumnOffset * 4), heads, ToInt(queryLength, op, "query length"), ToInt(keyLength, op, "key length"),
            (int)headDim, queryStride, keyStride, scaleLog2);
    }

    /// <inheritdoc />
    /// <remarks>
    /// FlashAttention-2's backward from the saved lse, nothing of size Lq × Lk stored, fp32 on CUDA cores (no tensor
    /// cores yet): D = rowsum(dO ∘ O) per query, then one warp per query row for dQ and one warp per key row for dK and
    /// dV, each looping over the other side and recomputing p = e^(scale·q·k − lse). Every gradient row is written by
    /// one warp: deterministic, no atomics. Head dim at most 128.
    /// </remarks>
    public void AttentionBackward(ColumnSlice gradQuery, ColumnSlice gradKey, ColumnSlice gradValue, Tensor gradOutput, Tensor output, Tensor logSumExp, ColumnSlice query, ColumnSlice key, ColumnSlice value, int heads, float scale)
    {
        const string op = "AttentionBackward";
        OpShapes.AttentionBackwardArguments(op, gradQuery, gradKey, gradValue, gradOutput, output, logSumExp, query, key, value);
        Check(op, ("gradQuery", gradQuery.Source), ("gradKey", gradKey.Source), ("gradValue", gradValue.Source), ("gradOutput", gradOutput),
            ("output", output), ("lse", logSumExp), ("query", query.Source), ("key", key.Source), ("value", value.Source));
        var (batch, queryLength, keyLength, width) = OpShapes.AttentionBackwardSizes(op, gradQuery, gradKey, gradValue, gradOutput, output, logSumExp,
            query, key, value, heads);
        var headDim = width / heads;
        if (headDim > 128)
        {
            throw new LrmUnsupportedException($"{op}: head dim {headDim} > 128 (the CUDA backward keeps a row in 4 registers per lane)");
        }
        if (queryLength == 0 || keyLength == 0)
        {
            return;
        }
        int b = ToInt(batch, op, "batch"), lq = ToInt(queryLength, op, "query length"), lk = ToInt(keyLength, op, "key length"), d = (int)headDim;
        long queryStride = query.Source.Size(2), keyStride = key.Source.Size(2);
        long gradQueryStride = gradQuery.Source.Size(2), gradKeyStride = gradKey.Source.Size(2);
        ulong Column(ColumnSlice slice) => slice.Source.DevicePointer + (ulong)(slice.ColumnOffset * 4);
        using var delta = Scratch(batch * heads * queryLength * 4, "attention backward D = rowsum(dO∘O)");
        const int warpsPerBlock = 8;
        _launcher.Launch(Kernel("attention.cu", "attention_backward_delta_kernel"), Dim3.CeilDiv(batch * heads * queryLength, warpsPerBlock), 32 * warpsPerBlock, 0,
            delta.Address, P(gradOutput), P(output), b, heads, lq, d);
        _launcher.Launch(Kernel("attention.cu", "attention_backward_dq_kernel"), Dim3.CeilDiv(batch * heads * queryLength, warpsPerBlock), 32 * warpsPerBlock, 0,
            Column(gradQuery), P(gradOutput), P(logSumExp), delta.Address, Column(query), Column(key), Column(value), b, heads, lq, lk, d,
            queryStride, keyStride, gradQueryStride, scale);
        _launcher.Launch(Kernel("attention.cu", "attention_backward_dkv_kernel"), Dim3.CeilDiv(batch * heads * keyLength, warpsPerBlock), 32 * warpsPerBlock, 0,
            Column(gradKey), Column(gradValue), P(gradOutput), P(logSumExp), delta.Address, Column(query), Column(key), Column(value), b, heads, lq, lk, d,
            queryStride, keyStride, gradKeyStride, scale);
    }

    // ---- element-wise -------------------------------------------------------------------------------------

    /// <inheritdoc />
    public void Activate(Tensor output, Tensor input, Activation activation)
    {
        const string op = "Activate";
        Check(op, ("output", output), ("input", input));
        Expect.Shape(op, "output", output, input.Shape);
        Expect.NotEmpty(op, "input", input);
        if (activation is < Activation.None or > Activation.Silu)
        {
            throw new LrmInvalidArgumentException($"{op}: unknown activation {(int)activation}");
        }
        ActivateDevice(P(output), P(input), input.ElementCount, activation);
    }

    /// <inheritdoc />
    public void ActivateBackward(Tensor gradInput, Tensor gradOutput, Tensor input, Activation activation)
    {
        const string op = "ActivateBackward";
        Check(op, ("gradInput", gradInput), ("gradOutput", gradOutput), ("input", input));
        Expect.Shape(op, "gradOutput", gradOutput, input.Shape);
        Expect.Shape(op, "gradInput", gradInput, input.Shape);
        Expect.NotEmpty(op, "input", input);
        if (activation is < Activation.None or > Activation.Silu)
        {
            throw new LrmInvalidArgumentException($"{op}: unknown activation {(int)activation}");
        }
        ActivateBackwardDevice(P(gradInput), P(gradOutput), P(input), input.ElementCount, activation);
    }

    /// <inheritdoc />
    public void Softmax(Tensor output, Tensor input)
    {
        const string op = "Softmax";
        Check(op, ("output", output), ("input", input));
        Expect.Rank(op, "input", input, 1, "(..., columns)");
        Expect.Shape(op, "output", output, input.Shape);
        var columns = input.Size(-1);
        var rows = input.ElementCount / Math.Max(columns, 1);
        _launcher.Launch(Kernel("softmax.cu", "softmax_forward_kernel"), Dim3.CeilDiv(rows, 8), 256, 0,
            P(output), P(input), ToInt(rows, op, "rows"), ToInt(columns, op, "columns"));
    }

    /// <inheritdoc />
    public void SoftmaxBackward(Tensor gradInput, Tensor gradOutput, Tensor output)
    {
        const string op = "SoftmaxBackward";
        Check(op, ("gradInput", gradInput), ("gradOutput", gradOutput), ("output", output));
        var (rows, columns) = OpShapes.SoftmaxBackward(op, gradInput, gradOutput, output);
        _launcher.Launch(Kernel("softmax.cu", "softmax_backward_kernel"), Dim3.CeilDiv(rows, 8), 256, 0,
            P(gradInput), P(gradOutput), P(output), ToInt(rows, op, "rows"), ToInt(columns, op, "columns"));
    }

    // ---- convolutions -------------------------------------------------------------------------------------

    /// <inheritdoc />
    public void PatchEmbed(Tensor output, Tensor image, Tensor weight, Tensor? bias)
    {
        const string op = "PatchEmbed";
        Check(op, ("output", output), ("image", image), ("weight", weight), ("bias", bias));
        var (batch, inChannels, height, width, outChannels, patch) = OpShapes.PatchEmbedSizes(op, image, weight);
        Expect.Shape(op, "bias", bias, outChannels);
        var tokens = height / patch * (width / patch);
        Expect.Shape(op, "output", output, batch, tokens, outChannels);
        var depth = inChannels * patch * patch;
        var rows = batch * tokens;
        using var columns = Scratch(rows * depth * 4, "patch-embedding columns");
        _launcher.Launch(Kernel("conv.cu", "patch_im2col_kernel"), StrideGrid(rows * depth), Threads, 0,
            columns.Address, P(image), (int)batch, (int)inChannels, ToInt(height, op, "height"), ToInt(width, op, "width"), (int)patch);
        GemmDevice(P(output), columns.Address, P(weight), P(bias), 0, ToInt(rows, op, "tokens"), ToInt(outChannels, op, "out channels"),
            ToInt(depth, op, "in channels × patch²"), false, true);
    }

    /// <inheritdoc />
    public void PatchEmbedBackward(Tensor? gradImage, Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor image, Tensor weight)
    {
        const string op = "PatchEmbedBackward";
        Check(op, ("gradImage", gradImage), ("gradWeight", gradWeight), ("gradBias", gradBias), ("gradOutput", gradOutput), ("image", image), ("weight", weight));
        var (batch, inChannels, height, width, outChannels, patch) = OpShapes.PatchEmbedBackward(op, gradImage, gradWeight, gradBias, gradOutput, image, weight);
        // out (B·T, O) = columns (B·T, D)·wᵀ: dw (O, D) += doutᵀ·columns, dcolumns = dout·w, dimage = col2im(dcolumns).
        int rows = ToInt(batch * (height / patch) * (width / patch), op, "tokens"), depth = ToInt(inChannels * patch * patch, op, "in channels × patch²");
        int outs = ToInt(outChannels, op, "out channels"), h = ToInt(height, op, "height"), w = ToInt(width, op, "width");
        using var columns = Scratch((long)rows * depth * 4, "patch-embedding columns");
        _launcher.Launch(Kernel("conv.cu", "patch_im2col_kernel"), StrideGrid((long)rows * depth), Threads, 0,
            columns.Address, P(image), (int)batch, (int)inChannels, h, w, (int)patch);
        GemmDevice(P(gradWeight), P(gradOutput), columns.Address, 0, P(gradWeight), outs, depth, rows, true, false);
        if (gradBias is not null)
        {
            ColumnDotAccumulate(P(gradBias), P(gradOutput), 0, rows, outs);
        }
        if (gradImage is not null)
        {
            GemmDevice(columns.Address, P(gradOutput), P(weight), 0, 0, rows, depth, outs, false, false);
            _launcher.Launch(Kernel("conv.cu", "patch_col2im_kernel"), StrideGrid(image.ElementCount), Threads, 0,
                P(gradImage), columns.Address, (int)batch, (int)inChannels, h, w, (int)patch);
        }
    }

    /// <inheritdoc />
    public void Deconvolution(Tensor output, Tensor input, Tensor weight, Tensor? bias)
    {
        const string op = "Deconvolution";
        Check(op, ("output", output), ("input", input), ("weight", weight), ("bias", bias));
        var (batch, inChannels, height, width, outChannels, kernel) = OpShapes.DeconvolutionSizes(op, input, weight);
        Expect.Shape(op, "bias", bias, outChannels);
        Expect.Shape(op, "output", output, batch, outChannels, height * kernel, width * kernel);
        var taps = outChannels * kernel * kernel;
        var pixels = height * width;
        using var columns = Scratch(batch * taps * pixels * 4, "de-convolution columns");
        for (long b = 0; b < batch; b++)
        {
            // columns[b] (O·K·K, H·W) = wᵀ (O·K·K × Cin) · input[b] (Cin × H·W)
            GemmDevice(columns.Address + (ulong)(b * taps * pixels * 4), P(weight), P(input) + (ulong)(b * inChannels * pixels * 4), 0, 0,
                ToInt(taps, op, "out channels × kernel²"), ToInt(pixels, op, "pixels"), ToInt(inChannels, op, "in channels"), true, false);
        }
        _launcher.Launch(Kernel("conv.cu", "deconv_scatter_kernel"), StrideGrid(output.ElementCount), Threads, 0,
            P(output), columns.Address, P(bias), (int)batch, (int)outChannels, ToInt(height, op, "height"), ToInt(width, op, "width"), (int)kernel);
    }

    /// <inheritdoc />
    public void DeconvolutionBackward(Tensor? gradInput, Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor input, Tensor weight)
    {
        const string op = "DeconvolutionBackward";
        Check(op, ("gradInput", gradInput), ("gradWeight", gradWeight), ("gradBias", gradBias), ("gradOutput", gradOutput), ("input", input), ("weight", weight));
        var (batch, inChannels, height, width, outChannels, kernel) = OpShapes.DeconvolutionBackward(op, gradInput, gradWeight, gradBias, gradOutput, input, weight);
        // Forward: columns[b] (O·K·K, H·W) = wᵀ·input[b], scattered to the output. Backward: gather dcolumns[b] from dout,
        // dw (Cin, O·K·K) += input[b]·dcolumns[b]ᵀ, dinput[b] = w·dcolumns[b], dbias[o] += Σ dout[:, o].
        var taps = outChannels * kernel * kernel;
        var pixels = height * width;
        int tapCount = ToInt(taps, op, "out channels × kernel²"), pixelCount = ToInt(pixels, op, "pixels"), ins = ToInt(inChannels, op, "in channels");
        using var columns = Scratch(batch * taps * pixels * 4, "de-convolution columns");
        _launcher.Launch(Kernel("conv.cu", "deconv_gather_kernel"), StrideGrid(batch * taps * pixels), Threads, 0,
            columns.Address, P(gradOutput), (int)batch, (int)outChannels, ToInt(height, op, "height"), ToInt(width, op, "width"), (int)kernel);
        for (long b = 0; b < batch; b++)
        {
            var columnsB = columns.Address + (ulong)(b * taps * pixels * 4);
            var inputB = P(input) + (ulong)(b * inChannels * pixels * 4);
            GemmDevice(P(gradWeight), inputB, columnsB, 0, P(gradWeight), ins, tapCount, pixelCount, false, true);
            if (gradInput is not null)
            {
                GemmDevice(P(gradInput) + (ulong)(b * inChannels * pixels * 4), P(weight), columnsB, 0, 0, ins, pixelCount, tapCount, false, false);
            }
        }
        if (gradBias is not null)
        {
            var spatial = gradOutput.ElementCount / (batch * outChannels);
            _launcher.Launch(Kernel("conv.cu", "channel_sum_accumulate_kernel"), outChannels, 256, 0,
                P(gradBias), P(gradOutput), batch, (int)outChannels, spatial);
        }
    }

    // ---- resampling ---------------------------------------------------------------------------------------

    /// <inheritdoc />
    public void Resize(Tensor output, Tensor input, ResizeMode mode, float cubicA = -0.75f, bool antialias = false) =>
        ResizeDevice("Resize", output, input, mode, 0.0, 0.0, cubicA, antialias);

    /// <inheritdoc />
    public void ResizeScaled(Tensor output, Tensor input, ResizeMode mode, double scaleFactorHeight, double scaleFactorWidth, float cubicA, bool antialias) =>
        ResizeDevice("ResizeScaled", output, input, mode, scaleFactorHeight, scaleFactorWidth, cubicA, antialias, scaled: true);

    // The forward resizes input → output. backward: output is the output's gradient and input receives the input's
    // gradient, dinput = Tyᵀ·doutput·Tx, by the same two gather kernels with tap tables transposed on the host (every
    // input position lists the outputs that read it, in output order: deterministic, no atomics).
    private void ResizeDevice(string op, Tensor output, Tensor input, ResizeMode mode, double factorHeight, double factorWidth, float cubicA, bool antialias,
        bool backward = false, bool scaled = false)
    {
        string outputName = backward ? "gradOutput" : "output", inputName = backward ? "gradInput" : "input";
        Check(op, (outputName, output), (inputName, input));
        Expect.Rank(op, inputName, input, 2, "(..., height, width)");
        Expect.Rank(op, outputName, output, 2, "(..., height, width)");
        Span<long> expected = stackalloc long[input.Rank];
        input.Shape.CopyTo(expected);
        expected[^2] = -1;
        expected[^1] = -1;
        Expect.Shape(op, outputName, output, expected);
        if (mode is not (ResizeMode.Bilinear or ResizeMode.Bicubic))
        {
            throw new LrmInvalidArgumentException($"{op}: unknown mode {(int)mode}");
        }
        if (!float.IsFinite(cubicA))
        {
            throw new LrmInvalidArgumentException($"{op}: cubicA must be finite, got {cubicA}");
        }
        long inHeight = input.Size(-2), inWidth = input.Size(-1), outHeight = output.Size(-2), outWidth = output.Size(-1);
        foreach (var (name, size) in new[] { ("input height", inHeight), ("input width", inWidth), ("output height", outHeight), ("output width", outWidth) })
        {
            Expect.Positive(op, name, size);
        }
        if (scaled)
        {
            OpShapes.ResizeScaleFactors(op, factorHeight, factorWidth, outHeight, outWidth);
        }
        var planes = input.ElementCount / (inHeight * inWidth);
        if (planes == 0)
        {
            return;
        }
        var bicubic = mode == ResizeMode.Bicubic;
        using var tapsX = Taps(op, (int)inWidth, (int)outWidth, factorWidth > 0 ? 1.0 / factorWidth : (double)inWidth / outWidth, bicubic, cubicA, antialias);
        using var tapsY = Taps(op, (int)inHeight, (int)outHeight, factorHeight > 0 ? 1.0 / factorHeight : (double)inHeight / outHeight, bicubic, cubicA, antialias);
        if (backward)
        {
            using var transposedX = Transposed(tapsX, (int)outWidth, (int)inWidth);
            using var transposedY = Transposed(tapsY, (int)outHeight, (int)inHeight);
            ApplyTaps(P(input), P(output), transposedX, transposedY, planes, outHeight, outWidth, inHeight, inWidth, op);
        }
        else
        {
            ApplyTaps(P(output), P(input), tapsX, tapsY, planes, inHeight, inWidth, outHeight, outWidth, op);
        }
    }

    // destination (P, OH, OW) from source (P, IH, IW): rows first (tapsX: OW entries), then columns (tapsY: OH entries).
    private void ApplyTaps(ulong destination, ulong source, TapTable tapsX, TapTable tapsY, long planes, long inHeight, long inWidth, long outHeight,
        long outWidth, string op)
    {
        var rows = planes * inHeight;
        using var temporary = Scratch(rows * outWidth * 4, "resize intermediate");
        _launcher.Launch(Kernel("resize.cu", "resize_horizontal_kernel"), StrideGrid(rows * outWidth), Threads, 0,
            temporary.Address, source, tapsX.Count, tapsX.Index, tapsX.Weight, rows, (int)inWidth, (int)outWidth, tapsX.Width);
        _launcher.Launch(Kernel("resize.cu", "resize_vertical_kernel"), StrideGrid(planes * outHeight * outWidth), Threads, 0,
            destination, temporary.Address, tapsY.Count, tapsY.Index, tapsY.Weight, ToInt(planes, op, "planes"), (int)inHeight, (int)outHeight,
            (int)outWidth, tapsY.Width);
    }

    /// <summary>
    /// A tap table (per output o: count[o] taps index[o·width + j] with weight[o·width + j]) turned around: per input
    /// position, the outputs that read it and the weights, in output order (and tap order within an output). Width: the
    /// most readers of any input (at least 1).
    /// </summary>
    internal static (int[] Count, int[] Index, float[] Weight, int Width) TransposeTaps(int[] count, int[] index, float[] weight, int width, int inSize)
    {
        var readers = new int[inSize];
        for (var o = 0; o < count.Length; o++)
        {
            for (var j = 0; j < count[o]; j++)
            {
                readers[index[o * width + j]]++;
            }
        }
        var transposedWidth = Math.Max(1, inSize == 0 ? 1 : readers.Max());
        var transposedIndex = new int[inSize * transposedWidth];
        var transposedWeight = new float[inSize * transposedWidth];
        var filled = new int[inSize];
        for (var o = 0; o < count.Length; o++)
        {
            for (var j = 0; j < count[o]; j++)
            {
                var at = index[o * width + j];
                var slot = at * transposedWidth + filled[at]++;
                transposedIndex[slot] = o;
                transposedWeight[slot] = weight[o * width + j];
            }
        }
        return (filled, transposedIndex, transposedWeight, transposedWidth);
    }

    // The tap table of one axis turned around: for each of the inSize input positions, the outputs that read it and
    // their weights, in output order. Built on the host from the device table (a few KiB).
    private TapTable Transposed(TapTable forward, int outSize, int inSize)
    {
        var width = forward.Width;
        var count = new int[outSize];
        var index = new int[outSize * width];
        var weight = new float[outSize * width];
        fixed (int* c = count)
        fixed (int* i = index)
        fixed (float* w = weight)
        {
            _staging.ToHost(c, forward.Count, outSize * 4L);
            _staging.ToHost(i, forward.Index, outSize * width * 4L);
            _staging.ToHost(w, forward.Weight, outSize * width * 4L);
        }
        var (filled, transposedIndex, transposedWeight, transposedWidth) = TransposeTaps(count, index, weight, width, inSize);
        var block = Scratch((long)inSize * 4 + 2L * inSize * transposedWidth * 4, "transposed resize taps");
        return BackendMemory.Written(new TapTable(block, transposedWidth, inSize), table =>
        {
            fixed (int* c = filled)
            fixed (int* i = transposedIndex)
            fixed (float* w = transposedWeight)
            {
                _staging.ToDevice(table.Count, c, inSize * 4L);
                _staging.ToDevice(table.Index, i, inSize * transposedWidth * 4L);
                _staging.ToDevice(table.Weight, w, inSize * transposedWidth * 4L);
            }
        });
    }

    /// <summary>One axis' taps in one block: count (out) int, index (out, width) int, weight (out, width) float.</summary>
    private sealed class TapTable(DeviceBlock block, int width, int outSize) : IDisposable
    {
        public int Width => width;
        public ulong Count => block.Address;
        public ulong Index => block.Address + (ulong)(outSize * 4);
        public ulong Weight => block.Address + (ulong)(outSize * 4) + (ulong)((long)outSize * width * 4);
        public void Dispose() => block.Dispose();
    }

    private TapTable Taps(string op, int inSize, int outSize, double scale, bool bicubic, float cubicA, bool antialias)
    {
        // Antialias windows hold at most 2·support + 2 taps (support widened by the downscale).
        var width = antialias
            ? ToInt((long)Math.Ceiling(2.0 * (bicubic ? 2.0 : 1.0) * Math.Max(scale, 1.0)) + 2, op, "filter taps")
            : bicubic ? 4 : 2;
        var block = Scratch((long)outSize * 4 + 2L * outSize * width * 4, "resize taps");
        return BackendMemory.Written(new TapTable(block, width, outSize), table =>
            _launcher.Launch(Kernel("resize.cu", "resize_taps_kernel"), Dim3.CeilDiv(outSize, 128), 128, 0,
                table.Count, table.Index, table.Weight, inSize, outSize, scale, bicubic ? 1 : 0, cubicA, antialias ? 1 : 0, width));
    }

    /// <inheritdoc />
    public void ResizeBackward(Tensor gradInput, Tensor gradOutput, ResizeMode mode, float cubicA = -0.75f, bool antialias = false) =>
        ResizeDevice("ResizeBackward", gradOutput, gradInput, mode, 0.0, 0.0, cubicA, antialias, backward: true);

    /// <inheritdoc />
    public void TriplaneSample(Tensor output, Tensor planes, Tensor points)
    {
        const string op = "TriplaneSample";
        Check(op, ("output", output), ("planes", planes), ("points", points));
        var (batch, count, channels, height, width) = OpShapes.TriplaneSizes(op, planes, points);
        Expect.Shape(op, "output", output, batch, count, 3 * channels);
        if (output.ElementCount == 0)
        {
            return;
        }
        Expect.Positive(op, "height", height);
        Expect.Positive(op, "width", width);
        var vectorised = channels % 4 == 0;
        _launcher.Launch(Kernel("triplane.cu", vectorised ? "triplane_sample_forward_vec4_kernel" : "triplane_sample_forward_kernel"),
            StrideGrid(vectorised ? output.ElementCount / 4 : output.ElementCount), Threads, 0,
            P(output), P(planes), P(points), ToInt(batch, op, "batch"), ToInt(count, op, "points"), ToInt(channels, op, "channels"),
            ToInt(height, op, "height"), ToInt(width, op, "width"));
    }

    /// <inheritdoc />
    public void TriplaneSampleSum(Tensor output, Tensor planes, Tensor points, Tensor? bias, Activation activation)
    {
        const string op = "TriplaneSampleSum";
        Check(op, ("output", output), ("planes", planes), ("points", points), ("bias", bias));
        var (batch, count, channels, height, width) = OpShapes.TriplaneSampleSum(op, output, planes, points, bias, activation);
        if (output.ElementCount == 0)
        {
            return;
        }
        Expect.Positive(op, "height", height);
        Expect.Positive(op, "width", width);
        var vectorised = channels % 4 == 0;
        _launcher.Launch(Kernel("triplane.cu", "triplane_sample_sum_kernel"),
            StrideGrid(vectorised ? output.ElementCount / 4 : output.ElementCount), Threads, 0,
            P(output), P(planes), P(points), P(bias), ToInt(batch, op, "batch"), ToInt(count, op, "points"), ToInt(channels, op, "channels"),
            ToInt(height, op, "height"), ToInt(width, op, "width"), (int)activation, vectorised ? 1 : 0);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The plane gradient is scattered with float atomics (one thread per point, plane and channel; channels-last, so a
    /// warp's adds hit consecutive words): fast, but the order of the additions is not fixed, so the result can differ
    /// from run to run in the last bits. The CPU backend has the deterministic mode.
    /// </remarks>
    public void TriplaneSampleBackward(Tensor gradPlanes, Tensor? gradPoints, Tensor gradOutput, Tensor planes, Tensor points)
    {
        const string op = "TriplaneSampleBackward";
        Check(op, ("gradPlanes", gradPlanes), ("gradPoints", gradPoints), ("gradOutput", gradOutput), ("planes", planes), ("points", points));
        var (batch, count, channels, height, width) = OpShapes.TriplaneSampleBackward(op, gradPlanes, gradPoints, gradOutput, planes, points);
        _context.Check(CudaDriver.cuMemsetD32Async(P(gradPlanes), 0, (nuint)gradPlanes.ElementCount, _context.Stream));
        if (count == 0)
        {
            return;
        }
        int b = ToInt(batch, op, "batch"), n = ToInt(count, op, "points"), c = ToInt(channels, op, "channels");
        int h = ToInt(height, op, "height"), w = ToInt(width, op, "width");
        _launcher.Launch(Kernel("triplane.cu", "triplane_planes_backward_kernel"), StrideGrid(gradOutput.ElementCount), Threads, 0,
            P(gradPlanes), P(gradOutput), P(points), b, n, c, h, w);
        if (gradPoints is not null)
        {
            _launcher.Launch(Kernel("triplane.cu", "triplane_points_backward_kernel"), StrideGrid(batch * count), Threads, 0,
                P(gradPoints), P(gradOutput), P(planes), P(points), b, n, c, h, w);
        }
    }

    // ---- small MLP ----------------------------------------------------------------------------------------

    /// <inheritdoc />
    public void Mlp(Tensor output, Tensor input, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, Activation hiddenActivation, Activation outputActivation)
    {
        const string op = "Mlp";
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(biases);
        Check(op, ("output", output), ("input", input));
        if (weights.Count == 0 || biases.Count != weights.Count)
        {
            throw new LrmInvalidArgumentException($"{op}: need one or more weights and as many biases (null allowed), got {weights.Count} and {biases.Count}");
        }
        Expect.Rank(op, "input", input, 1, "(..., features)");
        var rows = input.ElementCount / Math.Max(input.Size(-1), 1);
        var dimension = input.Size(-1);
        var widest = dimension;
        for (var l = 0; l < weights.Count; l++)
        {
            Check(op, ($"weights[{l}]", weights[l]), ($"biases[{l}]", biases[l]));
            Expect.Shape(op, $"weights[{l}]", weights[l], -1, dimension);
            dimension = weights[l].Size(0);
            Expect.Shape(op, $"biases[{l}]", biases[l], dimension);
            widest = Math.Max(widest, dimension);
        }
        Span<long> outShape = stackalloc long[input.Rank];
        input.Shape.CopyTo(outShape);
        outShape[^1] = dimension;
        Expect.Shape(op, "output", output, outShape);
        Expect.Positive(op, "rows", rows);
        if (TryFusedMlp(output, input, weights, biases, hiddenActivation, outputActivation, rows))
        {
            return;
        }
        // Wider layers: layer by layer through two ping-pong buffers, GEMM with the bias, then the activation.
        using var ping = weights.Count > 1 ? Scratch(rows * widest * 4, "MLP activations") : null;
        using var pong = weights.Count > 2 ? Scratch(rows * widest * 4, "MLP activations") : null;
        var source = P(input);
        for (var l = 0; l < weights.Count; l++)
        {
            var last = l == weights.Count - 1;
            var destination = last ? P(output) : (l % 2 == 0 ? ping! : pong!).Address;
            int outDim = (int)weights[l].Size(0), inDim = (int)weights[l].Size(1);
            GemmDevice(destination, source, P(weights[l]), P(biases[l]), 0, ToInt(rows, op, "rows"), outDim, inDim, false, true);
            var activation = last ? outputActivation : hiddenActivation;
            if (activation != Activation.None)
            {
                ActivateDevice(destination, destination, rows * outDim, activation);
            }
            source = destination;
        }
    }

    /// <summary>kernels/mlp.cu's lrm_mlp_shape: layer count, dims, activations (80 bytes).</summary>
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct MlpShape
    {
        public int Layers;
        public fixed int Dims[17];
        public int HiddenActivation;
        public int OutputActivation;
    }

    private const int FusedMlpWidth = 64, FusedMlpMaxLayers = 16, FusedMlpThreads = 128;

    // The fused kernel (kernels/mlp.cu) when every layer is at most 64 wide and the packed weights fit in shared memory.
    private bool TryFusedMlp(Tensor output, Tensor input, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases,
        Activation hiddenActivation, Activation outputActivation, long rows)
    {
        if (weights.Count > FusedMlpMaxLayers || weights.Any(w => w.Size(0) > FusedMlpWidth))
        {
            return false;
        }
        long total = 0;
        foreach (var weight in weights)
        {
            total += (weight.Size(1) + 1) * weight.Size(0);
        }
        var sharedBytes = (total + (long)FusedMlpWidth * FusedMlpThreads) * 4;
        if (sharedBytes > _context.MaxSharedMemoryPerBlockOptin)
        {
            return false;
        }
        using var packed = Scratch(total * 4, "packed MLP weights");
        var transpose = Kernel("elementwise.cu", "transpose_forward_kernel");
        var offset = 0UL;
        var shape = new MlpShape { Layers = weights.Count, HiddenActivation = (int)hiddenActivation, OutputActivation = (int)outputActivation };
        shape.Dims[0] = (int)weights[0].Size(1);
        for (var l = 0; l < weights.Count; l++)
        {
            int outDim = (int)weights[l].Size(0), inDim = (int)weights[l].Size(1);
            shape.Dims[l + 1] = outDim;
            // W (out, in) → Wᵀ (in, out), then the bias (or zeros).
            _launcher.Launch(transpose, new Dim3(Dim3.CeilDiv(inDim, 32), Dim3.CeilDiv(outDim, 32), 1), new Dim3(32, 8), 0,
                packed.Address + offset, P(weights[l]), outDim, inDim);
            offset += (ulong)((long)inDim * outDim * 4);
            _context.Check(biases[l] is { } bias
                ? CudaDriver.cuMemcpyDtoDAsync_v2(packed.Address + offset, P(bias), (nuint)(outDim * 4), _context.Stream)
                : CudaDriver.cuMemsetD32Async(packed.Address + offset, 0, (nuint)outDim, _context.Stream));
            offset += (ulong)(outDim * 4);
        }
        var kernel = Kernel("mlp.cu", "mlp_fused_forward_kernel");
        if (sharedBytes > 48 * 1024)
        {
            _context.Check(CudaDriver.cuFuncSetAttribute(kernel.Function, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                (int)sharedBytes), $"{sharedBytes} bytes of shared memory for mlp_fused_forward_kernel");
        }
        int perMultiprocessor;
        _context.Check(CudaDriver.cuOccupancyMaxActiveBlocksPerMultiprocessor(&perMultiprocessor, kernel.Function, FusedMlpThreads, (nuint)sharedBytes));
        var blocks = Math.Min((rows + FusedMlpThreads - 1) / FusedMlpThreads, (long)Math.Max(perMultiprocessor, 1) * _context.MultiprocessorCount);
        _launcher.Launch(kernel, blocks, FusedMlpThreads, (uint)sharedBytes, P(output), P(input), packed.Address, rows, shape);
        return true;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Recomputes the forward layer by layer (GEMM with bias, then the activation), keeping each layer's
    /// pre-activation and output, then walks back: dz = da·act'(z), dW += dzᵀ·a_prev (through the GEMM's residual),
    /// dbias += Σ_rows dz, da_prev = dz·W. Scratch: two (rows × width) buffers per layer.
    /// </remarks>
    public void MlpBackward(Tensor? gradInput, IReadOnlyList<Tensor> gradWeights, IReadOnlyList<Tensor?> gradBiases, Tensor gradOutput, Tensor input, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, Activation hiddenActivation, Activation outputActivation)
    {
        const string op = "MlpBackward";
        OpShapes.MlpBackwardSlots(op, gradWeights, gradBiases, weights, biases);
        Check(op, ("gradInput", gradInput), ("gradOutput", gradOutput), ("input", input));
        if (hiddenActivation is < Activation.None or > Activation.Silu || outputActivation is < Activation.None or > Activation.Silu)
        {
            throw new LrmInvalidArgumentException($"{op}: unknown activation {(int)hiddenActivation}/{(int)outputActivation}");
        }
        Expect.Rank(op, "input", input, 1, "(..., features)");
        var layers = weights.Count;
        var dims = new int[layers + 1];
        dims[0] = ToInt(input.Size(-1), op, "input features");
        for (var l = 0; l < layers; l++)
        {
            Check(op, ($"weights[{l}]", weights[l]), ($"biases[{l}]", biases[l]), ($"gradWeights[{l}]", gradWeights[l]), ($"gradBiases[{l}]", gradBiases[l]));
            Expect.Shape(op, $"weights[{l}]", weights[l], -1, dims[l]);
            dims[l + 1] = ToInt(weights[l].Size(0), op, $"weights[{l}] rows");
            Expect.Shape(op, $"biases[{l}]", biases[l], dims[l + 1]);
            Expect.Shape(op, $"gradWeights[{l}]", gradWeights[l], weights[l].Shape);
            Expect.Shape(op, $"gradBiases[{l}]", gradBiases[l], dims[l + 1]);
        }
        var rows = ToInt(OpShapes.MlpBackwardRows(op, gradInput, gradOutput, input, dims[layers]), op, "rows");

        var scratch = new List<DeviceBlock>();
        try
        {
            DeviceBlock Buffer(int width, string what)
            {
                var block = Scratch((long)rows * width * 4, what);
                scratch.Add(block);
                return block;
            }
            // Forward again: z_l (pre-activation) for every layer, a_l (output) for the hidden ones.
            var pre = new ulong[layers];
            var post = new ulong[layers];
            var source = P(input);
            for (var l = 0; l < layers; l++)
            {
                pre[l] = Buffer(dims[l + 1], "MLP backward pre-activations").Address;
                GemmDevice(pre[l], source, P(weights[l]), P(biases[l]), 0, rows, dims[l + 1], dims[l], false, true);
                if (l < layers - 1)
                {
                    post[l] = Buffer(dims[l + 1], "MLP backward activations").Address;
                    ActivateDevice(post[l], pre[l], (long)rows * dims[l + 1], hiddenActivation);
                    source = post[l];
                }
            }
            // Back: dz of the last layer through the output activation, then layer by layer.
            var dz = Buffer(dims[layers], "MLP backward gradients").Address;
            ActivateBackwardDevice(dz, P(gradOutput), pre[layers - 1], (long)rows * dims[layers], outputActivation);
            for (var l = layers - 1; l >= 0; l--)
            {
                var previous = l == 0 ? P(input) : post[l - 1];
                GemmDevice(P(gradWeights[l]), dz, previous, 0, P(gradWeights[l]), dims[l + 1], dims[l], rows, true, false);
                if (gradBiases[l] is not null)
                {
                    ColumnDotAccumulate(P(gradBiases[l]), dz, 0, rows, dims[l + 1]);
                }
                if (l == 0 && gradInput is null)
                {
                    break;
                }
                var gradPrevious = l == 0 ? P(gradInput) : Buffer(dims[l], "MLP backward gradients").Address;
                GemmDevice(gradPrevious, dz, P(weights[l]), 0, 0, rows, dims[l], dims[l + 1], false, false);
                if (l > 0)
                {
                    var dzPrevious = Buffer(dims[l], "MLP backward gradients").Address;
                    ActivateBackwardDevice(dzPrevious, gradPrevious, pre[l - 1], (long)rows * dims[l], hiddenActivation);
                    dz = dzPrevious;
                }
            }
        }
        finally
        {
            foreach (var block in scratch)
            {
                block.Dispose();
            }
        }
    }

    // activation_forward_kernel: output = act(input), n elements (output may be input).
    private void ActivateDevice(ulong output, ulong input, long n, Activation activation) =>
        _launcher.Launch(Kernel("elementwise.cu", "activation_forward_kernel"), StrideGrid(n), Threads, 0, output, input, n, (int)activation);

    // activation_backward_kernel: gradInput = gradOutput·act'(preActivation), n elements.
    private void ActivateBackwardDevice(ulong gradInput, ulong gradOutput, ulong preActivation, long n, Activation activation) =>
        _launcher.Launch(Kernel("elementwise.cu", "activation_backward_kernel"), StrideGrid(n), Threads, 0, gradInput, gradOutput, preActivation, n, (int)activation);

    // ---- conversion, arithmetic, layout ---------------------------------------------------------------

    /// <inheritdoc />
    public void Convert(Tensor output, Tensor input)
    {
        const string op = "Convert";
        ThrowIfUnusable();
        Expect.OnDevice(op, Device, _owns, "output", output);
        Expect.OnDevice(op, Device, _owns, "input", input);
        Expect.Shape(op, "output", output, input.Shape);
        _context.MakeCurrent();
        var n = input.ElementCount;
        switch (input.DataType, output.DataType)
        {
            case (DataType.Float32, DataType.BFloat16):
                _launcher.Launch(Kernel("elementwise.cu", "convert_f32_to_bf16_kernel"), StrideGrid(n), Threads, 0, P(output), P(input), n);
                break;
            case (DataType.BFloat16, DataType.Float32):
                _launcher.Launch(Kernel("elementwise.cu", "convert_bf16_to_f32_kernel"), StrideGrid(n), Threads, 0, P(output), P(input), n);
                break;
            case var (from, to) when from == to:
                Copy(output, 0, input, 0, n);
                break;
            default:
                throw new LrmUnsupportedException($"{op}: {input.DataType} → {output.DataType} is not supported");
        }
    }

    /// <inheritdoc />
    public void Add(Tensor output, Tensor a, Tensor b)
    {
        const string op = "Add";
        Check(op, ("output", output), ("a", a), ("b", b));
        Expect.Shape(op, "b", b, a.Shape);
        Expect.Shape(op, "output", output, a.Shape);
        var n = a.ElementCount;
        _launcher.Launch(Kernel("elementwise.cu", "add_forward_kernel"), StrideGrid(n), Threads, 0, P(output), P(a), P(b), n);
    }

    /// <inheritdoc />
    public void LayerScale(Tensor output, Tensor input, Tensor gamma, Tensor? residual)
    {
        const string op = "LayerScale";
        Check(op, ("output", output), ("input", input), ("gamma", gamma), ("residual", residual));
        var channels = OpShapes.LayerScale(op, output, input, gamma, residual);
        var rows = input.ElementCount / channels;
        _launcher.Launch(Kernel("elementwise.cu", "layerscale_forward_kernel"), StrideGrid(input.ElementCount), Threads, 0,
            P(output), P(input), P(gamma), P(residual), rows, ToInt(channels, op, "channels"));
    }

    /// <inheritdoc />
    public void Transpose(Tensor output, Tensor input)
    {
        const string op = "Transpose";
        Check(op, ("output", output), ("input", input));
        var (batch, rows, columns) = OpShapes.Transpose(op, output, input);
        _launcher.Launch(Kernel("elementwise.cu", "transpose_forward_kernel"),
            new Dim3(Dim3.CeilDiv(columns, 32), Dim3.CeilDiv(rows, 32), batch), new Dim3(32, 8), 0,
            P(output), P(input), ToInt(rows, op, "rows"), ToInt(columns, op, "columns"));
    }

    /// <inheritdoc />
    public void Copy(Tensor destination, long destinationOffset, Tensor source, long sourceOffset, long count)
    {
        const string op = "Copy";
        ThrowIfUnusable();
        Expect.OnDevice(op, Device, _owns, "destination", destination);
        Expect.OnDevice(op, Device, _owns, "source", source);
        OpShapes.CopyRange(op, destination, destinationOffset, source, sourceOffset, count);
        var size = destination.DataType.ElementSize();
        var from = P(source) + (ulong)(sourceOffset * size);
        var to = P(destination) + (ulong)(destinationOffset * size);
        var bytes = (ulong)(count * size);
        if (count > 0 && from < to + bytes && to < from + bytes)
        {
            throw new LrmInvalidArgumentException($"{op}: source and destination ranges overlap");
        }
        if (count == 0)
        {
            return;
        }
        _context.MakeCurrent();
        _context.Check(CudaDriver.cuMemcpyDtoDAsync_v2(to, from, (nuint)bytes, _context.Stream));
    }

    // ---- triplane NeRF and volume rendering ---------------------------------------------------------

    /// <inheritdoc />
    public void NerfDecode(Tensor? sigma, Tensor? rgb, Tensor raw)
    {
        const string op = "NerfDecode";
        Check(op, ("sigma", sigma), ("rgb", rgb), ("raw", raw));
        if (sigma is null && rgb is null)
        {
            throw new LrmInvalidArgumentException($"{op}: at least one of 'sigma' and 'rgb' must be given");
        }
        var rows = OpShapes.NerfDecode(op, sigma, rgb, raw);
        _launcher.Launch(Kernel("render.cu", "nerf_decode_kernel"), StrideGrid(rows), Threads, 0, P(sigma), P(rgb), P(raw), rows);
    }

    /// <inheritdoc />
    public void RenderRays(Tensor origins, Tensor directions, Tensor depths, Tensor? depthRange, Tensor cameras, int height, int width)
    {
        const string op = "RenderRays";
        Check(op, ("origins", origins), ("directions", directions), ("depths", depths), ("depthRange", depthRange), ("cameras", cameras));
        var (batch, rays, samples) = OpShapes.RenderRays(op, origins, directions, depths, depthRange, cameras, height, width);
        Expect.Positive(op, "batch", batch);
        if (samples < 2)
        {
            throw new LrmInvalidArgumentException($"{op}: samples must be >= 2, got {samples}");
        }
        using var nearFar = Scratch(batch * rays * 16, "ray near/far");
        using var hit = Scratch(batch * rays * 4, "ray hits");
        using var range = Scratch(batch * 3 * 8, "per-image near range");
        _launcher.Launch(Kernel("render.cu", "render_rays_kernel"), StrideGrid(batch * rays), Threads, 0,
            P(origins), P(directions), nearFar.Address, hit.Address, P(cameras), ToInt(batch, op, "batch"), height, width);
        _launcher.Launch(Kernel("render.cu", "render_near_range_kernel"), batch, 256, 0, range.Address, nearFar.Address, hit.Address, rays);
        _launcher.Launch(Kernel("render.cu", "render_depths_kernel"), StrideGrid(depths.ElementCount), Threads, 0,
            P(depths), nearFar.Address, hit.Address, range.Address, rays, ToInt(samples, op, "samples"), (int)batch);
        if (depthRange is not null)
        {
            _launcher.Launch(Kernel("render.cu", "render_depth_range_kernel"), batch, 256, 0, P(depthRange), P(depths), rays * samples);
        }
    }

    /// <inheritdoc />
    public void RenderPoints(Tensor points, Tensor origins, Tensor directions, Tensor depths)
    {
        const string op = "RenderPoints";
        Check(op, ("points", points), ("origins", origins), ("directions", directions), ("depths", depths));
        var (batch, rays, samples) = OpShapes.RenderPoints(op, points, origins, directions, depths);
        _launcher.Launch(Kernel("render.cu", "render_points_kernel"), StrideGrid(batch * rays * samples), Threads, 0,
            P(points), P(origins), P(directions), P(depths), batch * rays, ToInt(samples, op, "samples"));
    }

    /// <inheritdoc />
    public void GridPoints(Tensor points, int resolution, long first)
    {
        const string op = "GridPoints";
        Check(op, ("points", points));
        var count = OpShapes.GridPoints(op, points, resolution, first);
        _launcher.Launch(Kernel("render.cu", "grid_points_kernel"), StrideGrid(count), Threads, 0, P(points), resolution, first, count);
    }

    /// <inheritdoc />
    public void RenderDecode(Tensor decoded, Tensor raw, Tensor points)
    {
        const string op = "RenderDecode";
        Check(op, ("decoded", decoded), ("raw", raw), ("points", points));
        var rows = OpShapes.RenderDecode(op, decoded, raw, points);
        _launcher.Launch(Kernel("render.cu", "render_decode_kernel"), StrideGrid(rows), Threads, 0, P(decoded), P(raw), P(points), rows);
    }

    /// <inheritdoc />
    public void RenderImportance(Tensor fineDepths, Tensor coarseDepths, Tensor coarseWeights)
    {
        const string op = "RenderImportance";
        Check(op, ("fineDepths", fineDepths), ("coarseDepths", coarseDepths), ("coarseWeights", coarseWeights));
        var (batch, rays, coarse, fine) = OpShapes.RenderImportance(op, fineDepths, coarseDepths, coarseWeights);
        if (coarse < 4)
        {
            throw new LrmInvalidArgumentException($"{op}: coarse samples must be >= 4 (the pdf drops 3 bins), got {coarse}");
        }
        Expect.Positive(op, "fine samples", fine);
        var count = batch * rays;
        using var scratch = Scratch(count * (coarse - 2) * 4, "importance CDF");
        _launcher.Launch(Kernel("render.cu", "render_importance_kernel"), StrideGrid(count), Threads, 0,
            P(fineDepths), P(coarseDepths), P(coarseWeights), scratch.Address, count, ToInt(coarse, op, "coarse samples"),
            ToInt(fine, op, "fine samples"));
    }

    /// <inheritdoc />
    public void RenderMarch(Tensor? rgb, Tensor? depth, Tensor? opacity, Tensor? weights, Tensor depthsA, Tensor decodedA, Tensor? depthsB, Tensor? decodedB, ReadOnlySpan<float> background, Tensor? depthRange)
    {
        const string op = "RenderMarch";
        Check(op, ("rgb", rgb), ("depth", depth), ("opacity", opacity), ("weights", weights),
            ("depthsA", depthsA), ("decodedA", decodedA), ("depthsB", depthsB), ("decodedB", decodedB), ("depthRange", depthRange));
        var (batch, rays, samplesA, samplesB) = OpShapes.RenderMarch(op, rgb, depth, opacity, weights, depthsA, decodedA, depthsB, decodedB,
            background, depthRange);
        Expect.Positive(op, "samples of A", samplesA);
        if (samplesA + samplesB < 2)
        {
            throw new LrmInvalidArgumentException($"{op}: need at least 2 samples per ray, got {samplesA + samplesB}");
        }
        var count = batch * rays;
        _launcher.Launch(Kernel("render.cu", "render_march_kernel"), StrideGrid(count), Threads, 0,
            P(rgb), P(depth), P(opacity), P(weights), P(depthsA), P(decodedA), samplesB > 0 ? P(depthsB) : 0UL, samplesB > 0 ? P(decodedB) : 0UL,
            P(depthRange), rays, count, ToInt(samplesA, op, "samples of A"), ToInt(samplesB, op, "samples of B"),
            background[0], background[1], background[2]);
    }

    // ---- iso-surfaces -------------------------------------------------------------------------------------

    /// <inheritdoc />
    /// <remarks>Returns device tensors in exactly the CPU's order (vertices by edge, triangles by cell): the triangles
    /// are identical, the vertex positions equal up to fused multiply-adds. Counting and emission run in blocks of
    /// 256 grid points with a scan of the block sums in between (kernels/marching_cubes.cu).</remarks>
    public (Tensor Vertices, Tensor Triangles) MarchingCubes(Tensor field, float level, ReadOnlySpan<float> bounds = default)
    {
        const string op = "MarchingCubes";
        if (field is null)
        {
            throw new LrmInvalidArgumentException($"{op}: tensor 'field' is null");
        }
        Check(op, ("field", field));
        var (depth, height, width) = OpShapes.MarchingCubes(op, field, level, bounds);
        Span<float> origin = [0f, 0f, 0f];
        Span<float> step = [1f, 1f, 1f];
        if (!bounds.IsEmpty)
        {
            Span<long> points = [width, height, depth];
            for (var k = 0; k < 3; k++)
            {
                float low = bounds[k], high = bounds[3 + k];
                if (!float.IsFinite(low) || !float.IsFinite(high) || !(high > low))
                {
                    throw new LrmInvalidArgumentException($"{op}: bounds must be finite with max > min on every axis, got [{low}, {high}] on axis {"xyz"[k]}");
                }
                origin[k] = low;
                step[k] = (high - low) / (float)(points[k] - 1);
                // As the CPU engine: high − low can overflow float, and the vertices would be inf/NaN.
                if (!float.IsFinite(step[k]) || !float.IsFinite(low + step[k] * (points[k] - 1)))
                {
                    throw new LrmInvalidArgumentException($"{op}: bounds [{low}, {high}] on axis {"xyz"[k]} span more than a float can hold (grid step {step[k]})");
                }
            }
        }
        var gridPoints = depth * height * width;
        if (gridPoints * 3 > int.MaxValue)
        {
            throw new LrmUnsupportedException($"{op}: field {field.ShapeText} has too many edges for int32 vertex ids");
        }
        int d = (int)depth, h = (int)height, w = (int)width;
        const int block = 256; // LRM_MC_BLOCK
        var blocks = (gridPoints + block - 1) / block;
        using var vertexBlocks = Scratch(blocks * 4, "marching-cubes vertex block sums");
        using var triangleBlocks = Scratch(blocks * 4, "marching-cubes triangle block sums");
        using var vertexOffsets = Scratch(gridPoints * 4, "marching-cubes vertex offsets");
        using var totals = Scratch(8, "marching-cubes totals");
        _launcher.Launch(Kernel("marching_cubes.cu", "mc_block_count_kernel"), blocks, block, 0,
            vertexBlocks.Address, triangleBlocks.Address, P(field), d, h, w, level);
        ExclusiveScan(vertexBlocks.Address, blocks, totals.Address);
        ExclusiveScan(triangleBlocks.Address, blocks, totals.Address + 4);
        Span<int> counts = stackalloc int[2];
        fixed (int* pointer = counts)
        {
            _staging.ToHost(pointer, totals.Address, 8);
        }
        var vertices = Empty([counts[0], 3]);
        Tensor? triangles = null;
        try
        {
            triangles = Empty([counts[1], 3], DataType.Int32);
            _launcher.Launch(Kernel("marching_cubes.cu", "mc_emit_vertices_kernel"), blocks, block, 0,
                P(vertices), vertexOffsets.Address, vertexBlocks.Address, P(field), d, h, w, level,
                origin[0], origin[1], origin[2], step[0], step[1], step[2]);
            _launcher.Launch(Kernel("marching_cubes.cu", "mc_emit_triangles_kernel"), blocks, block, 0,
                P(triangles), triangleBlocks.Address, vertexOffsets.Address, P(field), d, h, w, level);
        }
        catch
        {
            vertices.Dispose();
            triangles?.Dispose();
            throw;
        }
        return (vertices, triangles);
    }

    /// <summary>Exclusive prefix sum of <paramref name="count"/> ints in place; the grand total goes to <paramref name="total"/>.</summary>
    internal void ExclusiveScan(ulong data, long count, ulong total)
    {
        const int block = 1024;
        var blocks = (count + block - 1) / block;
        using var sums = Scratch(Math.Max(blocks, 1) * 4, "scan block sums");
        _launcher.Launch(Kernel("scan.cu", "scan_block_kernel"), Math.Max(blocks, 1), block, 0, data, sums.Address, count);
        if (blocks <= 1)
        {
            _context.Check(CudaDriver.cuMemcpyDtoDAsync_v2(total, sums.Address, 4, _context.Stream));
            return;
        }
        ExclusiveScan(sums.Address, blocks, total);
        _launcher.Launch(Kernel("scan.cu", "scan_add_kernel"), StrideGrid(count), Threads, 0, data, sums.Address, count);
    }

    // ---- lifetime -----------------------------------------------------------------------------------------

    // ---- backward and optimiser ops ------------------------------------------------------------------------

    /// <inheritdoc />
    public void LayerScaleBackward(Tensor? gradInput, Tensor? gradGamma, Tensor? gradResidual, Tensor gradOutput, Tensor input, Tensor gamma)
    {
        const string op = "LayerScaleBackward";
        Check(op, ("gradInput", gradInput), ("gradGamma", gradGamma), ("gradResidual", gradResidual), ("gradOutput", gradOutput), ("input", input), ("gamma", gamma));
        var (rows, channels) = OpShapes.LayerScaleBackward(op, gradInput, gradGamma, gradResidual, gradOutput, input, gamma);
        var width = ToInt(channels, op, "channels");
        if (gradGamma is not null)
        {
            // Before gradInput/gradResidual are written: either may be gradOutput itself.
            ColumnDotAccumulate(P(gradGamma), P(gradOutput), P(input), rows, width);
        }
        if (gradInput is not null || gradResidual is not null)
        {
            _launcher.Launch(Kernel("elementwise.cu", "layerscale_input_backward_kernel"), StrideGrid(rows * channels), Threads, 0,
                P(gradInput), P(gradResidual), P(gradOutput), P(gamma), rows, width);
        }
    }

    /// <inheritdoc />
    public void ResizeScaledBackward(Tensor gradInput, Tensor gradOutput, ResizeMode mode, double scaleFactorHeight, double scaleFactorWidth, float cubicA, bool antialias) =>
        ResizeDevice("ResizeScaledBackward", gradOutput, gradInput, mode, scaleFactorHeight, scaleFactorWidth, cubicA, antialias, backward: true,
            scaled: true);

    /// <inheritdoc />
    public void NerfDecodeBackward(Tensor gradRaw, Tensor? gradSigma, Tensor? gradRgb, Tensor raw)
    {
        const string op = "NerfDecodeBackward";
        Check(op, ("gradRaw", gradRaw), ("gradSigma", gradSigma), ("gradRgb", gradRgb), ("raw", raw));
        var rows = OpShapes.NerfDecodeBackward(op, gradRaw, gradSigma, gradRgb, raw);
        _launcher.Launch(Kernel("render.cu", "nerf_decode_backward_kernel"), StrideGrid(rows), Threads, 0, P(gradRaw), P(gradSigma), P(gradRgb), P(raw), rows);
    }

    /// <inheritdoc />
    public void RenderDecodeBackward(Tensor gradRaw, Tensor gradDecoded, Tensor raw, Tensor points)
    {
        const string op = "RenderDecodeBackward";
        Check(op, ("gradRaw", gradRaw), ("gradDecoded", gradDecoded), ("raw", raw), ("points", points));
        var rows = OpShapes.RenderDecode(op, gradRaw, raw, points, "gradRaw");
        Expect.Shape(op, "gradDecoded", gradDecoded, raw.Shape);
        _launcher.Launch(Kernel("render.cu", "render_decode_backward_kernel"), StrideGrid(rows), Threads, 0, P(gradRaw), P(gradDecoded), P(raw), P(points), rows);
    }

    /// <inheritdoc />
    public void RenderMarchBackward(Tensor gradDecodedA, Tensor? gradDecodedB, Tensor? gradRgb, Tensor? gradDepth, Tensor? gradOpacity, Tensor depthsA, Tensor decodedA, Tensor? depthsB, Tensor? decodedB, ReadOnlySpan<float> background, Tensor? depthRange)
    {
        const string op = "RenderMarchBackward";
        Check(op, ("gradDecodedA", gradDecodedA), ("gradDecodedB", gradDecodedB), ("gradRgb", gradRgb), ("gradDepth", gradDepth), ("gradOpacity", gradOpacity),
            ("depthsA", depthsA), ("decodedA", decodedA), ("depthsB", depthsB), ("decodedB", decodedB), ("depthRange", depthRange));
        var (batch, rays, samplesA, samplesB) = OpShapes.RenderMarchBackward(op, gradDecodedA, gradDecodedB, gradRgb, gradDepth, gradOpacity,
            depthsA, decodedA, depthsB, decodedB, background, depthRange);
        Expect.Positive(op, "samples of A", samplesA);
        var total = samplesA + samplesB;
        if (total < 2)
        {
            throw new LrmInvalidArgumentException($"{op}: need at least 2 samples per ray, got {total}");
        }
        var count = batch * rays;
        // Per ray, as the CPU's per-thread scratch: α and T per interval (2·total floats) and the merge order (total ints).
        using var alphaT = Scratch(count * total * 8, "compositing-backward α/T scratch");
        using var order = Scratch(count * total * 4, "compositing-backward merge order");
        _launcher.Launch(Kernel("render.cu", "render_march_backward_kernel"), StrideGrid(count), Threads, 0,
            P(gradDecodedA), samplesB > 0 ? P(gradDecodedB) : 0UL, P(gradRgb), P(gradDepth), P(gradOpacity), P(depthsA), P(decodedA),
            samplesB > 0 ? P(depthsB) : 0UL, samplesB > 0 ? P(decodedB) : 0UL, P(depthRange), alphaT.Address, order.Address, rays, count,
            ToInt(samplesA, op, "samples of A"), ToInt(samplesB, op, "samples of B"), background[0], background[1], background[2]);
    }

    /// <inheritdoc />
    public void AdamWStep(Tensor parameter, Tensor expAvg, Tensor expAvgSq, Tensor gradient, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, float gradientScale, long stepNumber)
    {
        const string op = "AdamWStep";
        Check(op, ("parameter", parameter), ("expAvg", expAvg), ("expAvgSq", expAvgSq), ("gradient", gradient));
        Expect.NotEmpty(op, "parameter", parameter);
        Expect.Shape(op, "expAvg", expAvg, parameter.Shape);
        Expect.Shape(op, "expAvgSq", expAvgSq, parameter.Shape);
        Expect.Shape(op, "gradient", gradient, parameter.Shape);
        // The CPU's checks (native/src/optimizer.cpp), before anything is queued.
        if (stepNumber < 1 || !float.IsFinite(learningRate) || learningRate < 0 || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)
            || !float.IsFinite(epsilon) || !(epsilon > 0) || !float.IsFinite(weightDecay) || weightDecay < 0 || !float.IsFinite(gradientScale) || gradientScale < 0)
        {
            throw new LrmInvalidArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{op}: needs step >= 1, finite lr, weight decay and gradient scale >= 0, finite eps > 0, betas in [0, 1); got step {stepNumber}, lr {learningRate}, betas {beta1}/{beta2}, eps {epsilon}, weight decay {weightDecay}, gradient scale {gradientScale}"));
        }
        // The step's scalars as PyTorch forms them (Python floats, rounded when applied), as the CPU path does.
        double lr = learningRate, b1 = beta1, b2 = beta2, t = stepNumber;
        var n = parameter.ElementCount;
        _launcher.Launch(Kernel("optimizer.cu", "adamw_step_kernel"), StrideGrid(n), Threads, 0, P(parameter), P(expAvg), P(expAvgSq), P(gradient), n,
            (float)(1.0 - lr * weightDecay), beta1, (float)(1.0 - b1), beta2, (float)(1.0 - b2), (float)(lr / (1.0 - Math.Pow(b1, t))),
            (float)Math.Sqrt(1.0 - Math.Pow(b2, t)), epsilon, gradientScale);
    }

    /// <inheritdoc />
    public double SumOfSquares(Tensor input, out long nonFinite)
    {
        const string op = "SumOfSquares";
        Check(op, ("input", input));
        Expect.NotEmpty(op, "input", input);
        const int chunk = 16384, threads = 256; // LRM_SUMSQ_CHUNK, LRM_SUMSQ_THREADS in kernels/optimizer.cu
        var n = input.ElementCount;
        var chunks = (n + chunk - 1) / chunk;
        using var sums = Scratch(chunks * 8, "sum-of-squares chunk sums");
        using var counts = Scratch(chunks * 4, "sum-of-squares non-finite counts");
        _launcher.Launch(Kernel("optimizer.cu", "sum_squares_block_kernel"), Dim3.CeilDiv(n, chunk), threads, 0, sums.Address, counts.Address, P(input), n);
        var chunkSums = new double[chunks];
        var chunkCounts = new int[chunks];
        fixed (double* pointer = chunkSums)
        {
            _staging.ToHost(pointer, sums.Address, chunks * 8);
        }
        fixed (int* pointer = chunkCounts)
        {
            _staging.ToHost(pointer, counts.Address, chunks * 4);
        }
        // In chunk order on the host: the same total on every device and grid.
        var total = 0.0;
        foreach (var value in chunkSums)
        {
            total += value;
        }
        nonFinite = double.IsFinite(total) ? 0 : chunkCounts.Sum(count => (long)count);
        return total;
    }

    /// <summary>
    /// Waits for queued work, then frees the compiled kernels, cuBLASLt, the caching allocator's memory and the context.
    /// Tensors of this backend must not be used afterwards. Safe to call twice.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        // Best effort: a context lost to a kernel fault still has its objects released.
        _context.TryMakeCurrent();
        CudaDriver.cuStreamSynchronize(_context.Stream);
        foreach (var module in _modules.Values)
        {
            module.Dispose();
        }
        _modules.Clear();
        _cublas?.Dispose();
        _staging.Dispose();
        _allocator.Dispose();
        _context.Dispose();
    }

    // Disposed, or lost to a kernel fault (then the fault's error again).
    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _context.ThrowIfLost();
    }
}
