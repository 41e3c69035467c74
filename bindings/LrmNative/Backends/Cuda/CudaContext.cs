using LrmNative.Interop;

namespace LrmNative.Backends.Cuda;

/// <summary>
/// One CUDA device as the backend uses it: its retained primary context, one non-blocking
/// stream that every op of the backend is queued on (so stream order is the only ordering the
/// allocator needs), and the device properties kernels are sized by.
/// </summary>
internal sealed unsafe class CudaContext : IDisposable
{
    private nint _context;
    private nint _stream;

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

    /// <summary>Binds the context to the calling thread (cheap when it already is).</summary>
    public void MakeCurrent()
    {
        nint current;
        if (CudaDriver.cuCtxGetCurrent(&current) == CUresult.CUDA_SUCCESS && current == _context)
        {
            return;
        }
        CudaCheck.Check(CudaDriver.cuCtxSetCurrent(_context), $"cuda:{Ordinal}");
    }

    /// <summary>Waits for everything queued on the stream.</summary>
    public void Synchronize(string? context = null)
    {
        MakeCurrent();
        CudaCheck.Check(CudaDriver.cuStreamSynchronize(_stream), context);
    }

    /// <summary>Free and total device memory.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        nuint free, total;
        CudaCheck.Check(CudaDriver.cuMemGetInfo_v2(&free, &total));
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
