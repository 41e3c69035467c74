/*
 * selftest.cpp — checks the CUDA emulator itself, through the same driver and NVRTC calls the CUDA
 * backend makes, with small kernels whose results are known exactly:
 *   - shuffles (xor, idx, up with widths), ballot, popc and a block scan with barriers;
 *   - mma.sync m16n8k16 against a plain product, and ldmatrix (.x4, .trans) against the matrices;
 *   - cp.async: a read before cp.async.wait_group sees the old shared memory, after it the new;
 *   - a missing __syncthreads gives a wrong answer (the alternating thread order exposes it);
 *   - a __syncthreads skipped by some threads is a launch failure, not a hang;
 *   - a kernel writing to a wild address is CUDA_ERROR_ILLEGAL_ADDRESS, not a crash;
 *   - a block larger than the kernel's __launch_bounds__ is refused;
 *   - allocations past LRM_EMU_MEMORY_MB fail with CUDA_ERROR_OUT_OF_MEMORY and the device stays usable;
 *   - with the async_faults switch a fault is reported by the next call of any kind, as on a GPU;
 *   - fail_next:<function> makes one call fail; a call that needs a context fails without one;
 *   - a compile error comes back as NVRTC_ERROR_COMPILATION with the compiler's message in the log.
 * build.sh builds it next to the libraries; tests/LrmNative.Tests/CudaEmulatorTests.cs runs it with
 * LRM_EMU_SELFTEST_KERNELS naming a folder that holds kernels/lrm_prelude.cuh. Prints one line per
 * check and exits non-zero if any fails. LRM_EMU_NO_MEMFD=1 makes the driver load modules through
 * its temporary-file fallback.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
extern "C" {
CUresult cuInit(unsigned int);
CUresult cuDevicePrimaryCtxRetain(void**, int);
CUresult cuCtxSetCurrent(void*);
CUresult cuMemAlloc_v2(CUdeviceptr*, size_t);
CUresult cuMemFree_v2(CUdeviceptr);
CUresult cuMemGetInfo_v2(size_t*, size_t*);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr, const void*, size_t, void*);
CUresult cuMemcpyDtoHAsync_v2(void*, CUdeviceptr, size_t, void*);
CUresult cuModuleLoadData(void**, const void*);
CUresult cuModuleGetFunction(void**, void*, const char*);
CUresult cuFuncGetParamInfo(void*, size_t, size_t*, size_t*);
CUresult cuLaunchKernel(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void**, void**);
CUresult cuStreamSynchronize(void*);
int lrm_emu_driver_set(const char*, long long);
long long lrm_emu_driver_get(const char*);
int nvrtcCreateProgram(void**, const char*, const char*, int, const char* const*, const char* const*);
int nvrtcCompileProgram(void*, int, const char* const*);
int nvrtcGetProgramLogSize(void*, size_t*);
int nvrtcGetProgramLog(void*, char*);
int nvrtcGetCUBINSize(void*, size_t*);
int nvrtcGetCUBIN(void*, char*);
int nvrtcDestroyProgram(void**);
}

namespace {

int g_failures = 0;

void check(bool ok, const char* what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) g_failures++;
}

const char* kKernels = R"(
extern "C" __global__ void __launch_bounds__(64) shuffles(int* out) {
    const int lane = threadIdx.x & 31;
    int v = lane + 1;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);     /* 528 everywhere */
    const int from3 = __shfl_sync(0xffffffffu, lane * 10, 3, 8);                   /* lane 3 of each group of 8 */
    const int up = __shfl_up_sync(0xffffffffu, lane, 2);                           /* lane − 2, or lane below 2 */
    const unsigned int odd = __ballot_sync(0xffffffffu, lane & 1);
    out[threadIdx.x * 4 + 0] = v;
    out[threadIdx.x * 4 + 1] = from3;
    out[threadIdx.x * 4 + 2] = up;
    out[threadIdx.x * 4 + 3] = __popc(odd);
}

extern "C" __global__ void scan(int* out) {
    __shared__ int warp_totals[32];
    int total;
    const int prefix = lrm_block_exclusive_scan((int)threadIdx.x % 3, warp_totals, &total);
    out[threadIdx.x] = prefix;
    if (threadIdx.x == 0) out[blockDim.x] = total;
}

