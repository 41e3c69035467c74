// cublaslt.cpp — a CPU stand-in for libcublasLt.so.12, part of the CUDA emulator that lets the
// CUDA backend's code paths run in CI without a GPU.
//
//   g++ -O2 -std=c++17 -shared -fPIC -fvisibility=hidden -o libcublasLt.so.12 tests/cuda-emulator/cublaslt.cpp
//
// It exports exactly the cuBLASLt entry points that bindings/LrmNative.Interop/CublasLt.cs declares,
// with the real C ABI of cublasLt.h (CUDA 12):
//
//   cublasLtGetVersion, cublasLtGetStatusName, cublasLtGetStatusString, cublasLtCreate, cublasLtDestroy,
//   cublasLtMatmulDescCreate/Destroy/SetAttribute, cublasLtMatrixLayoutCreate/Destroy/SetAttribute,
//   cublasLtMatmulPreferenceCreate/Destroy/SetAttribute, cublasLtMatmulAlgoGetHeuristic, cublasLtMatmul.
//
// What cublasLtMatmul computes, per batch entry (the cuBLASLt documentation's definition):
//
//   D (m×n) = epilogue(alpha·op(A)·op(B) + beta·C [+ bias])      op(A) m×k, op(B) k×n, C and D m×n
//
// - Layouts are column-major unless CUBLASLT_MATRIX_LAYOUT_ORDER says ROW; element (r, c) sits at
//   r + c·ld (COL) or r·ld + c (ROW); batch entry b starts b·STRIDED_BATCH_OFFSET elements further on.
// - Element types CUDA_R_32F and CUDA_R_16BF (bf16 = the upper 16 bits of an fp32). Products are
//   accumulated in fp32 from exactly converted inputs, as tensor cores do, in k order 0..k−1 for
//   every output element (so results are deterministic and independent of the tiling below).
// - alpha and beta are fp32 (scale type CUDA_R_32F) read through host pointers; with beta == 0, C is
//   not read (it may hold NaNs, or be D itself). C and D may be the same memory when their layouts
//   agree (in-place).
// - Epilogues DEFAULT, RELU, BIAS, RELU_BIAS, GELU, GELU_BIAS, applied in fp32 after alpha/beta, then
//   rounded once to D's type (fp32 → bf16: round to nearest even, NaN stays NaN). The bias is a packed
//   vector of length m (rows of D), added to every column, of BIAS_DATA_TYPE (default: D's type).
//   cuBLASLt's GELU is the tanh approximation 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))), not erf.
// - Device pointers are host pointers (the emulated driver's cuMemAlloc is malloc), so matrices are
//   read and written directly. Everything is synchronous; the stream is ignored; no workspace is used.
// - bf16 ⇄ fp32 bit conversions are kernels/bf16.cuh's, the ones the GPU kernels and native/ use.
//
// Argument checking follows the real library: null or foreign handles and descriptors, dimensions that
// do not chain (op(A) m×k, op(B) k×n, C and D m×n), leading dimensions smaller than a row or column,
// batch counts that differ, unknown attributes or attribute sizes → CUBLAS_STATUS_INVALID_VALUE;
// type/compute-type combinations, orders, epilogues and features the library has no kernel for →
// CUBLAS_STATUS_NOT_SUPPORTED. Nothing is dereferenced before it has been checked.
//
// The algorithm the heuristic returns records the problem's types and epilogue and, like a real
// vectorised kernel, the pointer alignment it assumes: the preference's MIN_ALIGNMENT_*_BYTES (default
// 256) capped at 16 bytes (a 128-bit load) and at what the leading dimension and batch stride keep. A
// cublasLtMatmul whose pointers are less aligned than that fails with CUBLAS_STATUS_INVALID_VALUE
// where a GPU would fault with a misaligned address.
//
// Set CUBLASLT_LOG_LEVEL=1 (the real library's variable) to have every failure explained on stderr.
//
// Switches for tests, from an environment variable when the library loads or, in a running process, from
// lrm_emu_cublaslt_set(name, value) (lrm_emu_cublaslt_get reads them and the counters back):
//   no_algorithm (LRM_EMU_CUBLASLT_NO_ALGORITHM=1): the heuristic succeeds with zero results, as the
//       real one may for a problem none of its kernels takes;
//   fail_next:<function> (no variable): the next call of <function> returns that cublasStatus_t without
//       doing anything (0 clears it), e.g. fail_next:cublasLtMatmul = 3 (CUBLAS_STATUS_ALLOC_FAILED).
// Counters: live_handles (cublasLtCreate minus cublasLtDestroy), live_objects (descriptors, layouts and
// preferences not destroyed), heuristic_calls (cublasLtMatmulAlgoGetHeuristic calls). When the emulated driver (LRM_CUDA_LIBRARY) holds a kernel fault it has
// not reported yet and reports faults from any call (its async_faults switch), cublasLtMatmul fails with
// CUBLAS_STATUS_EXECUTION_FAILED, as the real library does on a GPU whose context a kernel broke.
#include "../../kernels/bf16.cuh"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <initializer_list>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

// ---- the C ABI (cublas_api.h, cublasLt.h, library_types.h; only what this file uses) -----------------

#define LT_API extern "C" __attribute__((visibility("default")))

