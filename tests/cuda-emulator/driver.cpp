/*
 * driver.cpp — the CUDA emulator's libcuda.so.1: the part of the CUDA driver API that
 * bindings/LrmNative.Interop/CudaDriver.cs declares, implemented on the CPU.
 *
 * One device, "LrmNative CUDA emulator (CPU)", compute capability 9.0 (so the CUDA backend takes
 * its Hopper paths), with LRM_EMU_MEMORY_MB of memory (default 4096): allocations past it fail
 * with CUDA_ERROR_OUT_OF_MEMORY, as a full GPU would. Device pointers are host pointers; fresh
 * allocations are filled with 0xFF bytes (NaN as floats), like the garbage a GPU returns. Streams
 * and events exist but every operation is synchronous. A module image is the emulator NVRTC's CUBIN: an
 * ELF file for EM_CUDA, as a real CUBIN is, whose one section holds a host shared library (nvrtc.cpp);
 * anything else (a real CUBIN, PTX) is CUDA_ERROR_INVALID_IMAGE. The library is loaded from a memfd, or
 * from a temporary file where executable memfds are forbidden.
 * A kernel runs when it is launched (lrm_emulate.h); a kernel that faults makes the next
 * synchronisation report CUDA_ERROR_ILLEGAL_ADDRESS, one that cannot finish (deadlock, a misused
 * collective) CUDA_ERROR_LAUNCH_FAILED, and the reason, with the kernel's name, goes to stderr.
 * Unlike a GPU, the context stays usable after either (the error is reported once).
 * Calls that need a current context (memory, copies, streams' work, events, modules, launches)
 * fail with CUDA_ERROR_INVALID_CONTEXT without one, as the driver's do.
 *
 * Switches for tests, each from an environment variable at cuInit or, in a running process, from
 * lrm_emu_driver_set(name, value) (lrm_emu_driver_get reads them back):
 *   async_faults (LRM_EMU_ASYNC_FAULTS=1): a kernel fault is reported by the next driver call of
 *       any kind (a launch, a copy, a memset, an allocation, an event), as a GPU's sticky error
 *       is, not only by the next synchronisation;
 *   fail_next:<function> (no variable): the next call of <function> returns that CUresult
 *       without doing anything (0 clears it), e.g. fail_next:cuMemAllocHost_v2 = 2;
 *   fail:<function> (no variable): every call of <function> does so, until cleared with 0.
 * lrm_emu_driver_get("pending_error") is the fault not yet reported, or 0.
 *
 * Build: tests/cuda-emulator/build.sh. Use: LRM_CUDA_LIBRARY=<dir>/libcuda.so.1 (and the NVRTC and
 * cuBLASLt of the same folder); see tests/cuda-emulator/README.md.
 */
#include <dlfcn.h>
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#define EXPORT extern "C" __attribute__((visibility("default")))

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

enum : int {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
    CUDA_ERROR_INVALID_PTX = 218,
    CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    CUDA_ERROR_LAUNCH_FAILED = 719,
    CUDA_ERROR_NOT_SUPPORTED = 801,
};

constexpr unsigned int kGridXLimit = 0x7fffffffu;