/* The 16×16 A (row) and 16×8 B (col) fragments from plain matrices; D = A·B. */
extern "C" __global__ void mma(float* d, const unsigned short* a, const unsigned short* b) {
    const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
    unsigned int fa[4];
    fa[0] = a[g * 16 + 2 * t] | (a[g * 16 + 2 * t + 1] << 16);
    fa[1] = a[(g + 8) * 16 + 2 * t] | (a[(g + 8) * 16 + 2 * t + 1] << 16);
    fa[2] = a[g * 16 + 2 * t + 8] | (a[g * 16 + 2 * t + 9] << 16);
    fa[3] = a[(g + 8) * 16 + 2 * t + 8] | (a[(g + 8) * 16 + 2 * t + 9] << 16);
    const unsigned int b0 = b[(2 * t) * 8 + g] | (b[(2 * t + 1) * 8 + g] << 16);
    const unsigned int b1 = b[(2 * t + 8) * 8 + g] | (b[(2 * t + 9) * 8 + g] << 16);
    float acc[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    lrm_emu::mma_bf16_16816(acc, fa, b0, b1);
    d[g * 8 + 2 * t] = acc[0];
    d[g * 8 + 2 * t + 1] = acc[1];
    d[(g + 8) * 8 + 2 * t] = acc[2];
    d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

/* Four 8×8 b16 matrices, row-major in `m` (matrix k at m + 64k); lane L gives row L%8 of matrix L/8. */
extern "C" __global__ void ldmatrix(unsigned int* out, const unsigned short* m, int transpose) {
    __shared__ unsigned short tile[4 * 64];
    for (int i = threadIdx.x; i < 256; i += 32) tile[i] = m[i];
    __syncthreads();
    const int lane = threadIdx.x;
    unsigned int r[4];
    lrm_emu::ldmatrix_x4(r, &tile[(lane / 8) * 64 + (lane % 8) * 8], transpose != 0);
    for (int k = 0; k < 4; ++k) out[lane * 4 + k] = r[k];
}

extern "C" __global__ void async_copies(int* out, const int* in) {
    __shared__ int buffer[4];
    buffer[threadIdx.x * 4 + 0] = -1;
    lrm_emu::async_copy(&buffer[0], in, 16);
    lrm_emu::async_commit();
    out[0] = buffer[0];          /* before the wait: still −1 */
    lrm_emu::async_wait(0);
    out[1] = buffer[3];          /* after: in[3] */
}

/* Thread i writes slot i, then reads slot (i + 1) % n — correct only with the barrier. */
extern "C" __global__ void neighbours(int* out, int with_barrier) {
    __shared__ int slots[64];
    slots[threadIdx.x] = (int)threadIdx.x * 7;
    if (with_barrier) __syncthreads();
    out[blockIdx.x * 64 + threadIdx.x] = slots[(threadIdx.x + 1) % 64];
}

extern "C" __global__ void wild_write(int* out) {
    if (threadIdx.x == 5) *(volatile int*)(unsigned long long)16 = 1; /* the address a freed or null pointer gives */
    out[threadIdx.x] = 1;
}

extern "C" __global__ void divergent_barrier(int* out) {
    if (threadIdx.x < 16) __syncthreads();
    else out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}
)";

void* g_module = nullptr;

void* kernel(const char* name) {
    void* function = nullptr;
    cuModuleGetFunction(&function, g_module, name);
    return function;
}

CUresult launch(const char* name, unsigned grid, unsigned block, std::vector<void*> arguments) {
    const CUresult launched = cuLaunchKernel(kernel(name), grid, 1, 1, block, 1, 1, 0, nullptr, arguments.data(), nullptr);
    return launched != 0 ? launched : cuStreamSynchronize(nullptr);
}

template <class T>
CUdeviceptr upload(const std::vector<T>& values) {
    CUdeviceptr pointer = 0;
    cuMemAlloc_v2(&pointer, values.size() * sizeof(T));
    cuMemcpyHtoDAsync_v2(pointer, values.data(), values.size() * sizeof(T), nullptr);
    return pointer;
}

template <class T>
std::vector<T> download(CUdeviceptr pointer, size_t count) {
    std::vector<T> values(count);
    cuMemcpyDtoHAsync_v2(values.data(), pointer, count * sizeof(T), nullptr);
    return values;
}

unsigned short bf16(float x) {
    unsigned int bits;
    memcpy(&bits, &x, 4);
    return (unsigned short)(bits >> 16); /* the test values are exact in bf16 */
}


} // namespace

