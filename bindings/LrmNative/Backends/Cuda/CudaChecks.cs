using System.Runtime.CompilerServices;
using LrmNative.Interop;

namespace LrmNative.Backends.Cuda;

/// <summary>The one check helper for CUDA driver calls: a failed call becomes a typed exception carrying its text.</summary>
internal static unsafe class CudaCheck
{
    /// <summary>Throws for any result but CUDA_SUCCESS; <paramref name="context"/> says what was being done.</summary>
    public static void Check(CUresult result, string? context = null, [CallerArgumentExpression(nameof(result))] string call = "")
    {
        if (result == CUresult.CUDA_SUCCESS)
        {
            return;
        }
        var message = $"{CallName(call)} failed: {Describe(result)}{(context is null ? "" : $" [{context}]")}";
        throw result == CUresult.CUDA_ERROR_OUT_OF_MEMORY
            ? new LrmOutOfMemoryException(message)
            : new LrmCudaException(message, call, (int)result, Name(result));
    }

    /// <summary>"CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)".</summary>
    public static string Describe(CUresult result) => $"{Name(result)} ({Text(result)})";

    /// <summary>The driver's name of a result code, or its number.</summary>
    public static string Name(CUresult result)
    {
        byte* text = null;
        return CudaDriver.cuGetErrorName(result, &text) == CUresult.CUDA_SUCCESS && text is not null
            ? NativeCheck.Utf8(text)
            : $"CUresult {(int)result}";
    }

    private static string Text(CUresult result)
    {
        byte* text = null;
        return CudaDriver.cuGetErrorString(result, &text) == CUresult.CUDA_SUCCESS && text is not null
            ? NativeCheck.Utf8(text)
            : "no description";
    }

    // "CudaDriver.cuMemAlloc_v2(&pointer, bytes)" -> "cuMemAlloc_v2"
    internal static string CallName(string call)
    {
        var open = call.IndexOf('(', StringComparison.Ordinal);
        var head = open >= 0 ? call[..open] : call;
        var dot = head.LastIndexOf('.');
        return dot >= 0 ? head[(dot + 1)..] : head;
    }
}

/// <summary>The one check helper for NVRTC calls.</summary>
internal static unsafe class NvrtcCheck
{
    /// <summary>Throws for any result but NVRTC_SUCCESS.</summary>
    public static void Check(nvrtcResult result, string? context = null, [CallerArgumentExpression(nameof(result))] string call = "")
    {
        if (result == nvrtcResult.NVRTC_SUCCESS)
        {
            return;
        }
        var text = NativeCheck.Utf8(Nvrtc.nvrtcGetErrorString(result));
        var message = $"{CudaCheck.CallName(call)} failed: {result} ({text}){(context is null ? "" : $" [{context}]")}";
        throw result == nvrtcResult.NVRTC_ERROR_OUT_OF_MEMORY
            ? new LrmOutOfMemoryException(message)
            : new LrmCudaException(message, call, (int)result, result.ToString());
    }
}

/// <summary>The one check helper for cuBLASLt calls.</summary>
internal static unsafe class CublasCheck
{
    /// <summary>Throws for any status but CUBLAS_STATUS_SUCCESS.</summary>
    public static void Check(cublasStatus_t status, string? context = null, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status == cublasStatus_t.CUBLAS_STATUS_SUCCESS)
        {
            return;
        }
        var message = $"{CudaCheck.CallName(call)} failed: {Name(status)} ({NativeCheck.Utf8(CublasLt.cublasLtGetStatusString(status))})"
            + (context is null ? "" : $" [{context}]");
        throw status == cublasStatus_t.CUBLAS_STATUS_ALLOC_FAILED
            ? new LrmOutOfMemoryException(message)
            : new LrmCudaException(message, call, (int)status, Name(status));
    }

    private static string Name(cublasStatus_t status) =>
        Enum.IsDefined(status) ? status.ToString() : $"cublasStatus_t {(int)status}";
}
