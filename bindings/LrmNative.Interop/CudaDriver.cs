using System.Runtime.InteropServices;

namespace LrmNative.Interop;

/// <summary>CUresult values we name; every other value is reported by number and cuGetErrorString.</summary>
internal enum CUresult
{
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
}

/// <summary>
/// CUDA driver API entry points (exact C names, <c>_v2</c> spelled out where the header
/// maps them). The CUDA backend issue extends this list; here: enough to find a driver.
/// </summary>
internal static unsafe partial class CudaDriver
{
    private const string Lib = LibraryResolver.Cuda;

    [LibraryImport(Lib)] internal static partial CUresult cuInit(uint flags);
    [LibraryImport(Lib)] internal static partial CUresult cuDriverGetVersion(int* driverVersion);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetCount(int* count);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGet(int* device, int ordinal);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceTotalMem_v2(nuint* bytes, int device);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetAttribute(int* value, int attribute, int device);
    [LibraryImport(Lib)] internal static partial CUresult cuGetErrorString(CUresult error, byte** text);
}
