using System.Runtime.CompilerServices;
using LrmNative.Interop;

namespace LrmNative.Backends.Cuda;

/// <summary>
/// One CUDA device as the backend uses it: its retained primary context, one non-blocking
/// stream that every op of the backend is queued on (so stream order is the only ordering the
/// allocator needs), and the device properties kernels are sized by.
///
/// It also checks the backend's driver calls (<see cref="Check"/>). Kernels run asynchronously: a kernel that faults
/// lets its launch succeed, and the driver reports the fault (a "sticky" error: the context is lost for good) from
/// whatever call comes next — a later kernel's launch, a copy, a memset, an allocation. So the context remembers the
/// kernels queued since the last synchronisation that succeeded, and a sticky error from any call is reported as a
/// fault of those kernels, naming the last one, never the innocent call that happened to see it. From then on every
/// call of the backend throws that same error instead of new, confusing ones.
/// </summary>
internal sealed unsafe class CudaContext : IDisposable
{
    private const int SuspectsNamed = 8;
    private readonly Queue<string> _suspects = new(SuspectsNamed);
    private nint _context;
    private nint _stream;
    private LrmCudaException? _lost;

    private CudaContext(int ordinal, int device, nint context)
    {
        Ordinal = ordinal;
        DeviceHandle = device;
        _context = context;
    }

    /// <summary>Device ordinal (cuda:N).</summary>
    public int Ordinal { get; }

    /// <summary>The CUdevice.</summary>
    public int DeviceHandle { get; }

    /// <summary>The backend's stream.</summary>
    public nint Stream => _stream;

    /// <summary>Marketing name, e.g. "NVIDIA H100 80GB HBM3".</summary>
    public string Name { get; private set; } = "";

    /// <summary>Compute capability major.</summary>
    public int Major { get; private set; }

    /// <summary>Compute capability minor.</summary>
    public int Minor { get; private set; }

    /// <summary>Streaming multiprocessors.</summary>
    public int MultiprocessorCount { get; private set; }

    /// <summary>Largest dynamic shared memory a block may opt in to.</summary>
    public int MaxSharedMemoryPerBlockOptin { get; private set; }

    /// <summary>Device memory in bytes.</summary>
    public long TotalMemory { get; private set; }

    /// <summary>Driver version, e.g. 13000.</summary>
    public int DriverVersion { get; private set; }

    /// <summary>True when cuMemAllocAsync is available (stream-ordered memory pools).</summary>
    public bool MemoryPoolsSupported { get; private set; }

    /// <summary>"sm_90" style architecture name.</summary>
    public string Architecture => $"sm_{Major}{Minor}";