extern "C" {

typedef enum {
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
} cublasStatus_t;

typedef enum {
    CUDA_R_32F = 0,
    CUDA_R_64F = 1,
    CUDA_R_16F = 2,
    CUDA_R_16BF = 14,
} cudaDataType_t;
typedef cudaDataType_t cudaDataType;

typedef enum {
    CUBLAS_COMPUTE_16F = 64,
    CUBLAS_COMPUTE_16F_PEDANTIC = 65,
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_64F = 70,
    CUBLAS_COMPUTE_64F_PEDANTIC = 71,
    CUBLAS_COMPUTE_32I = 72,
    CUBLAS_COMPUTE_32I_PEDANTIC = 73,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
} cublasComputeType_t;

typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;
typedef enum { CUBLAS_FILL_MODE_LOWER = 0, CUBLAS_FILL_MODE_UPPER = 1, CUBLAS_FILL_MODE_FULL = 2 } cublasFillMode_t;
typedef enum { CUBLASLT_POINTER_MODE_HOST = 0, CUBLASLT_POINTER_MODE_DEVICE = 1 } cublasLtPointerMode_t;
typedef enum { CUBLASLT_ORDER_COL = 0, CUBLASLT_ORDER_ROW = 1 } cublasLtOrder_t;
typedef enum { CUBLASLT_SEARCH_BEST_FIT = 0, CUBLASLT_SEARCH_LIMITED_BY_ALGO_ID = 1 } cublasLtMatmulSearch_t;

typedef enum {
    CUBLASLT_EPILOGUE_DEFAULT = 1,
    CUBLASLT_EPILOGUE_RELU = 2,
    CUBLASLT_EPILOGUE_BIAS = 4,
    CUBLASLT_EPILOGUE_RELU_BIAS = 6,
    CUBLASLT_EPILOGUE_GELU = 32,
    CUBLASLT_EPILOGUE_GELU_BIAS = 36,
} cublasLtEpilogue_t;

// Attribute value types (the "Type" column of cuBLASLt's attribute tables) are noted per line.
typedef enum {
    CUBLASLT_MATMUL_DESC_COMPUTE_TYPE = 0,                // int32_t  cublasComputeType_t
    CUBLASLT_MATMUL_DESC_SCALE_TYPE = 1,                  // int32_t  cudaDataType_t
    CUBLASLT_MATMUL_DESC_POINTER_MODE = 2,                // int32_t  cublasLtPointerMode_t
    CUBLASLT_MATMUL_DESC_TRANSA = 3,                      // int32_t  cublasOperation_t
    CUBLASLT_MATMUL_DESC_TRANSB = 4,                      // int32_t  cublasOperation_t
    CUBLASLT_MATMUL_DESC_TRANSC = 5,                      // int32_t  cublasOperation_t
    CUBLASLT_MATMUL_DESC_FILL_MODE = 6,                   // int32_t  cublasFillMode_t
    CUBLASLT_MATMUL_DESC_EPILOGUE = 7,                    // uint32_t cublasLtEpilogue_t
    CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,                // void*
    CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE = 10,          // int64_t
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER = 11,       // void*
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD = 12,            // int64_t
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE = 13,  // int64_t
    CUBLASLT_MATMUL_DESC_ALPHA_VECTOR_BATCH_STRIDE = 14,  // int64_t
    CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET = 15,            // int32_t
    CUBLASLT_MATMUL_DESC_A_SCALE_POINTER = 17,            // void*
    CUBLASLT_MATMUL_DESC_B_SCALE_POINTER = 18,            // void*
    CUBLASLT_MATMUL_DESC_C_SCALE_POINTER = 19,            // void*
    CUBLASLT_MATMUL_DESC_D_SCALE_POINTER = 20,            // void*
    CUBLASLT_MATMUL_DESC_AMAX_D_POINTER = 21,             // void*
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE = 22,     // int32_t  cudaDataType_t
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_SCALE_POINTER = 23, // void*
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_AMAX_POINTER = 24,  // void*
    CUBLASLT_MATMUL_DESC_FAST_ACCUM = 25,                 // int8_t
    CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = 26,             // int32_t  cudaDataType_t, −1 = D's type
} cublasLtMatmulDescAttributes_t;

typedef enum {
    CUBLASLT_MATRIX_LAYOUT_TYPE = 0,                 // uint32_t cudaDataType_t
    CUBLASLT_MATRIX_LAYOUT_ORDER = 1,                // int32_t  cublasLtOrder_t
    CUBLASLT_MATRIX_LAYOUT_ROWS = 2,                 // uint64_t
    CUBLASLT_MATRIX_LAYOUT_COLS = 3,                 // uint64_t
    CUBLASLT_MATRIX_LAYOUT_LD = 4,                   // int64_t
    CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5,          // int32_t
    CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6, // int64_t, in elements
    CUBLASLT_MATRIX_LAYOUT_PLANE_OFFSET = 7,         // int64_t, planar complex only
} cublasLtMatrixLayoutAttribute_t;

typedef enum {
    CUBLASLT_MATMUL_PREF_SEARCH_MODE = 0,           // uint32_t cublasLtMatmulSearch_t
    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,   // uint64_t
    CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK = 3, // uint32_t
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5, // uint32_t, default 256
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6, // uint32_t, default 256
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7, // uint32_t, default 256
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8, // uint32_t, default 256
    CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT = 9,       // float
    CUBLASLT_MATMUL_PREF_IMPL_MASK = 12,            // uint64_t
} cublasLtMatmulPreferenceAttributes_t;

typedef struct {
    uint64_t data[8];
} cublasLtMatmulAlgo_t;

typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;

typedef struct cublasLtContext* cublasLtHandle_t;
typedef struct cublasLtMatmulDescOpaque_t* cublasLtMatmulDesc_t;
typedef struct cublasLtMatrixLayoutOpaque_t* cublasLtMatrixLayout_t;
typedef struct cublasLtMatmulPreferenceOpaque_t* cublasLtMatmulPreference_t;
typedef struct CUstream_st* cudaStream_t;

} // extern "C"

// The C# bindings (CublasLt.cs) read these two structs field by field.
static_assert(sizeof(cublasLtMatmulAlgo_t) == 64, "cublasLtMatmulAlgo_t is 8 words");
static_assert(sizeof(cublasLtMatmulHeuristicResult_t) == 96, "cublasLtMatmulHeuristicResult_t is 96 bytes");
static_assert(offsetof(cublasLtMatmulHeuristicResult_t, workspaceSize) == 64, "layout of the heuristic result");
static_assert(offsetof(cublasLtMatmulHeuristicResult_t, state) == 72, "layout of the heuristic result");
static_assert(offsetof(cublasLtMatmulHeuristicResult_t, wavesCount) == 76, "layout of the heuristic result");
static_assert(offsetof(cublasLtMatmulHeuristicResult_t, reserved) == 80, "layout of the heuristic result");

// ---- the objects behind the opaque handles -----------------------------------------------------------

// cublasLtContext & co. are incomplete types in the ABI; the emulator's objects are these structs. Each
// starts with a tag, so a handle of the wrong kind (or one already destroyed) is refused, not used.
struct cublasLtContext {
    uint64_t tag;
};

struct cublasLtMatmulDescOpaque_t {
    uint64_t tag;
    int32_t compute_type;
    int32_t scale_type;
    int32_t pointer_mode = CUBLASLT_POINTER_MODE_HOST;
    int32_t transa = CUBLAS_OP_N;
    int32_t transb = CUBLAS_OP_N;
    int32_t transc = CUBLAS_OP_N;
    int32_t fill_mode = CUBLAS_FILL_MODE_FULL;
    uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void* bias = nullptr;
    int64_t bias_batch_stride = 0;
    void* aux = nullptr;
    int64_t aux_ld = 0;
    int64_t aux_batch_stride = 0;
    int64_t alpha_vector_batch_stride = 0;
    int32_t sm_count_target = 0;
    const void* a_scale = nullptr;
    const void* b_scale = nullptr;
    const void* c_scale = nullptr;
    const void* d_scale = nullptr;
    void* amax_d = nullptr;
    int32_t aux_data_type = -1;
    const void* aux_scale = nullptr;
    void* aux_amax = nullptr;
    int8_t fast_accum = 0;
    int32_t bias_data_type = -1;
};

struct cublasLtMatrixLayoutOpaque_t {
    uint64_t tag;
    uint32_t type;
    int32_t order = CUBLASLT_ORDER_COL;
    uint64_t rows;
    uint64_t cols;
    int64_t ld;
    int32_t batch_count = 1;
    int64_t batch_stride = 0;
    int64_t plane_offset = 0;
};

struct cublasLtMatmulPreferenceOpaque_t {
    uint64_t tag;
    uint32_t search_mode = CUBLASLT_SEARCH_BEST_FIT;
    uint64_t max_workspace_bytes = 0;
    uint32_t reduction_scheme_mask = 0x7;
    uint32_t min_alignment_a = 256;
    uint32_t min_alignment_b = 256;
    uint32_t min_alignment_c = 256;
    uint32_t min_alignment_d = 256;
    float max_waves_count = 0.0f;
    uint64_t impl_mask = ~0ull;
};

namespace {

// cuBLAS 12.4.5 (CUDA 12.4 update 1): CUBLAS_VERSION = major·10000 + minor·100 + patch.
constexpr size_t kVersion = 12 * 10000 + 4 * 100 + 5;

// Arbitrary distinct tags in the first word of each object; a destroyed object's tag is zeroed.
constexpr uint64_t kHandleTag = 0x4c7448616e646c01ull;
constexpr uint64_t kMatmulDescTag = 0x4c7448616e646c02ull;
constexpr uint64_t kLayoutTag = 0x4c7448616e646c03ull;
constexpr uint64_t kPreferenceTag = 0x4c7448616e646c04ull;
constexpr uint64_t kAlgoTag = 0x4c7448616e646c05ull; // data[0] of every algorithm this library hands out

// The widest vector access an emulated kernel assumes (a 128-bit load or store).
constexpr uint32_t kWidestAccessBytes = 16;

// The k extent of the fp32 panels the product is computed from (see multiply).
constexpr int64_t kPanel = 128;

// ---- switches for tests (see the top of this file) -----------------------------------------------------

struct Switches {
    std::mutex lock;
    bool no_algorithm = false;
    long long live_handles = 0, live_objects = 0, heuristic_calls = 0;
    std::unordered_map<std::string, int> fail_next; // function -> status of its next call

