// library.cpp — version, build and BLAS information, thread count.
//
// Thread count: every parallel region in the library passes num_threads(n) with
// the value held here, so lrm_set_num_threads applies to calls made from any host
// thread (omp_set_num_threads alone only sets the calling thread's ICV). The
// default is captured when the library is loaded (OMP_NUM_THREADS or the core
// count), lowered by lrm_limit_default_threads to a container's CPU quota (the C#
// loader passes .NET's Environment.ProcessorCount, which reads the cgroup limits
// OpenMP ignores) and restored by lrm_set_num_threads(n <= 0).
//
// OpenBLAS is switched to one thread when the library loads and stays there: our
// OpenMP threads call it on blocks of the product (gemm.hpp explains why two
// thread pools on the same cores are slower). This is process-wide, so other
// OpenBLAS users in the same process (numpy in a test script) become
// single-threaded too.
//
// lrm_build_info ends with "kernels: ...", the attention/MLP kernel build chosen
// for this CPU at run time: "avx512", or the baseline's SIMD level and why AVX-512
// is not used (cpu_dispatch.hpp; LRM_DISABLE_AVX512=1 forces the baseline).
#include "common.hpp"
#include "cpu_check.hpp"
#include "cpu_dispatch.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <cblas.h>
#include <omp.h>

#include <atomic>
#include <cstdio>
#include <string>

namespace lrm {

namespace {
// OMP_NUM_THREADS or the CPUs of the affinity mask; lrm_limit_default_threads may lower it
// (a container's CPU quota, which OpenMP does not see).
std::atomic<int> g_default_threads{omp_get_max_threads()};
std::atomic<int> g_threads{g_default_threads.load()};

// Runs when the library is loaded.
const bool g_blas_single_threaded = [] {
    openblas_set_num_threads(1);
    return true;
}();

constexpr int32_t kMaxThreads = 1024;

#define LRM_STRINGIFY_(x) #x
#define LRM_STRINGIFY(x) LRM_STRINGIFY_(x)

#if defined(__clang__)
#define LRM_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define LRM_COMPILER "gcc " __VERSION__
#else
#define LRM_COMPILER "unknown compiler"
#endif

#ifndef LRM_VERSION_STRING
#define LRM_VERSION_STRING "0.1.0"
#endif
#ifndef LRM_BUILD_TYPE
#define LRM_BUILD_TYPE "unknown"
#endif
#ifndef LRM_CPU_ARCH_FLAG
#define LRM_CPU_ARCH_FLAG ""
#endif

#if defined(__AVX512F__)
#define LRM_SIMD "avx512"
#elif defined(__AVX2__) && defined(__FMA__)
#define LRM_SIMD "avx2+fma"
#elif defined(__AVX__)
#define LRM_SIMD "avx"
#elif defined(__SSE2__)
#define LRM_SIMD "sse2"
#else
#define LRM_SIMD "scalar"
#endif

const char kBuildInfo[] = "LrmNative " LRM_VERSION_STRING "; compiler: " LRM_COMPILER "; build: " LRM_BUILD_TYPE
                          "; -march=" LRM_CPU_ARCH_FLAG "; simd: " LRM_SIMD "; OpenMP: " LRM_STRINGIFY(_OPENMP);
}  // namespace

// What this unit's -march enables, which is what the whole main build may use (cpu_check.cpp).
extern const uint32_t kCompiledCpuFeatures = LRM_CPU_COMPILED_FEATURES;

int num_threads() noexcept { return g_threads.load(std::memory_order_relaxed); }

}  // namespace lrm

extern "C" {

LRM_API const char* lrm_version(void) { return LRM_VERSION_STRING; }

LRM_API const char* lrm_build_info(void) {
    static const std::string info = std::string(lrm::kBuildInfo) + "; kernels: " + lrm::kernels().description;
    return info.c_str();
}

LRM_API const char* lrm_blas_info(void) {
    // OpenBLAS' config line names its version, build options and the kernel set it
    // picked for this CPU, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64".
    static const char* const info = openblas_get_config();
    return info != nullptr ? info : "OpenBLAS (no configuration string)";
}

LRM_API int32_t lrm_get_num_threads(void) { return lrm::num_threads(); }

LRM_API lrm_status lrm_set_num_threads(int32_t n) {
    return lrm::guarded("lrm_set_num_threads", [&](const lrm::Args& args) {
        if (n > lrm::kMaxThreads) args.fail(LRM_STATUS_INVALID_ARGUMENT, "n must be <= %d, got %d", lrm::kMaxThreads, n);
        const int threads = n > 0 ? n : lrm::g_default_threads.load(std::memory_order_relaxed);
        lrm::g_threads.store(threads, std::memory_order_relaxed);
        omp_set_num_threads(threads);
    });
}

LRM_API void lrm_limit_default_threads(int32_t n) {
    int current = lrm::g_default_threads.load(std::memory_order_relaxed);
    if (n < 1 || n >= current) return;
    lrm::g_default_threads.store(n, std::memory_order_relaxed);
    // The count in use follows unless someone already chose one.
    lrm::g_threads.compare_exchange_strong(current, n, std::memory_order_relaxed);
}

}  // extern "C"