int main() {
    void* context = nullptr;
    check(cuInit(0) == 0 && cuDevicePrimaryCtxRetain(&context, 0) == 0 && cuCtxSetCurrent(context) == 0, "driver initialises");

    /* The prelude's helpers the kernels above use live in kernels/lrm_prelude.cuh. */
    const char* prelude_text = "#include \"lrm_prelude.cuh\"\n";
    std::string source = std::string(prelude_text) + kKernels;
    std::string prelude_source;
    {
        const char* kernels_dir = getenv("LRM_EMU_SELFTEST_KERNELS");
        std::string path = std::string(kernels_dir ? kernels_dir : "kernels") + "/lrm_prelude.cuh";
        FILE* file = fopen(path.c_str(), "rb");
        if (!file) {
            printf("FAIL cannot read %s (set LRM_EMU_SELFTEST_KERNELS to the kernels folder)\n", path.c_str());
            return 1;
        }
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, file)) > 0) prelude_source.append(chunk, n);
        fclose(file);
    }
    const char* headers[] = {prelude_source.c_str()};
    const char* names[] = {"lrm_prelude.cuh"};
    void* program = nullptr;
    nvrtcCreateProgram(&program, source.c_str(), "selftest.cu", 1, headers, names);
    const char* options[] = {"--gpu-architecture=sm_90", "-std=c++17"};
    const int compiled = nvrtcCompileProgram(program, 2, options);
    if (compiled != 0) {
        size_t size = 0;
        nvrtcGetProgramLogSize(program, &size);
        std::string log(size, '\0');
        nvrtcGetProgramLog(program, &log[0]);
        printf("FAIL self-test kernels do not compile:\n%s\n", log.c_str());
        return 1;
    }
    size_t image_size = 0;
    nvrtcGetCUBINSize(program, &image_size);
    std::vector<char> image(image_size);
    nvrtcGetCUBIN(program, image.data());
    nvrtcDestroyProgram(&program);
    check(cuModuleLoadData(&g_module, image.data()) == 0, "module loads");

    size_t offset = 0, size = 0;
    check(cuFuncGetParamInfo(kernel("ldmatrix"), 2, &offset, &size) == 0 && offset == 16 && size == 4 &&
              cuFuncGetParamInfo(kernel("ldmatrix"), 3, &offset, &size) != 0,
          "parameter reflection: ldmatrix(unsigned*, const unsigned short*, int) has an int at offset 16 and 3 parameters");

    { /* shuffles, ballot, popc */
        CUdeviceptr out = upload(std::vector<int>(64 * 4, 0));
        check(launch("shuffles", 1, 64, {&out}) == 0, "shuffles run");
        const std::vector<int> got = download<int>(out, 64 * 4);
        bool ok = true;
        for (int i = 0; i < 64; ++i) {
            const int lane = i & 31;
            ok = ok && got[i * 4] == 528 && got[i * 4 + 1] == ((lane & ~7) + 3) * 10 && got[i * 4 + 2] == (lane >= 2 ? lane - 2 : lane) &&
                 got[i * 4 + 3] == 16;
        }
        check(ok, "__shfl_xor_sync butterfly sum, __shfl_sync with width 8, __shfl_up_sync, __ballot_sync/__popc");
        cuMemFree_v2(out);
    }
    { /* __launch_bounds__ */
        CUdeviceptr out = upload(std::vector<int>(128 * 4, 0));
        const CUresult launched = cuLaunchKernel(kernel("shuffles"), 1, 1, 1, 128, 1, 1, 0, nullptr, std::vector<void*>{&out}.data(), nullptr);
        check(launched == 701, "128 threads for a kernel with __launch_bounds__(64) is CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES");
        cuMemFree_v2(out);
    }
    { /* block scan: barriers and shuffles together */
        CUdeviceptr out = upload(std::vector<int>(257, 0));
        launch("scan", 1, 256, {&out});
        const std::vector<int> got = download<int>(out, 257);
        bool ok = true;
        int running = 0;
        for (int i = 0; i < 256; ++i) {
            ok = ok && got[i] == running;
            running += i % 3;
        }
        check(ok && got[256] == running, "lrm_block_exclusive_scan over 256 threads (8 warps)");
        cuMemFree_v2(out);
    }
    { /* mma.sync m16n8k16 */
        std::vector<unsigned short> a(256), b(128);
        std::vector<float> fa(256), fb(128);
        for (int i = 0; i < 256; ++i) fa[i] = (float)((i * 7) % 11 - 5) / 4.0f, a[i] = bf16(fa[i]);
        for (int i = 0; i < 128; ++i) fb[i] = (float)((i * 5) % 9 - 4) / 2.0f, b[i] = bf16(fb[i]);
        CUdeviceptr d = upload(std::vector<float>(128, 0.0f)), da = upload(a), db = upload(b);
        launch("mma", 1, 32, {&d, &da, &db});
        const std::vector<float> got = download<float>(d, 128);
        bool ok = true;
        for (int r = 0; r < 16; ++r)
            for (int c = 0; c < 8; ++c) {
                float want = 1.0f;
                for (int k = 0; k < 16; ++k) want += fa[r * 16 + k] * fb[k * 8 + c];
                ok = ok && fabsf(got[r * 8 + c] - want) < 1e-5f;
            }
        check(ok, "mma.sync m16n8k16 bf16: D = A·B + C by the PTX fragment layout");
        cuMemFree_v2(d), cuMemFree_v2(da), cuMemFree_v2(db);
    }
    for (int transpose = 0; transpose < 2; ++transpose) { /* ldmatrix */
        std::vector<unsigned short> m(256);
        for (int i = 0; i < 256; ++i) m[i] = (unsigned short)(i * 3 + 1);
        CUdeviceptr out = upload(std::vector<unsigned int>(128, 0)), dm = upload(m);
        launch("ldmatrix", 1, 32, {&out, &dm, &transpose});
        const std::vector<unsigned int> got = download<unsigned int>(out, 128);
        bool ok = true;
        for (int lane = 0; lane < 32; ++lane) {
            const int g = lane / 4, t = lane % 4;
            for (int k = 0; k < 4; ++k) {
                const unsigned short* matrix = &m[k * 64];
                const unsigned int low = transpose ? matrix[(2 * t) * 8 + g] : matrix[g * 8 + 2 * t];
                const unsigned int high = transpose ? matrix[(2 * t + 1) * 8 + g] : matrix[g * 8 + 2 * t + 1];
                ok = ok && got[lane * 4 + k] == (low | (high << 16));
            }
        }
        check(ok, transpose ? "ldmatrix.x4.trans gives the transposed 8×8 fragments" : "ldmatrix.x4 gives the 8×8 fragments");
        cuMemFree_v2(out), cuMemFree_v2(dm);
    }
    { /* cp.async lands at the wait */
        CUdeviceptr out = upload(std::vector<int>(2, 0)), in = upload(std::vector<int>{10, 11, 12, 13});
        launch("async_copies", 1, 1, {&out, &in});
        const std::vector<int> got = download<int>(out, 2);
        check(got[0] == -1 && got[1] == 13, "cp.async: shared memory is unchanged before cp.async.wait_group, copied after");
        cuMemFree_v2(out), cuMemFree_v2(in);
    }
    { /* missing barrier */
        int with_barrier = 1;
        CUdeviceptr out = upload(std::vector<int>(2 * 64, 0));
        launch("neighbours", 2, 64, {&out, &with_barrier});
        std::vector<int> got = download<int>(out, 128);
        bool ok = true;
        for (int i = 0; i < 128; ++i) ok = ok && got[i] == ((i % 64 + 1) % 64) * 7;
        check(ok, "shared memory written before a barrier is read after it");
        with_barrier = 0;
        launch("neighbours", 2, 64, {&out, &with_barrier});
        got = download<int>(out, 128);
        bool wrong = false;
        for (int i = 0; i < 128; ++i) wrong = wrong || got[i] != ((i % 64 + 1) % 64) * 7;
        check(wrong, "without the barrier the alternating thread order gives a wrong answer");
        cuMemFree_v2(out);
    }
    { /* a barrier some threads skip */
        CUdeviceptr out = upload(std::vector<int>(32 * 4, 0));
        const CUresult result = launch("divergent_barrier", 1, 32, {&out});
        check(result == 719, "a __syncthreads skipped by half the warp is CUDA_ERROR_LAUNCH_FAILED, not a hang");
        const CUresult after = launch("shuffles", 1, 32, {&out});
        check(after == 0 && download<int>(out, 1)[0] == 528, "the device runs the next launch correctly after a failed one");
        cuMemFree_v2(out);
    }
    { /* a fault */
        CUdeviceptr out = upload(std::vector<int>(32 * 4, 0));
        const CUresult result = launch("wild_write", 1, 32, {&out});
        check(result == 700, "a write to address 0x10 is CUDA_ERROR_ILLEGAL_ADDRESS, not a crash");
        const CUresult after = launch("shuffles", 1, 32, {&out});
        check(after == 0 && download<int>(out, 1)[0] == 528, "the device runs the next launch correctly after a fault");
        cuMemFree_v2(out);
    }
    { /* asynchronous faults: the next call of any kind reports the fault, once */
        CUdeviceptr out = upload(std::vector<int>(32 * 4, 0));
        check(lrm_emu_driver_set("async_faults", 1) == 0, "the async_faults switch exists");
        const CUresult launched = cuLaunchKernel(kernel("wild_write"), 1, 1, 1, 32, 1, 1, 0, nullptr, std::vector<void*>{&out}.data(), nullptr);
        const long long pending = lrm_emu_driver_get("pending_error");
        int value = 0;
        const CUresult copy = cuMemcpyHtoDAsync_v2(out, &value, sizeof value, nullptr);
        const CUresult after = launch("shuffles", 1, 32, {&out});
        lrm_emu_driver_set("async_faults", 0);
        check(launched == 0 && pending == 700 && copy == 700 && after == 0,
              "async_faults: the faulting launch succeeds, the next copy reports CUDA_ERROR_ILLEGAL_ADDRESS, then the device runs on");
        cuMemFree_v2(out);
    }
    { /* injected failures, a missing context */
        lrm_emu_driver_set("fail_next:cuMemAlloc_v2", 2);
        CUdeviceptr first = 0, second = 0;
        const CUresult failed = cuMemAlloc_v2(&first, 256);
        const CUresult worked = cuMemAlloc_v2(&second, 256);
        check(failed == 2 && worked == 0, "fail_next:cuMemAlloc_v2 = 2 fails the next allocation only");
        cuMemFree_v2(second);
        cuCtxSetCurrent(nullptr);
        CUdeviceptr none = 0;
        const CUresult without = cuMemAlloc_v2(&none, 256);
        cuCtxSetCurrent(context);
        check(without == 201, "an allocation without a current context is CUDA_ERROR_INVALID_CONTEXT");
    }
    { /* out of memory */
        size_t free_bytes = 0, total = 0;
        cuMemGetInfo_v2(&free_bytes, &total);
        CUdeviceptr huge = 0;
        const CUresult result = cuMemAlloc_v2(&huge, free_bytes + (1u << 20));
        CUdeviceptr small = 0;
        check(result == 2 && cuMemAlloc_v2(&small, 1024) == 0, "an allocation past the free memory is CUDA_ERROR_OUT_OF_MEMORY; a small one still works");
        cuMemFree_v2(small);
    }
    { /* compile errors */
        void* bad = nullptr;
        nvrtcCreateProgram(&bad, "extern \"C\" __global__ void broken(int* p) { p[0] = undefined_name; }", "broken.cu", 0, nullptr, nullptr);
        const int result = nvrtcCompileProgram(bad, 0, nullptr);
        size_t log_size = 0;
        nvrtcGetProgramLogSize(bad, &log_size);
        std::string log(log_size, '\0');
        nvrtcGetProgramLog(bad, &log[0]);
        check(result == 6 && log.find("undefined_name") != std::string::npos, "a compile error is NVRTC_ERROR_COMPILATION with the message in the log");
        nvrtcDestroyProgram(&bad);
    }
    printf("%d failed\n", g_failures);
    return g_failures == 0 ? 0 : 1;
}