    Switches() {
        const char* variable = std::getenv("LRM_EMU_CUBLASLT_NO_ALGORITHM");
        no_algorithm = variable != nullptr && std::strcmp(variable, "1") == 0;
    }
};

Switches& switches() {
    static Switches instance;
    return instance;
}

// The status an injected failure gives the next call of `function`, or SUCCESS.
cublasStatus_t injected(const char* function) {
    Switches& s = switches();
    std::lock_guard<std::mutex> guard(s.lock);
    auto found = s.fail_next.find(function);
    if (found == s.fail_next.end()) {
        return CUBLAS_STATUS_SUCCESS;
    }
    const auto status = static_cast<cublasStatus_t>(found->second);
    s.fail_next.erase(found);
    return status;
}

void count(long long Switches::*counter, long long change) {
    Switches& s = switches();
    std::lock_guard<std::mutex> guard(s.lock);
    s.*counter += change;
}

// True when the emulated driver holds a kernel fault that it reports from any call (its async_faults switch).
bool driver_fault_pending() {
    using Get = long long (*)(const char*);
    static Get get = nullptr;
    if (get == nullptr) {
        get = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, "lrm_emu_driver_get"));
        const char* path = std::getenv("LRM_CUDA_LIBRARY");
        void* driver = get == nullptr && path != nullptr ? dlopen(path, RTLD_NOLOAD | RTLD_LAZY) : nullptr;
        if (driver != nullptr) {
            get = reinterpret_cast<Get>(dlsym(driver, "lrm_emu_driver_get"));
        }
    }
    return get != nullptr && get("async_faults") == 1 && get("pending_error") != 0;
}

// ---- diagnostics -------------------------------------------------------------------------------------

// Every cublasStatus_t, its name and what it means (cublasLtGetStatusName / cublasLtGetStatusString).
struct StatusText {
    cublasStatus_t status;
    const char* name;
    const char* text;
};

constexpr StatusText kStatusTexts[] = {
    {CUBLAS_STATUS_SUCCESS, "CUBLAS_STATUS_SUCCESS", "success"},
    {CUBLAS_STATUS_NOT_INITIALIZED, "CUBLAS_STATUS_NOT_INITIALIZED", "the library was not initialized"},
    {CUBLAS_STATUS_ALLOC_FAILED, "CUBLAS_STATUS_ALLOC_FAILED", "the resource allocation failed"},
    {CUBLAS_STATUS_INVALID_VALUE, "CUBLAS_STATUS_INVALID_VALUE", "an invalid numeric value was used as an argument"},
    {CUBLAS_STATUS_ARCH_MISMATCH, "CUBLAS_STATUS_ARCH_MISMATCH", "an absent device architectural feature is required"},
    {CUBLAS_STATUS_MAPPING_ERROR, "CUBLAS_STATUS_MAPPING_ERROR", "an access to GPU memory space failed"},
    {CUBLAS_STATUS_EXECUTION_FAILED, "CUBLAS_STATUS_EXECUTION_FAILED", "the GPU program failed to execute"},
    {CUBLAS_STATUS_INTERNAL_ERROR, "CUBLAS_STATUS_INTERNAL_ERROR", "an internal operation failed"},
    {CUBLAS_STATUS_NOT_SUPPORTED, "CUBLAS_STATUS_NOT_SUPPORTED", "the functionality requested is not supported"},
    {CUBLAS_STATUS_LICENSE_ERROR, "CUBLAS_STATUS_LICENSE_ERROR", "the functionality requested requires some license"},
};

// Returns status; when CUBLASLT_LOG_LEVEL ≥ 1 also says why on stderr (the real library logs errors
// at level 1 too; off by default so that tests provoking errors stay quiet).
__attribute__((format(printf, 3, 4)))
cublasStatus_t fail(cublasStatus_t status, const char* function, const char* format, ...) {
    const char* level = std::getenv("CUBLASLT_LOG_LEVEL");
    if (level != nullptr && std::atoi(level) >= 1) {
        std::fprintf(stderr, "[cublasLt emulator][Error][%s] ", function);
        va_list args;
        va_start(args, format);
        std::vfprintf(stderr, format, args);
        va_end(args);
        std::fprintf(stderr, " -> status %d\n", static_cast<int>(status));
    }
    return status;
}

// ---- attributes --------------------------------------------------------------------------------------

// One settable attribute: where it lives in its object and the exact size its C type has.
struct AttributeSlot {
    int attribute;
    size_t size;
    size_t offset;
};

#define LT_SLOT(attribute, Object, field) {attribute, sizeof(Object::field), offsetof(Object, field)}

using MatmulDesc = cublasLtMatmulDescOpaque_t;
constexpr AttributeSlot kMatmulDescSlots[] = {
    LT_SLOT(CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, MatmulDesc, compute_type),
    LT_SLOT(CUBLASLT_MATMUL_DESC_SCALE_TYPE, MatmulDesc, scale_type),
    LT_SLOT(CUBLASLT_MATMUL_DESC_POINTER_MODE, MatmulDesc, pointer_mode),
    LT_SLOT(CUBLASLT_MATMUL_DESC_TRANSA, MatmulDesc, transa),
    LT_SLOT(CUBLASLT_MATMUL_DESC_TRANSB, MatmulDesc, transb),
    LT_SLOT(CUBLASLT_MATMUL_DESC_TRANSC, MatmulDesc, transc),
    LT_SLOT(CUBLASLT_MATMUL_DESC_FILL_MODE, MatmulDesc, fill_mode),
    LT_SLOT(CUBLASLT_MATMUL_DESC_EPILOGUE, MatmulDesc, epilogue),
    LT_SLOT(CUBLASLT_MATMUL_DESC_BIAS_POINTER, MatmulDesc, bias),
    LT_SLOT(CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, MatmulDesc, bias_batch_stride),
    LT_SLOT(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, MatmulDesc, aux),
    LT_SLOT(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, MatmulDesc, aux_ld),
    LT_SLOT(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE, MatmulDesc, aux_batch_stride),
    LT_SLOT(CUBLASLT_MATMUL_DESC_ALPHA_VECTOR_BATCH_STRIDE, MatmulDesc, alpha_vector_batch_stride),
    LT_SLOT(CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET, MatmulDesc, sm_count_target),
    LT_SLOT(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, MatmulDesc, a_scale),
    LT_SLOT(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, MatmulDesc, b_scale),
    LT_SLOT(CUBLASLT_MATMUL_DESC_C_SCALE_POINTER, MatmulDesc, c_scale),
    LT_SLOT(CUBLASLT_MATMUL_DESC_D_SCALE_POINTER, MatmulDesc, d_scale),
    LT_SLOT(CUBLASLT_MATMUL_DESC_AMAX_D_POINTER, MatmulDesc, amax_d),
    LT_SLOT(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE, MatmulDesc, aux_data_type),
    LT_SLOT(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_SCALE_POINTER, MatmulDesc, aux_scale),
    LT_SLOT(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_AMAX_POINTER, MatmulDesc, aux_amax),
    LT_SLOT(CUBLASLT_MATMUL_DESC_FAST_ACCUM, MatmulDesc, fast_accum),
    LT_SLOT(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, MatmulDesc, bias_data_type),
};

