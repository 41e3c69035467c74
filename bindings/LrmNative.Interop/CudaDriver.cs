using System.Runtime.InteropServices;

namespace LrmNative.Interop;

/// <summary>CUresult values we name; every other value is reported by number, cuGetErrorName and cuGetErrorString.</summary>
internal enum CUresult
{
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_DEINITIALIZED = 4,
    CUDA_ERROR_STUB_LIBRARY = 34,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
    CUDA_ERROR_INVALID_PTX = 218,
    CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    CUDA_ERROR_LAUNCH_TIMEOUT = 702,
    CUDA_ERROR_ILLEGAL_INSTRUCTION = 715,
    CUDA_ERROR_MISALIGNED_ADDRESS = 716,
    CUDA_ERROR_LAUNCH_FAILED = 719,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803,
    CUDA_ERROR_UNKNOWN = 999,
}

/// <summary><c>CUdevice_attribute</c> values we read.</summary>
internal enum CUdevice_attribute
{
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
    CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
    CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36,
    CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37,
    CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 115,
}

/// <summary><c>CUfunction_attribute</c>.</summary>
internal enum CUfunction_attribute
{
    CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
    CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1,
    CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES = 2,
    CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3,
    CU_FUNC_ATTRIBUTE_NUM_REGS = 4,
    CU_FUNC_ATTRIBUTE_PTX_VERSION = 5,
    CU_FUNC_ATTRIBUTE_BINARY_VERSION = 6,
    CU_FUNC_ATTRIBUTE_CACHE_MODE_CA = 7,
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT = 9,
}

/// <summary>Flags of <c>cuStreamCreate</c> and <c>cuEventCreate</c>.</summary>
internal static class CudaFlags
{
    /// <summary><c>CU_STREAM_NON_BLOCKING</c>: no implicit synchronisation with the legacy default stream.</summary>
    public const uint CU_STREAM_NON_BLOCKING = 1;
    /// <summary><c>CU_EVENT_DEFAULT</c>.</summary>
    public const uint CU_EVENT_DEFAULT = 0;
    /// <summary><c>CU_EVENT_DISABLE_TIMING</c>.</summary>
    public const uint CU_EVENT_DISABLE_TIMING = 2;
}

/// <summary>
/// CUDA driver API entry points (exact C names, <c>_v2</c> spelled out where cuda.h maps them).
/// Handles are <see cref="nint"/> (CUcontext, CUstream, CUevent, CUmodule, CUfunction),
/// device pointers <see cref="ulong"/> (CUdeviceptr), devices <see cref="int"/> (CUdevice).
/// No logic: the checks live in LrmNative's CudaCheck.
/// </summary>
internal static unsafe partial class CudaDriver
{
    private const string Lib = LibraryResolver.Cuda;

    // ---- initialisation, devices ------------------------------------------------
    [LibraryImport(Lib)] internal static partial CUresult cuInit(uint flags);
    [LibraryImport(Lib)] internal static partial CUresult cuDriverGetVersion(int* driverVersion);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetCount(int* count);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGet(int* device, int ordinal);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceTotalMem_v2(nuint* bytes, int device);
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetAttribute(int* value, int attribute, int device);
    [LibraryImport(Lib)] internal static partial CUresult cuGetErrorString(CUresult error, byte** text);
    [LibraryImport(Lib)] internal static partial CUresult cuGetErrorName(CUresult error, byte** text);