namespace {

struct ErrorText {
    int code;
    const char* name;
    const char* text;
};

const ErrorText kErrors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_NO_BINARY_FOR_GPU, "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
    {CUDA_ERROR_INVALID_PTX, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed (the emulator runs no PTX)"},
    {CUDA_ERROR_UNSUPPORTED_PTX_VERSION, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
    {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
};

const ErrorText* find_error(CUresult code) {
    for (const ErrorText& entry : kErrors) {
        if (entry.code == code) return &entry;
    }
    return nullptr;
}

constexpr int kOptinSharedBytes = 227 * 1024;
constexpr int kDefaultSharedBytes = 48 * 1024;

typedef int (*KernelCountFn)();
typedef const char* (*KernelNameFn)(int);
typedef int (*KernelMaxThreadsFn)(int);
typedef int (*KernelParameterFn)(int, int, size_t*, size_t*);
typedef const char* (*LaunchFn)(int, const unsigned int*, const unsigned int*, unsigned int, void**);

struct Module {
    void* library = nullptr;
    int memfd = -1;
    KernelNameFn name = nullptr;
    KernelMaxThreadsFn max_threads = nullptr;
    KernelParameterFn parameter = nullptr;
    LaunchFn launch = nullptr;
    std::unordered_map<std::string, struct Function*> functions;
};

struct Function {
    Module* module;
    int index;
    std::string name;
    int max_dynamic_shared = kDefaultSharedBytes;
};

struct Event {
    std::chrono::steady_clock::time_point time{};
    bool recorded = false;
};

struct State {
    std::mutex lock;
    bool initialised = false;
    size_t total = 0, used = 0;
    std::unordered_map<uintptr_t, size_t> allocations;
    int pending_error = CUDA_SUCCESS; /* reported by the next synchronisation (async_faults: the next call) */
    bool async_faults = false;
    std::unordered_map<std::string, int> fail_next; /* function -> CUresult of its next call */
    std::unordered_map<std::string, int> fail;      /* function -> CUresult of every call */
};

State& state() {
    static State instance;
    return instance;
}

thread_local void* t_context = nullptr;
int g_primary_context_tag = 0;
void* const kPrimaryContext = &g_primary_context_tag;

size_t total_memory() {
    const char* configured = getenv("LRM_EMU_MEMORY_MB");
    const long megabytes = configured && *configured ? atol(configured) : 4096;
    return (size_t)(megabytes > 0 ? megabytes : 4096) << 20;
}

CUresult allocate(CUdeviceptr* pointer, size_t bytes) {
    if (!pointer) return CUDA_ERROR_INVALID_VALUE;
    if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    State& s = state();
    std::lock_guard<std::mutex> guard(s.lock);
    if (!s.initialised) return CUDA_ERROR_NOT_INITIALIZED;
    const size_t rounded = (bytes + 255) / 256 * 256;
    if (s.used + rounded > s.total) return CUDA_ERROR_OUT_OF_MEMORY;
    void* memory = aligned_alloc(256, rounded);
    if (!memory) return CUDA_ERROR_OUT_OF_MEMORY;
    memset(memory, 0xff, rounded);
    s.used += rounded;
    s.allocations[(uintptr_t)memory] = rounded;
    *pointer = (CUdeviceptr)(uintptr_t)memory;
    return CUDA_SUCCESS;
}

CUresult release(CUdeviceptr pointer) {
    if (pointer == 0) return CUDA_SUCCESS;
    State& s = state();
    std::lock_guard<std::mutex> guard(s.lock);
    auto found = s.allocations.find((uintptr_t)pointer);
    if (found == s.allocations.end()) return CUDA_ERROR_INVALID_VALUE;
    s.used -= found->second;
    s.allocations.erase(found);
    free((void*)(uintptr_t)pointer);
    return CUDA_SUCCESS;
}

/* cuMemsetD16/D32: count elements of value, the destination aligned to the element. */
template <class T>
CUresult fill(CUdeviceptr destination, T value, size_t count) {
    if (count && (!destination || destination % sizeof(T))) return CUDA_ERROR_INVALID_VALUE;
    T* out = (T*)(uintptr_t)destination;
    for (size_t i = 0; i < count; ++i) out[i] = value;
    return CUDA_SUCCESS;
}

/*
 * The host shared library inside an emulator CUBIN (see nvrtc.cpp): an ELF64 file for EM_CUDA whose section 1 holds
 * it. False for anything else, a real CUBIN included (its sections hold GPU code).
 */
bool unwrap_module(const unsigned char* image, const unsigned char** library, size_t* size) {
    Elf64_Ehdr header;
    memcpy(&header, image, sizeof header);
    if (memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_machine != EM_CUDA ||
        header.e_shnum < 2 || header.e_shentsize != sizeof(Elf64_Shdr))
        return false;
    Elf64_Shdr section;
    memcpy(&section, image + header.e_shoff + sizeof(Elf64_Shdr), sizeof section);
    Elf64_Ehdr inner;
    if (section.sh_type != SHT_PROGBITS || section.sh_size < sizeof inner) return false;
    memcpy(&inner, image + section.sh_offset, sizeof inner);
    if (memcmp(inner.e_ident, ELFMAG, SELFMAG) != 0 || inner.e_machine == EM_CUDA) return false;
    *library = image + section.sh_offset;
    *size = section.sh_size;
    return true;
}

CUresult take_pending_error() {
    State& s = state();
    std::lock_guard<std::mutex> guard(s.lock);
    const CUresult error = s.pending_error;
    s.pending_error = CUDA_SUCCESS;
    return error;
}

/*
 * What every call that needs a context checks first: an injected failure (fail_next), a current
 * context, then (async_faults) a fault of an earlier launch, which the driver reports from any call.
 */
CUresult enter(const char* function) {
    State& s = state();
    std::lock_guard<std::mutex> guard(s.lock);
    auto injected = s.fail_next.find(function);
    if (injected != s.fail_next.end()) {
        const CUresult result = injected->second;
        s.fail_next.erase(injected);
        return result;
    }
    auto failing = s.fail.find(function);
    if (failing != s.fail.end()) return failing->second;
    if (!t_context) return CUDA_ERROR_INVALID_CONTEXT;
    if (s.async_faults && s.pending_error != CUDA_SUCCESS) {
        const CUresult error = s.pending_error;
        s.pending_error = CUDA_SUCCESS;
        return error;
    }
    return CUDA_SUCCESS;
}

#define LRM_EMU_ENTER()                                        \
    do {                                                       \
        const CUresult entered = enter(__func__);              \
        if (entered != CUDA_SUCCESS) return entered;           \
    } while (0)

} // namespace

/* ---- initialisation and devices --------------------------------------------------------------- */

EXPORT CUresult cuInit(unsigned int flags) {
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    State& s = state();
    std::lock_guard<std::mutex> guard(s.lock);
    if (!s.initialised) {
        s.total = total_memory();
        const char* async_faults = getenv("LRM_EMU_ASYNC_FAULTS");
        s.async_faults = async_faults && strcmp(async_faults, "1") == 0;
        s.initialised = true;
    }
    return CUDA_SUCCESS;
}

/* The test switches described at the top of this file; 0 when set, -1 for an unknown name. */
EXPORT int lrm_emu_driver_set(const char* name, long long value) {
    if (!name) return -1;
    State& s = state();
    std::lock_guard<std::mutex> guard(s.lock);
    if (strcmp(name, "async_faults") == 0) {
        s.async_faults = value != 0;
        return 0;
    }
    if (strncmp(name, "fail_next:", 10) == 0) {
        if (value == 0) s.fail_next.erase(name + 10);
        else s.fail_next[name + 10] = (int)value;
        return 0;
    }
    if (strncmp(name, "fail:", 5) == 0) {
        if (value == 0) s.fail.erase(name + 5);
        else s.fail[name + 5] = (int)value;
        return 0;
    }
    return -1;
}

EXPORT long long lrm_emu_driver_get(const char* name) {
    if (!name) return -1;
    State& s = state();
    std::lock_guard<std::mutex> guard(s.lock);
    if (strcmp(name, "async_faults") == 0) return s.async_faults ? 1 : 0;
    if (strcmp(name, "pending_error") == 0) return s.pending_error;
    return -1;
}

EXPORT CUresult cuDriverGetVersion(int* version) {
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = 12040;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetCount(int* count) {
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGet(int* device, int ordinal) {
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetName(char* name, int length, int device) {
    if (!name || length <= 0) return CUDA_ERROR_INVALID_VALUE;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    snprintf(name, (size_t)length, "%s", "LrmNative CUDA emulator (CPU)");
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, int device) {
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    *bytes = state().initialised ? state().total : total_memory();
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetAttribute(int* value, int attribute, int device) {
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    switch (attribute) {
    case 1: *value = 1024; break;                 /* max threads per block */
    case 8: *value = kDefaultSharedBytes; break;  /* max shared memory per block */
    case 10: *value = 32; break;                  /* warp size */
    case 13: *value = 1000000; break;             /* clock rate, kHz */
    case 16: *value = 4; break;                   /* multiprocessors: few, so grid-stride loops stay short */
    case 36: *value = 1000000; break;             /* memory clock, kHz */
    case 37: *value = 256; break;                 /* bus width, bits */
    case 38: *value = 4 << 20; break;             /* L2 bytes */
    case 75: *value = 9; break;                   /* compute capability */
    case 76: *value = 0; break;
    case 97: *value = kOptinSharedBytes; break;   /* opt-in shared memory per block */
    case 115: *value = 1; break;                  /* memory pools (cuMemAllocAsync) */
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGetErrorString(CUresult error, const char** text) {
    if (!text) return CUDA_ERROR_INVALID_VALUE;
    const ErrorText* entry = find_error(error);
    *text = entry ? entry->text : nullptr;
    return entry ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuGetErrorName(CUresult error, const char** text) {
    if (!text) return CUDA_ERROR_INVALID_VALUE;
    const ErrorText* entry = find_error(error);
    *text = entry ? entry->name : nullptr;
    return entry ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---- contexts --------------------------------------------------------------------------------- */

EXPORT CUresult cuDevicePrimaryCtxRetain(void** context, int device) {
    if (!context) return CUDA_ERROR_INVALID_VALUE;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!state().initialised) return CUDA_ERROR_NOT_INITIALIZED;
    *context = kPrimaryContext;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRelease_v2(int device) { return device == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE; }

EXPORT CUresult cuCtxPushCurrent_v2(void* context) {
    if (context != kPrimaryContext) return CUDA_ERROR_INVALID_CONTEXT;
    t_context = context;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxPopCurrent_v2(void** context) {
    if (context) *context = t_context;
    t_context = nullptr;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSetCurrent(void* context) {
    if (context && context != kPrimaryContext) return CUDA_ERROR_INVALID_CONTEXT;
    t_context = context;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetCurrent(void** context) {
    if (!context) return CUDA_ERROR_INVALID_VALUE;
    *context = t_context;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSynchronize() {
    LRM_EMU_ENTER();
    return take_pending_error();
}

/* ---- memory ----------------------------------------------------------------------------------- */

EXPORT CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes) {
    LRM_EMU_ENTER();
    State& s = state();
    std::lock_guard<std::mutex> guard(s.lock);
    if (!s.initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (free_bytes) *free_bytes = s.total - s.used;
    if (total_bytes) *total_bytes = s.total;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* pointer, size_t bytes) {
    LRM_EMU_ENTER();
    return allocate(pointer, bytes);
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr pointer) {
    LRM_EMU_ENTER();
    return release(pointer);
}

EXPORT CUresult cuMemAllocAsync(CUdeviceptr* pointer, size_t bytes, void*) {
    LRM_EMU_ENTER();
    return allocate(pointer, bytes);
}

EXPORT CUresult cuMemFreeAsync(CUdeviceptr pointer, void*) {
    LRM_EMU_ENTER();
    return release(pointer);
}

EXPORT CUresult cuMemAllocHost_v2(void** pointer, size_t bytes) {
    LRM_EMU_ENTER();
    if (!pointer || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    *pointer = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
    return *pointer ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

EXPORT CUresult cuMemFreeHost(void* pointer) {
    LRM_EMU_ENTER();
    free(pointer);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr destination, const void* source, size_t bytes, void*) {
    LRM_EMU_ENTER();
    if (bytes && (!destination || !source)) return CUDA_ERROR_INVALID_VALUE;
    memcpy((void*)(uintptr_t)destination, source, bytes);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyDtoHAsync_v2(void* destination, CUdeviceptr source, size_t bytes, void*) {
    LRM_EMU_ENTER();
    if (bytes && (!destination || !source)) return CUDA_ERROR_INVALID_VALUE;
    memcpy(destination, (const void*)(uintptr_t)source, bytes);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr destination, CUdeviceptr source, size_t bytes, void*) {
    LRM_EMU_ENTER();
    if (bytes && (!destination || !source)) return CUDA_ERROR_INVALID_VALUE;
    memmove((void*)(uintptr_t)destination, (const void*)(uintptr_t)source, bytes);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemsetD8Async(CUdeviceptr destination, unsigned char value, size_t count, void*) {
    LRM_EMU_ENTER();
    if (count && !destination) return CUDA_ERROR_INVALID_VALUE;
    memset((void*)(uintptr_t)destination, value, count);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemsetD16Async(CUdeviceptr destination, unsigned short value, size_t count, void*) {
    LRM_EMU_ENTER();
    return fill(destination, value, count);
}

EXPORT CUresult cuMemsetD32Async(CUdeviceptr destination, unsigned int value, size_t count, void*) {
    LRM_EMU_ENTER();
    return fill(destination, value, count);
}

/* ---- streams and events ----------------------------------------------------------------------- */

EXPORT CUresult cuStreamCreate(void** stream, unsigned int) {
    LRM_EMU_ENTER();
    if (!stream) return CUDA_ERROR_INVALID_VALUE;
    *stream = new int(0);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamDestroy_v2(void* stream) {
    delete static_cast<int*>(stream);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamSynchronize(void*) {
    LRM_EMU_ENTER();
    return take_pending_error();
}

EXPORT CUresult cuStreamQuery(void*) {
    LRM_EMU_ENTER();
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventCreate(void** event, unsigned int) {
    LRM_EMU_ENTER();
    if (!event) return CUDA_ERROR_INVALID_VALUE;
    *event = new Event();
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventDestroy_v2(void* event) {
    delete static_cast<Event*>(event);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventRecord(void* event, void*) {
    LRM_EMU_ENTER();
    if (!event) return CUDA_ERROR_INVALID_HANDLE;
    Event* e = static_cast<Event*>(event);
    e->time = std::chrono::steady_clock::now();
    e->recorded = true;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventSynchronize(void* event) {
    LRM_EMU_ENTER();
    return event ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

EXPORT CUresult cuEventElapsedTime(float* milliseconds, void* start, void* end) {
    LRM_EMU_ENTER();
    if (!milliseconds || !start || !end) return CUDA_ERROR_INVALID_VALUE;
    const Event* a = static_cast<const Event*>(start);
    const Event* b = static_cast<const Event*>(end);
    if (!a->recorded || !b->recorded) return CUDA_ERROR_INVALID_HANDLE;
    *milliseconds = std::chrono::duration<float, std::milli>(b->time - a->time).count();
    return CUDA_SUCCESS;
}

/* ---- modules and kernels ---------------------------------------------------------------------- */

EXPORT CUresult cuModuleLoadData(void** module, const void* image) {
    LRM_EMU_ENTER();
    if (!module || !image) return CUDA_ERROR_INVALID_VALUE;
    const unsigned char* cubin = static_cast<const unsigned char*>(image);
    if (memcmp(cubin, ELFMAG, SELFMAG) != 0) return CUDA_ERROR_INVALID_PTX; /* PTX text: the emulator runs only its own modules */
    const unsigned char* bytes = nullptr;
    size_t size = 0;
    if (!unwrap_module(cubin, &bytes, &size)) {
        fprintf(stderr, "lrm CUDA emulator: a module image that its NVRTC did not make (a GPU's CUBIN?)\n");
        return CUDA_ERROR_INVALID_IMAGE;
    }
    /* A memfd first (nothing on disk); where the kernel forbids executable memfds (vm.memfd_noexec),
     * a file in $TMPDIR, unlinked once loaded. */
    int fd = getenv("LRM_EMU_NO_MEMFD") ? -1 : memfd_create("lrm-emu-module", MFD_CLOEXEC); /* the variable tests the fallback */
    char path[4096];
    std::string file;
    if (fd >= 0) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    auto write_all = [&](int out) {
        size_t written = 0;
        while (written < size) {
            const ssize_t n = write(out, bytes + written, size - written);
            if (n <= 0) return false;
            written += (size_t)n;
        }
        return true;
    };
    void* library = nullptr;
    if (fd >= 0 && write_all(fd)) library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        if (fd >= 0) close(fd);
        const char* temp = getenv("TMPDIR");
        file = std::string(temp && *temp ? temp : "/tmp") + "/lrm-emu-module-XXXXXX";
        std::vector<char> name(file.begin(), file.end());
        name.push_back('\0');
        fd = mkstemp(name.data());
        if (fd < 0) return CUDA_ERROR_INVALID_IMAGE;
        file = name.data();
        if (write_all(fd)) library = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
        unlink(file.c_str());
    }
    if (!library) {
        fprintf(stderr, "lrm CUDA emulator: cannot load a module: %s\n", dlerror());
        close(fd);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    Module* result = new Module();
    result->library = library;
    result->memfd = fd;
    result->name = (KernelNameFn)dlsym(library, "lrm_emu_kernel_name");
    result->max_threads = (KernelMaxThreadsFn)dlsym(library, "lrm_emu_kernel_max_threads");
    result->parameter = (KernelParameterFn)dlsym(library, "lrm_emu_kernel_parameter");
    result->launch = (LaunchFn)dlsym(library, "lrm_emu_launch");
    if (!result->name || !result->max_threads || !result->parameter || !result->launch) {
        dlclose(library);
        close(fd);
        delete result;
        return CUDA_ERROR_INVALID_IMAGE;
    }
    *module = result;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleUnload(void* module) {
    if (!module) return CUDA_ERROR_INVALID_HANDLE;
    Module* m = static_cast<Module*>(module);
    for (auto& entry : m->functions) delete entry.second;
    dlclose(m->library);
    close(m->memfd);
    delete m;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleGetFunction(void** function, void* module, const char* name) {
    LRM_EMU_ENTER();
    if (!function || !module || !name) return CUDA_ERROR_INVALID_VALUE;
    Module* m = static_cast<Module*>(module);
    auto found = m->functions.find(name);
    if (found != m->functions.end()) {
        *function = found->second;
        return CUDA_SUCCESS;
    }
    for (int i = 0;; ++i) {
        const char* kernel = m->name(i);
        if (!kernel) return CUDA_ERROR_NOT_FOUND;
        if (strcmp(kernel, name) == 0) {
            Function* f = new Function{m, i, name};
            m->functions[name] = f;
            *function = f;
            return CUDA_SUCCESS;
        }
    }
}

EXPORT CUresult cuFuncGetAttribute(int* value, int attribute, void* function) {
    if (!value || !function) return CUDA_ERROR_INVALID_VALUE;
    const Function* f = static_cast<const Function*>(function);
    switch (attribute) {
    case 0: *value = f->module->max_threads(f->index); break; /* max threads per block: __launch_bounds__ */
    case 1: case 2: case 3: *value = 0; break;        /* static shared, const, local bytes: unknown here */
    case 4: *value = 32; break;                       /* registers */
    case 5: case 6: *value = 90; break;               /* PTX and binary version */
    case 7: *value = 0; break;
    case 8: *value = f->max_dynamic_shared; break;
    case 9: *value = -1; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuFuncSetAttribute(void* function, int attribute, int value) {
    if (!function) return CUDA_ERROR_INVALID_HANDLE;
    Function* f = static_cast<Function*>(function);
    if (attribute == 8) {
        if (value < 0 || value > kOptinSharedBytes) return CUDA_ERROR_INVALID_VALUE;
        f->max_dynamic_shared = value;
        return CUDA_SUCCESS;
    }
    return attribute == 9 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuFuncGetParamInfo(void* function, size_t index, size_t* offset, size_t* size) {
    if (!function || !offset || !size) return CUDA_ERROR_INVALID_VALUE;
    const Function* f = static_cast<const Function*>(function);
    return f->module->parameter(f->index, (int)index, offset, size) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuLaunchKernel(void* function, unsigned int grid_x, unsigned int grid_y, unsigned int grid_z,
                               unsigned int block_x, unsigned int block_y, unsigned int block_z, unsigned int shared_bytes,
                               void*, void** parameters, void** extra) {
    LRM_EMU_ENTER();
    if (!function) return CUDA_ERROR_INVALID_HANDLE;
    const Function* f = static_cast<const Function*>(function);
    if (extra) return CUDA_ERROR_NOT_SUPPORTED; /* the bindings pass kernelParams */
    if (grid_x == 0 || grid_y == 0 || grid_z == 0 || block_x == 0 || block_y == 0 || block_z == 0) return CUDA_ERROR_INVALID_VALUE;
    if (grid_x > kGridXLimit || grid_y > 65535 || grid_z > 65535 || block_x > 1024 || block_y > 1024 || block_z > 64)
        return CUDA_ERROR_INVALID_VALUE;
    if ((unsigned long long)block_x * block_y * block_z > 1024) return CUDA_ERROR_INVALID_VALUE;
    /* More threads than the kernel's __launch_bounds__: the driver refuses the launch. */
    if ((long long)block_x * block_y * block_z > f->module->max_threads(f->index)) return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    if ((int)shared_bytes > f->max_dynamic_shared) return CUDA_ERROR_INVALID_VALUE;
    size_t offset, size;
    if (f->module->parameter(f->index, 0, &offset, &size) == 0 && !parameters) return CUDA_ERROR_INVALID_VALUE;
    const unsigned int grid[3] = {grid_x, grid_y, grid_z};
    const unsigned int block[3] = {block_x, block_y, block_z};
    const char* failure = f->module->launch(f->index, grid, block, shared_bytes, parameters);
    if (failure) {
        fprintf(stderr, "lrm CUDA emulator: kernel '%s' grid (%u, %u, %u) block (%u, %u, %u) failed: %s\n", f->name.c_str(), grid_x,
                grid_y, grid_z, block_x, block_y, block_z, failure);
        State& s = state();
        std::lock_guard<std::mutex> guard(s.lock);
        s.pending_error = strstr(failure, "illegal memory access") ? CUDA_ERROR_ILLEGAL_ADDRESS : CUDA_ERROR_LAUNCH_FAILED;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, void* function, int block_size, size_t shared_bytes) {
    if (!blocks || !function || block_size <= 0 || block_size > 1024) return CUDA_ERROR_INVALID_VALUE;
    int by_threads = 2048 / block_size;
    const int by_shared = shared_bytes ? (int)(kOptinSharedBytes / shared_bytes) : 32;
    *blocks = by_threads < by_shared ? by_threads : by_shared;
    if (*blocks > 32) *blocks = 32;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuOccupancyMaxPotentialBlockSize(int* minimum_grid_size, int* block_size, void* function, void*,
                                                 size_t, int block_size_limit) {
    if (!minimum_grid_size || !block_size || !function) return CUDA_ERROR_INVALID_VALUE;
    int size = 256;
    if (block_size_limit > 0 && block_size_limit < size) size = block_size_limit;
    *block_size = size;
    *minimum_grid_size = 4 * (2048 / size);
    return CUDA_SUCCESS;
}