using Layout = cublasLtMatrixLayoutOpaque_t;
constexpr AttributeSlot kLayoutSlots[] = {
    LT_SLOT(CUBLASLT_MATRIX_LAYOUT_TYPE, Layout, type),
    LT_SLOT(CUBLASLT_MATRIX_LAYOUT_ORDER, Layout, order),
    LT_SLOT(CUBLASLT_MATRIX_LAYOUT_ROWS, Layout, rows),
    LT_SLOT(CUBLASLT_MATRIX_LAYOUT_COLS, Layout, cols),
    LT_SLOT(CUBLASLT_MATRIX_LAYOUT_LD, Layout, ld),
    LT_SLOT(CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, Layout, batch_count),
    LT_SLOT(CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, Layout, batch_stride),
    LT_SLOT(CUBLASLT_MATRIX_LAYOUT_PLANE_OFFSET, Layout, plane_offset),
};

using Preference = cublasLtMatmulPreferenceOpaque_t;
constexpr AttributeSlot kPreferenceSlots[] = {
    LT_SLOT(CUBLASLT_MATMUL_PREF_SEARCH_MODE, Preference, search_mode),
    LT_SLOT(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, Preference, max_workspace_bytes),
    LT_SLOT(CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, Preference, reduction_scheme_mask),
    LT_SLOT(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, Preference, min_alignment_a),
    LT_SLOT(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, Preference, min_alignment_b),
    LT_SLOT(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, Preference, min_alignment_c),
    LT_SLOT(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, Preference, min_alignment_d),
    LT_SLOT(CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT, Preference, max_waves_count),
    LT_SLOT(CUBLASLT_MATMUL_PREF_IMPL_MASK, Preference, impl_mask),
};

#undef LT_SLOT

// The real SetAttribute contract: INVALID_VALUE for a null buffer, an unknown attribute, or a size
// that is not exactly the attribute's; otherwise the bytes are copied. Values are checked at use.
template <typename Object, size_t Count>
cublasStatus_t set_attribute(const char* function, Object* object, uint64_t tag, const AttributeSlot (&slots)[Count],
                             int attribute, const void* buffer, size_t size) {
    if (object == nullptr || object->tag != tag) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "the descriptor is null or not one this library created");
    }
    if (buffer == nullptr) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "attribute %d: the value pointer is null", attribute);
    }
    for (const AttributeSlot& slot : slots) {
        if (slot.attribute != attribute) {
            continue;
        }
        if (size != slot.size) {
            return fail(CUBLAS_STATUS_INVALID_VALUE, function, "attribute %d takes %zu bytes, got %zu", attribute,
                        slot.size, size);
        }
        std::memcpy(reinterpret_cast<char*>(object) + slot.offset, buffer, size);
        return CUBLAS_STATUS_SUCCESS;
    }
    return fail(CUBLAS_STATUS_INVALID_VALUE, function, "unknown attribute %d", attribute);
}

template <typename Object>
cublasStatus_t destroy(const char* function, Object* object, uint64_t tag) {
    if (object == nullptr) {
        return CUBLAS_STATUS_SUCCESS; // like free(NULL)
    }
    if (object->tag != tag) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "not a live object of this kind (destroyed twice?)");
    }
    object->tag = 0;
    delete object;
    count(&Switches::live_objects, -1);
    return CUBLAS_STATUS_SUCCESS;
}

// ---- numbers -----------------------------------------------------------------------------------------

size_t element_size(uint32_t type) { return type == CUDA_R_32F ? 4 : 2; } // only after a type check

float bf16_to_float(uint16_t value) {
    const uint32_t bits = lrm_bf16_to_bits(value);
    float result;
    std::memcpy(&result, &bits, sizeof result);
    return result;
}

uint16_t float_to_bf16(float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return lrm_bf16_from_bits(bits);
}

// What tensor cores see of an fp32 operand under the FAST compute types: the nearest bf16 (FAST_16BF)
// or TF32 (FAST_TF32: 10 mantissa bits, ties to even); NaN and ±inf pass unchanged.
enum class InputRounding { exact, bf16, tf32 };

float round_input(float value, InputRounding rounding) {
    switch (rounding) {
    case InputRounding::exact:
        return value;
    case InputRounding::bf16:
        return bf16_to_float(float_to_bf16(value));
    case InputRounding::tf32: {
        uint32_t bits;
        std::memcpy(&bits, &value, sizeof bits);
        if ((bits & 0x7f800000u) != 0x7f800000u) {
            bits += 0xfffu + ((bits >> 13) & 1u);
            bits &= ~0x1fffu;
        }
        float result;
        std::memcpy(&result, &bits, sizeof result);
        return result;
    }
    }
    return value;
}

float gelu_tanh(float x) {
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

// Largest power of two dividing value (value > 0), capped at cap.
uint64_t power_of_two_dividing(uint64_t value, uint64_t cap) {
    uint64_t alignment = 1;
    while (alignment < cap && value % (alignment * 2) == 0) {
        alignment *= 2;
    }
    return alignment;
}

// ---- the problem a descriptor and four layouts describe ----------------------------------------------

// One operand: its layout, resolved to element strides. Element (r, c) of the stored matrix of batch
// entry b is at base + (b·batch_stride + r·row_step + c·col_step) elements.
struct Operand {
    const Layout* layout;
    uint32_t type;
    size_t bytes; // per element
    uint64_t rows, cols;
    int64_t row_step, col_step;
    int64_t batch_stride;
};

struct Problem {
    int64_t m, n, k, batch;
    Operand a, b, c, d;
    bool transpose_a, transpose_b;
    InputRounding rounding;
    uint32_t epilogue;
    bool has_bias, relu, gelu;
    uint32_t bias_type;
};

bool is_supported_epilogue(uint32_t epilogue) {
    switch (epilogue) {
    case CUBLASLT_EPILOGUE_DEFAULT:
    case CUBLASLT_EPILOGUE_RELU:
    case CUBLASLT_EPILOGUE_BIAS:
    case CUBLASLT_EPILOGUE_RELU_BIAS:
    case CUBLASLT_EPILOGUE_GELU:
    case CUBLASLT_EPILOGUE_GELU_BIAS:
        return true;
    default:
        return false;
    }
}

const char* type_name(uint32_t type) {
    switch (type) {
    case CUDA_R_32F:
        return "CUDA_R_32F";
    case CUDA_R_16BF:
        return "CUDA_R_16BF";
    case CUDA_R_16F:
        return "CUDA_R_16F";
    case CUDA_R_64F:
        return "CUDA_R_64F";
    default:
        return "an unsupported cudaDataType";
    }
}

cublasStatus_t resolve_operand(const char* function, char name, const Layout* layout, Operand& operand) {
    if (layout == nullptr || layout->tag != kLayoutTag) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "layout of %c is null or not a matrix layout", name);
    }
    if (layout->type != CUDA_R_32F && layout->type != CUDA_R_16BF) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "%c: element type %s (%u); this library has CUDA_R_32F and "
                    "CUDA_R_16BF", name, type_name(layout->type), layout->type);
    }
    if (layout->order != CUBLASLT_ORDER_COL && layout->order != CUBLASLT_ORDER_ROW) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "%c: order %d (only COL and ROW)", name, layout->order);
    }
    if (layout->plane_offset != 0) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "%c: a plane offset is for planar complex types", name);
    }
    constexpr uint64_t kMaxExtent = std::numeric_limits<int32_t>::max();
    if (layout->rows > kMaxExtent || layout->cols > kMaxExtent) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "%c: %llu×%llu exceeds int32 extents", name,
                    static_cast<unsigned long long>(layout->rows), static_cast<unsigned long long>(layout->cols));
    }
    if (layout->ld < 0) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "%c: negative leading dimension %lld", name,
                    static_cast<long long>(layout->ld));
    }
    // ld spans a column (COL) or a row (ROW) and must hold it: ld ≥ rows, or ld ≥ cols; and ≥ 1.
    const bool column_major = layout->order == CUBLASLT_ORDER_COL;
    const uint64_t line = column_major ? layout->rows : layout->cols;
    if (static_cast<uint64_t>(layout->ld) < std::max<uint64_t>(line, 1)) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "%c: leading dimension %lld < %s %llu", name,
                    static_cast<long long>(layout->ld), column_major ? "rows" : "cols",
                    static_cast<unsigned long long>(line));
    }
    if (layout->batch_count < 1) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "%c: batch count %d < 1", name, layout->batch_count);
    }
    operand.layout = layout;
    operand.type = layout->type;
    operand.bytes = element_size(layout->type);
    operand.rows = layout->rows;
    operand.cols = layout->cols;
    operand.row_step = column_major ? 1 : layout->ld;
    operand.col_step = column_major ? layout->ld : 1;
    operand.batch_stride = layout->batch_stride;
    return CUBLAS_STATUS_SUCCESS;
}