    /// <summary>Opens device <paramref name="ordinal"/>; throws <see cref="LrmCudaUnavailableException"/> with the reason when there is none.</summary>
    public static CudaContext Open(int ordinal)
    {
        var probe = CudaDriverInfo.Probe();
        if (!probe.Available)
        {
            throw new LrmCudaUnavailableException($"cannot use cuda:{ordinal}: {probe.Summary}");
        }
        if (ordinal < 0 || ordinal >= probe.Devices.Count)
        {
            throw new LrmCudaUnavailableException($"cannot use cuda:{ordinal}: {probe.Summary}");
        }
        int device;
        CudaCheck.Check(CudaDriver.cuDeviceGet(&device, ordinal), $"cuda:{ordinal}");
        nint context;
        CudaCheck.Check(CudaDriver.cuDevicePrimaryCtxRetain(&context, device), $"cuda:{ordinal}");
        var result = new CudaContext(ordinal, device, context);
        try
        {
            result.MakeCurrent();
            result.ReadProperties();
            nint stream;
            CudaCheck.Check(CudaDriver.cuStreamCreate(&stream, CudaFlags.CU_STREAM_NON_BLOCKING));
            result._stream = stream;
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    private void ReadProperties()
    {
        var name = stackalloc byte[256];
        CudaCheck.Check(CudaDriver.cuDeviceGetName(name, 256, DeviceHandle));
        Name = NativeCheck.Utf8(name);
        Major = Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        Minor = Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        MultiprocessorCount = Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        MaxSharedMemoryPerBlockOptin = Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
        MemoryPoolsSupported = Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED) != 0;
        nuint bytes;
        CudaCheck.Check(CudaDriver.cuDeviceTotalMem_v2(&bytes, DeviceHandle));
        TotalMemory = (long)bytes;
        int version;
        CudaCheck.Check(CudaDriver.cuDriverGetVersion(&version));
        DriverVersion = version;
    }

    /// <summary>Reads one device attribute.</summary>
    public int Attribute(CUdevice_attribute attribute)
    {
        int value;
        CudaCheck.Check(CudaDriver.cuDeviceGetAttribute(&value, (int)attribute, DeviceHandle), attribute.ToString());
        return value;
    }

    /// <summary>The last kernel queued on the stream (or cuBLASLt call), for error messages.</summary>
    public string LastKernel { get; private set; } = "(none)";

    /// <summary>Kernels queued since the last synchronisation that succeeded: the suspects of an asynchronous fault.</summary>
    public long KernelsSinceSynchronization { get; private set; }

    /// <summary>True once a kernel fault has broken the context; every later call throws <see cref="ThrowIfLost"/>'s error.</summary>
    public bool IsLost => _lost is not null;

    /// <summary>Records that <paramref name="kernel"/> was queued on the stream.</summary>
    public void Queued(string kernel)
    {
        LastKernel = kernel;
        KernelsSinceSynchronization++;
        if (_suspects.Count == SuspectsNamed)
        {
            _suspects.Dequeue();
        }
        _suspects.Enqueue(kernel);
    }

    /// <summary>Throws the error that broke the context, if one did.</summary>
    public void ThrowIfLost()
    {
        if (_lost is { } lost)
        {
            throw new LrmCudaException(lost.Message, lost.Call, lost.Code, lost.CodeName);
        }
    }

    /// <summary>
    /// Throws for any result but CUDA_SUCCESS, as <see cref="CudaCheck.Check"/> does, except that an error which
    /// means the context is lost becomes the fault of the kernels queued since the last synchronisation (and is
    /// remembered), and out of memory says how much device memory is free.
    /// </summary>
    public void Check(CUresult result, string? what = null, [CallerArgumentExpression(nameof(result))] string call = "")
    {
        if (result == CUresult.CUDA_SUCCESS)
        {
            return;
        }
        if (LosesContext(result))
        {
            throw Lose(result, call, AsynchronousFault(result, CudaCheck.CallName(call)));
        }
        if (result == CUresult.CUDA_ERROR_OUT_OF_MEMORY)
        {
            throw OutOfMemory($"{CudaCheck.CallName(call)} failed: {CudaCheck.Describe(result)}{(what is null ? "" : $" [{what}]")}");
        }
        CudaCheck.Check(result, what, call);
    }

    /// <summary>
    /// The error for <paramref name="kernel"/> failing with <paramref name="result"/> when waited for right after its launch
    /// (synchronous launches): the kernel is known for certain. Remembered when the context is lost.
    /// </summary>
    public LrmCudaException KernelFailed(string kernel, CUresult result)
    {
        var call = $"cuStreamSynchronize after {kernel}";
        var message = $"kernel '{kernel}' failed: {CudaCheck.Describe(result)}";
        return LosesContext(result)
            ? Lose(result, call, $"{message}; the CUDA context is lost (restart the process to use the GPU again)")
            : new LrmCudaException(message, call, (int)result, CudaCheck.Name(result));
    }

    /// <summary>
    /// An out-of-memory error saying what was being done and how much device memory is free, e.g.
    /// "… [loading kernels/attention.cu]; cuda:0 has 1.2 GiB of 79.1 GiB free".
    /// </summary>
    public LrmOutOfMemoryException OutOfMemory(string message)
    {
        var free = "";
        nuint freeBytes, totalBytes;
        if (_lost is null && CudaDriver.cuMemGetInfo_v2(&freeBytes, &totalBytes) == CUresult.CUDA_SUCCESS)
        {
            free = $"; cuda:{Ordinal} ({Name}) has {DeviceAllocator.Format((long)freeBytes)} of {DeviceAllocator.Format((long)totalBytes)} free";
        }
        return new LrmOutOfMemoryException($"CUDA out of memory: {message}{free}");
    }

    /// <summary>
    /// Errors after which the context cannot be used again (the driver returns them from every later call): faults of a
    /// kernel (illegal address, illegal instruction, misaligned address, invalid address space or PC, hardware stack
    /// error, device-side assert, unspecified launch failure), the watchdog's timeout, and unknown errors (as a GPU that
    /// fell off the bus gives). 720 (cooperative launch too large) is refused at launch and is not one of them.
    /// </summary>
    public static bool LosesContext(CUresult result) => (int)result is 700 or 702 or 710 or (>= 714 and <= 719) or 999;

    // The call that saw a sticky error is rarely its cause: name the kernels that may be, oldest first.
    private string AsynchronousFault(CUresult result, string call)
    {
        const string lost = "the CUDA context is lost (restart the process to use the GPU again)";
        if (KernelsSinceSynchronization == 0)
        {
            return $"{CudaCheck.Describe(result)}, reported by {call}: asynchronous fault on cuda:{Ordinal} with no kernel of this backend queued "
                + $"since the last synchronisation (last kernel launched: {LastKernel}; another backend or library in this process may have faulted); {lost}";
        }
        var suspects = KernelsSinceSynchronization > _suspects.Count
            ? $"the last {_suspects.Count} of {KernelsSinceSynchronization}: {string.Join(", ", _suspects)}"
            : string.Join(", ", _suspects);
        return $"{CudaCheck.Describe(result)}, reported by {call}: asynchronous fault in a kernel queued since the last synchronisation ({suspects}); "
            + $"last kernel launched: {LastKernel} (rerun with LRM_CUDA_SYNC=1 to pinpoint it); {lost}";
    }

    private LrmCudaException Lose(CUresult result, string call, string message)
    {
        _lost ??= new LrmCudaException(message, call, (int)result, CudaCheck.Name(result));
        return new LrmCudaException(_lost.Message, _lost.Call, _lost.Code, _lost.CodeName);
    }

    /// <summary>Binds the context to the calling thread (cheap when it already is); throws the fault that lost it, if one did.</summary>
    public void MakeCurrent()
    {
        ThrowIfLost();
        nint current;
        if (CudaDriver.cuCtxGetCurrent(&current) == CUresult.CUDA_SUCCESS && current == _context)
        {
            return;
        }
        CudaCheck.Check(CudaDriver.cuCtxSetCurrent(_context), $"cuda:{Ordinal}");
    }

    /// <summary>Binds the context to the calling thread for cleanup, even a lost one; false when that fails.</summary>
    public bool TryMakeCurrent() => _context != 0 && CudaDriver.cuCtxSetCurrent(_context) == CUresult.CUDA_SUCCESS;

    /// <summary>Waits for everything queued on the stream; a kernel fault surfaces here, naming the last kernel queued.</summary>
    public void Synchronize(string? what = null)
    {
        MakeCurrent();
        Check(CudaDriver.cuStreamSynchronize(_stream), what);
        Synchronized();
    }

    /// <summary>Everything queued so far has finished without a fault.</summary>
    public void Synchronized()
    {
        KernelsSinceSynchronization = 0;
        _suspects.Clear();
    }

    /// <summary>Free and total device memory.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        nuint free, total;
        Check(CudaDriver.cuMemGetInfo_v2(&free, &total));
        return ((long)free, (long)total);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_context == 0)
        {
            return;
        }
        // Best effort: a context broken by a kernel fault still has to be released.
        CudaDriver.cuCtxSetCurrent(_context);
        if (_stream != 0)
        {
            CudaDriver.cuStreamSynchronize(_stream);
            CudaDriver.cuStreamDestroy_v2(_stream);
            _stream = 0;
        }
        CudaDriver.cuDevicePrimaryCtxRelease_v2(DeviceHandle);
        _context = 0;
    }
}
