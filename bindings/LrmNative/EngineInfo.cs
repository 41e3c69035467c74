using LrmNative.Interop;

namespace LrmNative;

/// <summary>What the engine was built with and what it can see: for <c>lrm info</c> and bug reports.</summary>
/// <param name="Version">The LrmNative assembly version, e.g. "0.1.0".</param>
/// <param name="NativeVersion">liblrm_native's version string.</param>
/// <param name="NativeBuild">How liblrm_native was built: compiler, CPU target (AVX2/AVX-512), OpenMP.</param>
/// <param name="NativeLibraryPath">Full path of the liblrm_native.so that was loaded.</param>
/// <param name="Threads">OpenMP threads the CPU engine uses.</param>
/// <param name="Blas">The BLAS library in use (OpenBLAS and its core type).</param>
/// <param name="Cuda">Whether a CUDA driver and devices were found.</param>
public sealed record EngineInfo(
    string Version,
    string NativeVersion,
    string NativeBuild,
    string NativeLibraryPath,
    int Threads,
    string Blas,
    CudaDriverInfo Cuda)
{
    /// <summary>
    /// A warning about the BLAS set-up, or null: OPENBLAS_CORETYPE from the environment holding OpenBLAS to AVX2 kernels
    /// on a CPU with AVX-512 (about half the GEMM throughput). Valid once the native library is loaded.
    /// </summary>
    public static string? BlasNote => OpenBlasCoreType.HeldBack;

    /// <summary>Queries the native library and probes for a CUDA driver (never throws for a missing driver).</summary>
    public static unsafe EngineInfo Query()
    {
        var nativeVersion = NativeCheck.Utf8(NativeMethods.lrm_version());
        var path = LibraryResolver.LoadedPath(LibraryResolver.LrmNative) ?? "liblrm_native.so";
        var full = File.Exists(path) ? Path.GetFullPath(path) : path;
        return new EngineInfo(
            typeof(EngineInfo).Assembly.GetName().Version?.ToString(3) ?? "unknown",
            nativeVersion,
            NativeCheck.Utf8(NativeMethods.lrm_build_info()),
            full,
            NativeMethods.lrm_get_num_threads(),
            NativeCheck.Utf8(NativeMethods.lrm_blas_info())
                + (OpenBlasCoreType.Applied is { } core ? $" (OPENBLAS_CORETYPE={core} set automatically for this AMD AVX-512 CPU; LRM_OPENBLAS_CORETYPE_AUTO=0 disables)" : "")
                + (OpenBlasCoreType.HeldBack is { } advice ? $" (note: {advice})" : ""),
            CudaDriverInfo.Probe());
    }
}

/// <summary>Result of looking for a CUDA driver and its devices.</summary>
/// <param name="Available">True when libcuda loaded, initialised and reports at least one device.</param>
/// <param name="Summary">One line: "no CUDA driver (...)", or the driver version and device count.</param>
/// <param name="Devices">Device names with memory, empty without a driver.</param>
public sealed record CudaDriverInfo(bool Available, string Summary, IReadOnlyList<string> Devices)
{
    /// <summary>Loads libcuda if present and lists devices; reports problems instead of throwing.</summary>
    public static unsafe CudaDriverInfo Probe()
    {
        if (!LibraryResolver.TryLoad(LibraryResolver.Cuda, out _, out var detail))
        {
            return new CudaDriverInfo(false, $"no CUDA driver ({detail})", []);
        }
        var init = CudaDriver.cuInit(0);
        if (init != CUresult.CUDA_SUCCESS)
        {
            return new CudaDriverInfo(false, $"CUDA driver found at {detail} but cuInit failed: {ErrorText(init)}", []);
        }
        int version = 0, count = 0;
        CudaDriver.cuDriverGetVersion(&version);
        var status = CudaDriver.cuDeviceGetCount(&count);
        if (status != CUresult.CUDA_SUCCESS || count == 0)
        {
            return new CudaDriverInfo(false, $"CUDA driver {version / 1000}.{version % 1000 / 10} found, but no device ({ErrorText(status)})", []);
        }
        var devices = new List<string>();
        var name = stackalloc byte[256];
        for (var ordinal = 0; ordinal < count; ordinal++)
        {
            int device;
            nuint bytes = 0;
            int major = 0, minor = 0;
            if (CudaDriver.cuDeviceGet(&device, ordinal) != CUresult.CUDA_SUCCESS)
            {
                continue;
            }
            CudaDriver.cuDeviceGetName(name, 256, device);
            CudaDriver.cuDeviceTotalMem_v2(&bytes, device);
            CudaDriver.cuDeviceGetAttribute(&major, 75, device); // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
            CudaDriver.cuDeviceGetAttribute(&minor, 76, device); // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
            devices.Add($"cuda:{ordinal} {NativeCheck.Utf8(name)} (sm_{major}{minor}, {bytes / (1024.0 * 1024 * 1024):F1} GiB)");
        }
        return new CudaDriverInfo(true, $"CUDA driver {version / 1000}.{version % 1000 / 10} at {detail}, {count} device(s)", devices);
    }

    private static unsafe string ErrorText(CUresult result)
    {
        byte* text = null;
        return CudaDriver.cuGetErrorString(result, &text) == CUresult.CUDA_SUCCESS && text is not null
            ? $"{result} ({NativeCheck.Utf8(text)})"
            : result.ToString();
    }
}