// Everything cublasLtMatmulAlgoGetHeuristic and cublasLtMatmul both check: the handle and descriptors,
// then the features asked for, then shapes and types. On success, problem describes the work.
cublasStatus_t describe(const char* function, cublasLtHandle_t handle, const MatmulDesc* desc, const Layout* a,
                        const Layout* b, const Layout* c, const Layout* d, Problem& problem) {
    if (handle == nullptr || handle->tag != kHandleTag) {
        return fail(CUBLAS_STATUS_NOT_INITIALIZED, function, "the handle is null or not from cublasLtCreate");
    }
    if (desc == nullptr || desc->tag != kMatmulDescTag) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "the matmul descriptor is null or not a matmul descriptor");
    }
    cublasStatus_t status;
    if ((status = resolve_operand(function, 'A', a, problem.a)) != CUBLAS_STATUS_SUCCESS ||
        (status = resolve_operand(function, 'B', b, problem.b)) != CUBLAS_STATUS_SUCCESS ||
        (status = resolve_operand(function, 'C', c, problem.c)) != CUBLAS_STATUS_SUCCESS ||
        (status = resolve_operand(function, 'D', d, problem.d)) != CUBLAS_STATUS_SUCCESS) {
        return status;
    }

    // Compute and scale types: the fp32-accumulating family, with alpha and beta in fp32.
    switch (desc->compute_type) {
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
        problem.rounding = InputRounding::exact;
        break;
    case CUBLAS_COMPUTE_32F_FAST_16BF:
        problem.rounding = InputRounding::bf16;
        break;
    case CUBLAS_COMPUTE_32F_FAST_TF32:
        problem.rounding = InputRounding::tf32;
        break;
    default:
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "compute type %d (this library has CUBLAS_COMPUTE_32F, "
                    "_PEDANTIC, _FAST_16BF and _FAST_TF32)", desc->compute_type);
    }
    if (desc->scale_type != CUDA_R_32F) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "scale type %d with compute type %d (needs CUDA_R_32F)",
                    desc->scale_type, desc->compute_type);
    }
    if (desc->pointer_mode != CUBLASLT_POINTER_MODE_HOST && desc->pointer_mode != CUBLASLT_POINTER_MODE_DEVICE) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "pointer mode %d (only HOST and DEVICE scalars)",
                    desc->pointer_mode);
    }

    // Operations: OP_C is OP_T for real types; C is never transposed; the whole matrix is computed.
    for (int32_t operation : {desc->transa, desc->transb, desc->transc}) {
        if (operation != CUBLAS_OP_N && operation != CUBLAS_OP_T && operation != CUBLAS_OP_C) {
            return fail(CUBLAS_STATUS_INVALID_VALUE, function, "operation %d is not a cublasOperation_t", operation);
        }
    }
    if (desc->transc != CUBLAS_OP_N) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "TRANSC must be CUBLAS_OP_N");
    }
    if (desc->fill_mode != CUBLAS_FILL_MODE_FULL) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "fill mode %d (only CUBLAS_FILL_MODE_FULL)",
                    desc->fill_mode);
    }

    // Epilogue and the FP8-only extras.
    if (!is_supported_epilogue(desc->epilogue)) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "epilogue %u (this library has DEFAULT, RELU, BIAS, "
                    "RELU_BIAS, GELU, GELU_BIAS)", desc->epilogue);
    }
    if (desc->a_scale || desc->b_scale || desc->c_scale || desc->d_scale || desc->amax_d || desc->aux_scale ||
        desc->aux_amax) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "scale and amax pointers are for FP8 matmuls");
    }
    problem.epilogue = desc->epilogue;
    problem.has_bias = (desc->epilogue & CUBLASLT_EPILOGUE_BIAS) != 0;
    problem.relu = (desc->epilogue & CUBLASLT_EPILOGUE_RELU) != 0;
    problem.gelu = (desc->epilogue & CUBLASLT_EPILOGUE_GELU) != 0;

    // Shapes: D is m×n, op(A) m×k, op(B) k×n, C like D.
    problem.transpose_a = desc->transa != CUBLAS_OP_N;
    problem.transpose_b = desc->transb != CUBLAS_OP_N;
    const Operand &oa = problem.a, &ob = problem.b, &oc = problem.c, &od = problem.d;
    problem.m = static_cast<int64_t>(od.rows);
    problem.n = static_cast<int64_t>(od.cols);
    const uint64_t a_rows = problem.transpose_a ? oa.cols : oa.rows, a_cols = problem.transpose_a ? oa.rows : oa.cols;
    const uint64_t b_rows = problem.transpose_b ? ob.cols : ob.rows, b_cols = problem.transpose_b ? ob.rows : ob.cols;
    problem.k = static_cast<int64_t>(a_cols);
    if (a_rows != od.rows || b_rows != a_cols || b_cols != od.cols || oc.rows != od.rows || oc.cols != od.cols) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "shapes do not chain: op(A) %llu×%llu, op(B) %llu×%llu, "
                    "C %llu×%llu, D %llu×%llu", (unsigned long long)a_rows, (unsigned long long)a_cols,
                    (unsigned long long)b_rows, (unsigned long long)b_cols, (unsigned long long)oc.rows,
                    (unsigned long long)oc.cols, (unsigned long long)od.rows, (unsigned long long)od.cols);
    }
    const int32_t batch = od.layout->batch_count;
    if (oa.layout->batch_count != batch || ob.layout->batch_count != batch || oc.layout->batch_count != batch) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "batch counts differ: A %d, B %d, C %d, D %d",
                    oa.layout->batch_count, ob.layout->batch_count, oc.layout->batch_count, batch);
    }
    problem.batch = batch;

    // Types (cublasLtMatmul's table of regular, non-FP8 combinations this library implements):
    //   32F / 32F_PEDANTIC:        A = B = 16BF, C = D ∈ {16BF, 32F};  A = B = C = D = 32F
    //   32F_FAST_16BF / FAST_TF32: A = B = C = D = 32F
    const bool fast = problem.rounding != InputRounding::exact;
    const bool types_ok = oa.type == ob.type && oc.type == od.type &&
                          (oa.type == CUDA_R_32F ? od.type == CUDA_R_32F : !fast);
    if (!types_ok) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "no kernel for A %s, B %s, C %s, D %s with compute type %d",
                    type_name(oa.type), type_name(ob.type), type_name(oc.type), type_name(od.type), desc->compute_type);
    }
    if (problem.has_bias) {
        problem.bias_type = desc->bias_data_type == -1 ? od.type : static_cast<uint32_t>(desc->bias_data_type);
        if (problem.bias_type != CUDA_R_32F && problem.bias_type != CUDA_R_16BF) {
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "bias type %d (CUDA_R_32F or CUDA_R_16BF)",
                        desc->bias_data_type);
        }
    }
    return CUBLAS_STATUS_SUCCESS;
}