    // ---- primary context ------------------------------------------------------------
    [LibraryImport(Lib)] internal static partial CUresult cuDevicePrimaryCtxRetain(nint* context, int device);
    [LibraryImport(Lib)] internal static partial CUresult cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(Lib)] internal static partial CUresult cuCtxPushCurrent_v2(nint context);
    [LibraryImport(Lib)] internal static partial CUresult cuCtxPopCurrent_v2(nint* context);
    [LibraryImport(Lib)] internal static partial CUresult cuCtxSetCurrent(nint context);
    [LibraryImport(Lib)] internal static partial CUresult cuCtxGetCurrent(nint* context);
    [LibraryImport(Lib)] internal static partial CUresult cuCtxSynchronize();

    // ---- memory -------------------------------------------------------------------------
    [LibraryImport(Lib)] internal static partial CUresult cuMemGetInfo_v2(nuint* free, nuint* total);
    [LibraryImport(Lib)] internal static partial CUresult cuMemAlloc_v2(ulong* pointer, nuint bytes);
    [LibraryImport(Lib)] internal static partial CUresult cuMemFree_v2(ulong pointer);
    [LibraryImport(Lib)] internal static partial CUresult cuMemAllocAsync(ulong* pointer, nuint bytes, nint stream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemFreeAsync(ulong pointer, nint stream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemAllocHost_v2(void** pointer, nuint bytes);
    [LibraryImport(Lib)] internal static partial CUresult cuMemFreeHost(void* pointer);
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyHtoDAsync_v2(ulong destination, void* source, nuint bytes, nint stream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyDtoHAsync_v2(void* destination, ulong source, nuint bytes, nint stream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyDtoDAsync_v2(ulong destination, ulong source, nuint bytes, nint stream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemsetD8Async(ulong destination, byte value, nuint count, nint stream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemsetD16Async(ulong destination, ushort value, nuint count, nint stream);
    [LibraryImport(Lib)] internal static partial CUresult cuMemsetD32Async(ulong destination, uint value, nuint count, nint stream);

    // ---- streams and events ----------------------------------------------------------------
    [LibraryImport(Lib)] internal static partial CUresult cuStreamCreate(nint* stream, uint flags);
    [LibraryImport(Lib)] internal static partial CUresult cuStreamDestroy_v2(nint stream);
    [LibraryImport(Lib)] internal static partial CUresult cuStreamSynchronize(nint stream);
    [LibraryImport(Lib)] internal static partial CUresult cuStreamQuery(nint stream);
    [LibraryImport(Lib)] internal static partial CUresult cuEventCreate(nint* @event, uint flags);
    [LibraryImport(Lib)] internal static partial CUresult cuEventDestroy_v2(nint @event);
    [LibraryImport(Lib)] internal static partial CUresult cuEventRecord(nint @event, nint stream);
    [LibraryImport(Lib)] internal static partial CUresult cuEventSynchronize(nint @event);
    [LibraryImport(Lib)] internal static partial CUresult cuEventElapsedTime(float* milliseconds, nint start, nint end);

    // ---- modules, functions, launch ------------------------------------------------------
    [LibraryImport(Lib)] internal static partial CUresult cuModuleLoadData(nint* module, void* image);
    [LibraryImport(Lib)] internal static partial CUresult cuModuleUnload(nint module);
    [LibraryImport(Lib)] internal static partial CUresult cuModuleGetFunction(nint* function, nint module, byte* name);
    [LibraryImport(Lib)] internal static partial CUresult cuFuncGetAttribute(int* value, CUfunction_attribute attribute, nint function);
    [LibraryImport(Lib)] internal static partial CUresult cuFuncSetAttribute(nint function, CUfunction_attribute attribute, int value);
    /// <summary>CUDA 12.4+: offset and size of a kernel parameter; CUDA_ERROR_INVALID_VALUE past the last one.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuFuncGetParamInfo(nint function, nuint index, nuint* offset, nuint* size);

    [LibraryImport(Lib)]
    internal static partial CUresult cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ, uint sharedMemoryBytes, nint stream, void** kernelParameters, void** extra);

    [LibraryImport(Lib)]
    internal static partial CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, nint function, int blockSize,
        nuint dynamicSharedMemoryBytes);

    /// <summary><paramref name="blockSizeToDynamicSharedMemory"/> is a C callback pointer (<c>CUoccupancyB2DSize</c>); pass null for a fixed size.</summary>
    [LibraryImport(Lib)]
    internal static partial CUresult cuOccupancyMaxPotentialBlockSize(int* minimumGridSize, int* blockSize, nint function,
        nint blockSizeToDynamicSharedMemory, nuint dynamicSharedMemoryBytes, int blockSizeLimit);
}
