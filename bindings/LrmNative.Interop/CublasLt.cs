using System.Runtime.InteropServices;

namespace LrmNative.Interop;

/// <summary><c>cublasStatus_t</c>.</summary>
internal enum cublasStatus_t
{
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16,
}

/// <summary><c>cublasComputeType_t</c>.</summary>
internal enum cublasComputeType_t
{
    CUBLAS_COMPUTE_16F = 64,
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
}

/// <summary><c>cudaDataType_t</c> (library_types.h).</summary>
internal enum cudaDataType_t
{
    CUDA_R_32F = 0,
    CUDA_R_64F = 1,
    CUDA_R_16F = 2,
    CUDA_R_16BF = 14,
}

/// <summary><c>cublasOperation_t</c>.</summary>
internal enum cublasOperation_t
{
    CUBLAS_OP_N = 0,
    CUBLAS_OP_T = 1,
}

/// <summary><c>cublasLtMatmulDescAttributes_t</c> values we set.</summary>
internal enum cublasLtMatmulDescAttributes_t
{
    CUBLASLT_MATMUL_DESC_COMPUTE_TYPE = 0,
    CUBLASLT_MATMUL_DESC_SCALE_TYPE = 1,
    CUBLASLT_MATMUL_DESC_POINTER_MODE = 2,
    CUBLASLT_MATMUL_DESC_TRANSA = 3,
    CUBLASLT_MATMUL_DESC_TRANSB = 4,
    CUBLASLT_MATMUL_DESC_TRANSC = 5,
    CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
    CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,
    CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = 26,
}

/// <summary><c>cublasLtEpilogue_t</c>. cuBLASLt's GELU is the tanh approximation, not the exact erf GELU.</summary>
internal enum cublasLtEpilogue_t
{
    CUBLASLT_EPILOGUE_DEFAULT = 1,
    CUBLASLT_EPILOGUE_RELU = 2,
    CUBLASLT_EPILOGUE_BIAS = 4,
    CUBLASLT_EPILOGUE_RELU_BIAS = 6,
    CUBLASLT_EPILOGUE_GELU = 32,
    CUBLASLT_EPILOGUE_GELU_BIAS = 36,
}

/// <summary><c>cublasLtMatrixLayoutAttribute_t</c>.</summary>
internal enum cublasLtMatrixLayoutAttribute_t
{
    CUBLASLT_MATRIX_LAYOUT_TYPE = 0,
    CUBLASLT_MATRIX_LAYOUT_ORDER = 1,
    CUBLASLT_MATRIX_LAYOUT_ROWS = 2,
    CUBLASLT_MATRIX_LAYOUT_COLS = 3,
    CUBLASLT_MATRIX_LAYOUT_LD = 4,
    CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5,
    CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6,
}

/// <summary><c>cublasLtOrder_t</c>.</summary>
internal enum cublasLtOrder_t
{
    CUBLASLT_ORDER_COL = 0,
    CUBLASLT_ORDER_ROW = 1,
}

/// <summary><c>cublasLtMatmulPreferenceAttributes_t</c> values we set.</summary>
internal enum cublasLtMatmulPreferenceAttributes_t
{
    CUBLASLT_MATMUL_PREF_SEARCH_MODE = 0,
    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
}

/// <summary><c>cublasLtMatmulAlgo_t</c>: 8 opaque 64-bit words.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct cublasLtMatmulAlgo_t
{
    public fixed ulong data[8];
}

/// <summary><c>cublasLtMatmulHeuristicResult_t</c> (96 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct cublasLtMatmulHeuristicResult_t
{
    public cublasLtMatmulAlgo_t algo;
    public nuint workspaceSize;
    public cublasStatus_t state;
    public float wavesCount;
    public fixed int reserved[4];
}

/// <summary>
/// cuBLASLt (exact C names). Handles and descriptors are <see cref="nint"/>; matrices are device
/// pointers (<see cref="ulong"/>); the stream is a CUstream.
/// </summary>
internal static unsafe partial class CublasLt
{
    private const string Lib = LibraryResolver.CublasLt;

    [LibraryImport(Lib)] internal static partial nuint cublasLtGetVersion();
    [LibraryImport(Lib)] internal static partial byte* cublasLtGetStatusName(cublasStatus_t status);
    [LibraryImport(Lib)] internal static partial byte* cublasLtGetStatusString(cublasStatus_t status);
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasLtCreate(nint* handle);
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasLtDestroy(nint handle);

    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasLtMatmulDescCreate(nint* description, cublasComputeType_t computeType, cudaDataType_t scaleType);

    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasLtMatmulDescDestroy(nint description);

    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasLtMatmulDescSetAttribute(nint description, cublasLtMatmulDescAttributes_t attribute,
        void* value, nuint size);

    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasLtMatrixLayoutCreate(nint* layout, cudaDataType_t type, ulong rows, ulong columns, long leadingDimension);

    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasLtMatrixLayoutDestroy(nint layout);

    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasLtMatrixLayoutSetAttribute(nint layout, cublasLtMatrixLayoutAttribute_t attribute,
        void* value, nuint size);

    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasLtMatmulPreferenceCreate(nint* preference);
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasLtMatmulPreferenceDestroy(nint preference);

    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasLtMatmulPreferenceSetAttribute(nint preference,
        cublasLtMatmulPreferenceAttributes_t attribute, void* value, nuint size);

    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasLtMatmulAlgoGetHeuristic(nint handle, nint operationDescription, nint layoutA,
        nint layoutB, nint layoutC, nint layoutD, nint preference, int requestedAlgorithmCount,
        cublasLtMatmulHeuristicResult_t* results, int* returnedAlgorithmCount);

    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasLtMatmul(nint handle, nint operationDescription, void* alpha, ulong a, nint layoutA,
        ulong b, nint layoutB, void* beta, ulong c, nint layoutC, ulong d, nint layoutD, cublasLtMatmulAlgo_t* algorithm,
        ulong workspace, nuint workspaceBytes, nint stream);
}