// ---- algorithms --------------------------------------------------------------------------------------

// The byte alignment a kernel for this operand may assume: what the caller promised (the preference),
// at most one widest access, and no more than every column (or row) and batch entry start keeps.
uint32_t assumed_alignment(const Operand& operand, uint32_t promised) {
    uint64_t alignment = power_of_two_dividing(promised, kWidestAccessBytes);
    const uint64_t lines = operand.layout->order == CUBLASLT_ORDER_COL ? operand.cols : operand.rows;
    if (lines > 1) {
        alignment = std::min(alignment, power_of_two_dividing(operand.layout->ld * operand.bytes, alignment));
    }
    if (operand.layout->batch_count > 1 && operand.batch_stride != 0) {
        const uint64_t stride_bytes = static_cast<uint64_t>(std::llabs(operand.batch_stride)) * operand.bytes;
        alignment = std::min(alignment, power_of_two_dividing(stride_bytes, alignment));
    }
    return static_cast<uint32_t>(alignment);
}

// data[1]: compute type, scale type, A, B, C, D types and the epilogue, 8 bits each (all fit);
// data[2]: assumed alignments of A, B, C, D, 16 bits each.
uint64_t algo_signature(const MatmulDesc* desc, const Problem& problem) {
    const uint64_t fields[] = {static_cast<uint32_t>(desc->compute_type), static_cast<uint32_t>(desc->scale_type),
                               problem.a.type, problem.b.type, problem.c.type, problem.d.type, problem.epilogue};
    uint64_t signature = 0;
    for (uint64_t field : fields) {
        signature = (signature << 8) | (field & 0xff);
    }
    return signature;
}

uint32_t algo_alignment(const cublasLtMatmulAlgo_t& algo, int operand) {
    return static_cast<uint32_t>((algo.data[2] >> (16 * operand)) & 0xffff);
}

bool is_aligned(const void* pointer, uint64_t alignment) {
    return reinterpret_cast<uintptr_t>(pointer) % alignment == 0;
}

// ---- the matmul --------------------------------------------------------------------------------------

template <typename Element>
float load(const char* base, int64_t index);

template <>
float load<float>(const char* base, int64_t index) {
    float value;
    std::memcpy(&value, base + index * 4, sizeof value);
    return value;
}

template <>
float load<uint16_t>(const char* base, int64_t index) {
    uint16_t value;
    std::memcpy(&value, base + index * 2, sizeof value);
    return bf16_to_float(value);
}

// panel[r·panel_stride + c] = op(X)[row0 + r][col0 + c] in fp32, for r < rows, c < cols, where op(X) is X
// or its transpose and X is one batch entry at base. One of the two steps is 1 (the layout is COL or
// ROW); the inner loop runs along that one.
template <typename Element>
void load_panel_typed(const Operand& x, const char* base, bool transpose, int64_t row0, int64_t rows, int64_t col0,
                      int64_t cols, InputRounding rounding, float* panel, int64_t panel_stride) {
    const int64_t row_step = transpose ? x.col_step : x.row_step;
    const int64_t col_step = transpose ? x.row_step : x.col_step;
    const int64_t origin = row0 * row_step + col0 * col_step;
    if (col_step == 1) {
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < cols; ++c) {
                panel[r * panel_stride + c] = round_input(load<Element>(base, origin + r * row_step + c), rounding);
            }
        }
    } else { // row_step == 1

        for (int64_t c = 0; c < cols; ++c) {
            for (int64_t r = 0; r < rows; ++r) {
                panel[r * panel_stride + c] = round_input(load<Element>(base, origin + r + c * col_step), rounding);
            }
        }
    }
}

void load_panel(const Operand& x, const char* base, bool transpose, int64_t row0, int64_t rows, int64_t col0,
                int64_t cols, InputRounding rounding, float* panel, int64_t panel_stride) {
    if (x.type == CUDA_R_32F) {
        load_panel_typed<float>(x, base, transpose, row0, rows, col0, cols, rounding, panel, panel_stride);
    } else {
        load_panel_typed<uint16_t>(x, base, transpose, row0, rows, col0, cols, rounding, panel, panel_stride);
    }
}

// accumulator[j] += a · b_row[j] for j < n. Unrolled by eight so the compiler keeps it in vector
// registers; every j is independent, so the result is the same as the plain loop's.
void accumulate_row(float* __restrict accumulator, const float* __restrict b_row, float a, int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        accumulator[j + 0] += a * b_row[j + 0];
        accumulator[j + 1] += a * b_row[j + 1];
        accumulator[j + 2] += a * b_row[j + 2];
        accumulator[j + 3] += a * b_row[j + 3];
        accumulator[j + 4] += a * b_row[j + 4];
        accumulator[j + 5] += a * b_row[j + 5];
        accumulator[j + 6] += a * b_row[j + 6];
        accumulator[j + 7] += a * b_row[j + 7];
    }
    for (; j < n; ++j) {
        accumulator[j] += a * b_row[j];
    }
}

// One batch entry. accumulator (m×n, row-major) = op(A)·op(B) in fp32, summed over k in order: k is
// walked in panels of kPanel so a panel of op(B) (kPanel×n) stays in cache while every row of op(A)
// streams past it.
void multiply(const Problem& problem, const char* a, const char* b, float* accumulator, float* a_panel,
              float* b_panel) {
    const int64_t m = problem.m, n = problem.n, k = problem.k;
    std::fill(accumulator, accumulator + m * n, 0.0f);
    for (int64_t p0 = 0; p0 < k; p0 += kPanel) {
        const int64_t depth = std::min(kPanel, k - p0);
        load_panel(problem.a, a, problem.transpose_a, 0, m, p0, depth, problem.rounding, a_panel, depth);
        load_panel(problem.b, b, problem.transpose_b, p0, depth, 0, n, problem.rounding, b_panel, n);
        for (int64_t i = 0; i < m; ++i) {
            float* row = accumulator + i * n;
            const float* a_row = a_panel + i * depth;
            for (int64_t p = 0; p < depth; ++p) {
                accumulate_row(row, b_panel + p * n, a_row[p], n);
            }
        }
    }
}

// D = epilogue(alpha·accumulator + beta·C + bias), element by element (so C may be D).
void finish(const Problem& problem, const float* accumulator, float alpha, float beta, const char* c, char* d,
            const char* bias) {
    const Operand &oc = problem.c, &od = problem.d;
    for (int64_t i = 0; i < problem.m; ++i) {
        float bias_value = 0.0f;
        if (problem.has_bias) {
            bias_value = problem.bias_type == CUDA_R_32F ? load<float>(bias, i) : load<uint16_t>(bias, i);
        }
        for (int64_t j = 0; j < problem.n; ++j) {
            float value = alpha * accumulator[i * problem.n + j];
            if (beta != 0.0f) {
                const int64_t at = i * oc.row_step + j * oc.col_step;
                value += beta * (oc.type == CUDA_R_32F ? load<float>(c, at) : load<uint16_t>(c, at));
            }
            value += bias_value;
            if (problem.relu) {
                value = std::fmax(value, 0.0f); // max(x, 0) with fmaxf semantics: NaN becomes 0
            } else if (problem.gelu) {
                value = gelu_tanh(value);
            }
            const int64_t at = i * od.row_step + j * od.col_step;
            if (od.type == CUDA_R_32F) {
                std::memcpy(d + at * 4, &value, sizeof value);
            } else {
                const uint16_t half = float_to_bf16(value);
                std::memcpy(d + at * 2, &half, sizeof half);
            }
        }
    }
}

} // namespace

