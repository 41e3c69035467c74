// cpu_dispatch.cpp — picks the AVX-512 or the baseline kernel build once per
// process (cpu_dispatch.hpp explains the two builds).
//
// Environment: LRM_DISABLE_AVX512=1 (any value but "" and "0") forces the baseline
// kernels on an AVX-512 CPU, e.g. to compare the two paths. It is read once, at the
// first attention or MLP call (or lrm_build_info), and ignored afterwards.
#include "cpu_dispatch.hpp"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace lrm {
namespace {

#if defined(__AVX512F__)
#define LRM_BASELINE_SIMD "avx512"
#elif defined(__AVX2__) && defined(__FMA__)
#define LRM_BASELINE_SIMD "avx2+fma"
#elif defined(__AVX__)
#define LRM_BASELINE_SIMD "avx"
#elif defined(__SSE2__)
#define LRM_BASELINE_SIMD "sse2"
#else
#define LRM_BASELINE_SIMD "scalar"
#endif

#if defined(LRM_AVX512_DISPATCH) && (defined(__x86_64__) || defined(__i386__))
// The OS enabled XSAVE (so xgetbv is allowed) and saves the SSE, AVX, opmask and
// both zmm halves on context switches: XCR0 bits 1, 2, 5, 6, 7.
bool os_saves_avx512_state() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || (ecx & bit_OSXSAVE) == 0) return false;
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    // xgetbv with ECX = 0 (XCR0); as asm, the intrinsic would need -mxsave here.
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    (void)xcr0_hi;
    const unsigned needed = 0x2u | 0x4u | 0x20u | 0x40u | 0x80u;
    return (xcr0_lo & needed) == needed;
}

// Every extension -march=x86-64-v4 lets the compiler use (AVX-512 F/BW/CD/DQ/VL
// and the x86-64-v3 set under it). libgcc's tables also consult XCR0; we check it
// ourselves above as well, so the answer does not depend on the compiler runtime.
bool cpu_has_x86_64_v4() {
    __builtin_cpu_init();
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
    if (!__builtin_cpu_supports("x86-64-v4")) return false;
#endif
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
}

bool avx512_disabled_by_environment() {
    const char* value = std::getenv("LRM_DISABLE_AVX512");
    return value != nullptr && value[0] != '\0' && std::strcmp(value, "0") != 0;
}
#endif

Kernels choose() noexcept {
    const Kernels baseline{&kernels_base::attention_forward, &kernels_base::mlp_forward,
                           &kernels_base::attention_backward, &kernels_base::patch_embed_forward,
                           &kernels_base::patch_embed_weight_grad, nullptr};
#if defined(LRM_AVX512_DISPATCH) && (defined(__x86_64__) || defined(__i386__))
    if (avx512_disabled_by_environment()) {
        Kernels k = baseline;
        k.description = LRM_BASELINE_SIMD " (AVX-512 kernels disabled by LRM_DISABLE_AVX512)";
        return k;
    }
    if (!cpu_has_x86_64_v4() || !os_saves_avx512_state()) {
        Kernels k = baseline;
        k.description = LRM_BASELINE_SIMD " (no AVX-512 on this CPU/OS)";
        return k;
    }
    return Kernels{&kernels_avx512::attention_forward, &kernels_avx512::mlp_forward, &kernels_avx512::attention_backward,
                   &kernels_avx512::patch_embed_forward, &kernels_avx512::patch_embed_weight_grad, "avx512"};
#else
    Kernels k = baseline;
    k.description = LRM_BASELINE_SIMD " (built without LRM_AVX512_DISPATCH)";
    return k;
#endif
}

}  // namespace

const Kernels& kernels() noexcept {
    static const Kernels chosen = choose();
    return chosen;
}

}  // namespace lrm