// ---- exported API ------------------------------------------------------------------------------------

// The test switches described at the top of this file; 0 when set, -1 for an unknown name.
LT_API int lrm_emu_cublaslt_set(const char* name, long long value) {
    if (name == nullptr) {
        return -1;
    }
    Switches& s = switches();
    std::lock_guard<std::mutex> guard(s.lock);
    if (std::strcmp(name, "no_algorithm") == 0) {
        s.no_algorithm = value != 0;
        return 0;
    }
    if (std::strncmp(name, "fail_next:", 10) == 0) {
        if (value == 0) {
            s.fail_next.erase(name + 10);
        } else {
            s.fail_next[name + 10] = static_cast<int>(value);
        }
        return 0;
    }
    return -1;
}

LT_API long long lrm_emu_cublaslt_get(const char* name) {
    if (name == nullptr) {
        return -1;
    }
    Switches& s = switches();
    std::lock_guard<std::mutex> guard(s.lock);
    if (std::strcmp(name, "no_algorithm") == 0) {
        return s.no_algorithm ? 1 : 0;
    }
    if (std::strcmp(name, "live_handles") == 0) {
        return s.live_handles;
    }
    if (std::strcmp(name, "live_objects") == 0) {
        return s.live_objects;
    }
    if (std::strcmp(name, "heuristic_calls") == 0) {
        return s.heuristic_calls;
    }
    return -1;
}

LT_API size_t cublasLtGetVersion(void) { return kVersion; }

LT_API const char* cublasLtGetStatusName(cublasStatus_t status) {
    for (const StatusText& entry : kStatusTexts) {
        if (entry.status == status) {
            return entry.name;
        }
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

LT_API const char* cublasLtGetStatusString(cublasStatus_t status) {
    for (const StatusText& entry : kStatusTexts) {
        if (entry.status == status) {
            return entry.text;
        }
    }
    return "unknown error";
}

LT_API cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
    if (handle == nullptr) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, __func__, "the handle pointer is null");
    }
    if (const cublasStatus_t failure = injected(__func__); failure != CUBLAS_STATUS_SUCCESS) {
        return failure;
    }
    *handle = new (std::nothrow) cublasLtContext{kHandleTag};
    if (*handle == nullptr) {
        return CUBLAS_STATUS_ALLOC_FAILED;
    }
    count(&Switches::live_handles, 1);
    return CUBLAS_STATUS_SUCCESS;
}

LT_API cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
    if (handle == nullptr) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, __func__, "the handle is null");
    }
    if (handle->tag != kHandleTag) {
        return fail(CUBLAS_STATUS_NOT_INITIALIZED, __func__, "not a live handle (destroyed twice?)");
    }
    handle->tag = 0;
    delete handle;
    count(&Switches::live_handles, -1);
    return CUBLAS_STATUS_SUCCESS;
}

LT_API cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* matmul_desc, cublasComputeType_t compute_type,
                                               cudaDataType_t scale_type) {
    if (matmul_desc == nullptr) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, __func__, "the descriptor pointer is null");
    }
    MatmulDesc* desc = new (std::nothrow) MatmulDesc{};
    if (desc == nullptr) {
        return CUBLAS_STATUS_ALLOC_FAILED;
    }
    desc->tag = kMatmulDescTag;
    desc->compute_type = compute_type; // checked when used, as in the real library
    desc->scale_type = scale_type;
    *matmul_desc = desc;
    count(&Switches::live_objects, 1);
    return CUBLAS_STATUS_SUCCESS;
}

LT_API cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmul_desc) {
    return destroy(__func__, matmul_desc, kMatmulDescTag);
}

LT_API cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmul_desc,
                                                     cublasLtMatmulDescAttributes_t attribute, const void* buffer,
                                                     size_t size_in_bytes) {
    return set_attribute(__func__, matmul_desc, kMatmulDescTag, kMatmulDescSlots, attribute, buffer, size_in_bytes);
}

LT_API cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* matrix_layout, cudaDataType type,
                                                 uint64_t rows, uint64_t cols, int64_t ld) {
    if (matrix_layout == nullptr) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, __func__, "the layout pointer is null");
    }
    Layout* layout = new (std::nothrow) Layout{};
    if (layout == nullptr) {
        return CUBLAS_STATUS_ALLOC_FAILED;
    }
    layout->tag = kLayoutTag;
    layout->type = type; // type, extents and ld are checked when used
    layout->rows = rows;
    layout->cols = cols;
    layout->ld = ld;
    *matrix_layout = layout;
    count(&Switches::live_objects, 1);
    return CUBLAS_STATUS_SUCCESS;
}

LT_API cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matrix_layout) {
    return destroy(__func__, matrix_layout, kLayoutTag);
}

LT_API cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t matrix_layout,
                                                       cublasLtMatrixLayoutAttribute_t attribute, const void* buffer,
                                                       size_t size_in_bytes) {
    return set_attribute(__func__, matrix_layout, kLayoutTag, kLayoutSlots, attribute, buffer, size_in_bytes);
}

LT_API cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* preference) {
    if (preference == nullptr) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, __func__, "the preference pointer is null");
    }
    Preference* created = new (std::nothrow) Preference{};
    if (created == nullptr) {
        return CUBLAS_STATUS_ALLOC_FAILED;
    }
    created->tag = kPreferenceTag;
    *preference = created;
    count(&Switches::live_objects, 1);
    return CUBLAS_STATUS_SUCCESS;
}

LT_API cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t preference) {
    return destroy(__func__, preference, kPreferenceTag);
}

LT_API cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t preference,
                                                           cublasLtMatmulPreferenceAttributes_t attribute,
                                                           const void* buffer, size_t size_in_bytes) {
    return set_attribute(__func__, preference, kPreferenceTag, kPreferenceSlots, attribute, buffer, size_in_bytes);
}

// One algorithm (no workspace, state SUCCESS) for any problem this library can run; NOT_SUPPORTED and
// no result for one it cannot; INVALID_VALUE for arguments that are wrong in themselves.
LT_API cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t operation_desc,
                                                     cublasLtMatrixLayout_t a_desc, cublasLtMatrixLayout_t b_desc,
                                                     cublasLtMatrixLayout_t c_desc, cublasLtMatrixLayout_t d_desc,
                                                     cublasLtMatmulPreference_t preference, int requested_algo_count,
                                                     cublasLtMatmulHeuristicResult_t heuristic_results_array[],
                                                     int* return_algo_count) {
    const char* function = __func__;
    count(&Switches::heuristic_calls, 1);
    if (return_algo_count != nullptr) {
        *return_algo_count = 0;
    }
    if (return_algo_count == nullptr || heuristic_results_array == nullptr || requested_algo_count <= 0) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "results %p, count %p, requested %d",
                    static_cast<void*>(heuristic_results_array), static_cast<void*>(return_algo_count),
                    requested_algo_count);
    }
    if (const cublasStatus_t failure = injected(function); failure != CUBLAS_STATUS_SUCCESS) {
        return failure;
    }
    Problem problem{};
    const cublasStatus_t status = describe(function, handle, operation_desc, a_desc, b_desc, c_desc, d_desc, problem);
    if (status != CUBLAS_STATUS_SUCCESS) {
        return status;
    }
    if (preference == nullptr || preference->tag != kPreferenceTag) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "the preference is null or not a matmul preference");
    }
    if (preference->search_mode != CUBLASLT_SEARCH_BEST_FIT) {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "search mode %u (only CUBLASLT_SEARCH_BEST_FIT)",
                    preference->search_mode);
    }
    // A promise of less than one element's alignment leaves no kernel that can read the matrix.
    const Operand* operands[] = {&problem.a, &problem.b, &problem.c, &problem.d};
    const uint32_t promised[] = {preference->min_alignment_a, preference->min_alignment_b, preference->min_alignment_c,
                                 preference->min_alignment_d};
    uint64_t alignments = 0;
    for (int i = 0; i < 4; ++i) {
        if (promised[i] < operands[i]->bytes) {
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, function, "%c: minimum alignment %u bytes is less than an element",
                        "ABCD"[i], promised[i]);
        }
        alignments |= static_cast<uint64_t>(assumed_alignment(*operands[i], promised[i])) << (16 * i);
    }
    {
        Switches& s = switches();
        std::lock_guard<std::mutex> guard(s.lock);
        if (s.no_algorithm) {
            return CUBLAS_STATUS_SUCCESS; // zero results
        }
    }

    cublasLtMatmulHeuristicResult_t& result = heuristic_results_array[0];
    std::memset(&result, 0, sizeof result);
    result.algo.data[0] = kAlgoTag;
    result.algo.data[1] = algo_signature(operation_desc, problem);
    result.algo.data[2] = alignments;
    result.workspaceSize = 0;
    result.state = CUBLAS_STATUS_SUCCESS;
    result.wavesCount = 1.0f;
    *return_algo_count = 1;
    return CUBLAS_STATUS_SUCCESS;
}

LT_API cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t compute_desc, const void* alpha,
                                     const void* a, cublasLtMatrixLayout_t a_desc, const void* b,
                                     cublasLtMatrixLayout_t b_desc, const void* beta, const void* c,
                                     cublasLtMatrixLayout_t c_desc, void* d, cublasLtMatrixLayout_t d_desc,
                                     const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_size_in_bytes,
                                     cudaStream_t stream) {
    (void)workspace; // the emulated kernels need none (the heuristic reports workspaceSize 0)
    (void)workspace_size_in_bytes;
    (void)stream; // synchronous: the result is in d on return
    const char* function = __func__;
    if (const cublasStatus_t failure = injected(function); failure != CUBLAS_STATUS_SUCCESS) {
        return failure;
    }
    if (driver_fault_pending()) {
        return fail(CUBLAS_STATUS_EXECUTION_FAILED, function, "a kernel fault broke the device's context");
    }
    Problem problem{};
    const cublasStatus_t status = describe(function, handle, compute_desc, a_desc, b_desc, c_desc, d_desc, problem);
    if (status != CUBLAS_STATUS_SUCCESS) {
        return status;
    }
    if (alpha == nullptr || beta == nullptr) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "alpha or beta is null");
    }
    float alpha_value, beta_value;
    std::memcpy(&alpha_value, alpha, sizeof alpha_value);
    std::memcpy(&beta_value, beta, sizeof beta_value);

    const bool empty = problem.m == 0 || problem.n == 0;
    const bool reads_c = beta_value != 0.0f;
    if (!empty && (d == nullptr || (problem.k > 0 && (a == nullptr || b == nullptr)) || (reads_c && c == nullptr))) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "null matrix pointer: A %p, B %p, C %p, D %p", a, b, c, d);
    }
    // In place (C == D) needs C and D laid out alike, or elements would be read after being written.
    if (reads_c && c == d &&
        (problem.c.row_step != problem.d.row_step || problem.c.col_step != problem.d.col_step ||
         problem.c.batch_stride != problem.d.batch_stride || problem.c.type != problem.d.type)) {
        return fail(CUBLAS_STATUS_INVALID_VALUE, function, "C and D are the same memory but laid out differently");
    }
    const Operand* operands[] = {&problem.a, &problem.b, &problem.c, &problem.d};
    const void* pointers[] = {a, b, reads_c ? c : nullptr, d};
    uint32_t required[4];
    if (algo != nullptr) {
        if (algo->data[0] != kAlgoTag) {
            return fail(CUBLAS_STATUS_INVALID_VALUE, function, "the algorithm is not from this library's heuristic");
        }
        if (algo->data[1] != algo_signature(compute_desc, problem)) {
            return fail(CUBLAS_STATUS_INVALID_VALUE, function, "the algorithm was found for other types or another "
                        "epilogue than this call's");
        }
        for (int i = 0; i < 4; ++i) {
            required[i] = algo_alignment(*algo, i);
        }
    } else {
        // No algorithm: the library picks one for these very pointers, so only element alignment matters.
        for (int i = 0; i < 4; ++i) {
            required[i] = static_cast<uint32_t>(operands[i]->bytes);
        }
    }
    for (int i = 0; i < 4; ++i) {
        if (pointers[i] != nullptr && !is_aligned(pointers[i], required[i])) {
            return fail(CUBLAS_STATUS_INVALID_VALUE, function, "%c at %p is not %u-byte aligned, as the algorithm "
                        "assumes (a GPU would fault with a misaligned address)", "ABCD"[i], pointers[i], required[i]);
        }
    }
    const char* bias = static_cast<const char*>(compute_desc->bias);
    if (problem.has_bias && !empty) {
        const size_t bias_bytes = element_size(problem.bias_type);
        if (bias == nullptr) {
            return fail(CUBLAS_STATUS_INVALID_VALUE, function, "the epilogue adds a bias but BIAS_POINTER is null");
        }
        if (!is_aligned(bias, bias_bytes)) {
            return fail(CUBLAS_STATUS_INVALID_VALUE, function, "bias at %p is not %zu-byte aligned", bias, bias_bytes);
        }
    }
    if (empty) {
        return CUBLAS_STATUS_SUCCESS;
    }

    // fp32 scratch: the accumulator (m×n) and one k-panel of op(A) (m×kPanel) and of op(B) (kPanel×n).
    const int64_t m = problem.m, n = problem.n, depth = std::min(problem.k, kPanel);
    std::unique_ptr<float[]> accumulator(new (std::nothrow) float[m * n]);
    std::unique_ptr<float[]> a_panel(new (std::nothrow) float[std::max<int64_t>(m * depth, 1)]);
    std::unique_ptr<float[]> b_panel(new (std::nothrow) float[std::max<int64_t>(depth * n, 1)]);
    if (!accumulator || !a_panel || !b_panel) {
        return fail(CUBLAS_STATUS_ALLOC_FAILED, function, "out of host memory for the fp32 scratch of a %lld×%lld "
                    "product", static_cast<long long>(m), static_cast<long long>(n));
    }
    for (int64_t entry = 0; entry < problem.batch; ++entry) {
        const auto at = [entry](const void* base, const Operand& operand) {
            return static_cast<const char*>(base) + entry * operand.batch_stride * int64_t(operand.bytes);
        };
        multiply(problem, at(a, problem.a), at(b, problem.b), accumulator.get(), a_panel.get(), b_panel.get());
        const char* bias_entry = nullptr;
        if (problem.has_bias) {
            bias_entry = bias + entry * compute_desc->bias_batch_stride * int64_t(element_size(problem.bias_type));
        }
        finish(problem, accumulator.get(), alpha_value, beta_value, reads_c ? at(c, problem.c) : nullptr,
               const_cast<char*>(at(d, problem.d)), bias_entry);
    }
    return CUBLAS_STATUS_SUCCESS;
}
