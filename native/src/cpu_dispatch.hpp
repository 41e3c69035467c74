// cpu_dispatch.hpp — the hot CPU kernels (attention forward/backward, fused MLP, patch embedding
// forward and weight gradient) in two builds,
// one picked at run time.
//
// The library is compiled for a portable baseline (-march=LRM_CPU_ARCH, x86-64-v3 =
// AVX2 + FMA by default) because it must run on any GPU host. attention.cpp and
// mlp.cpp are compiled a second time, as attention_avx512.cpp and mlp_avx512.cpp,
// with -march=x86-64-v4 (AVX-512 F/BW/CD/DQ/VL): 16-float vectors and a wider
// register tile (microkernel.hpp) using the 32 zmm registers. The first call
// (kernels()) checks the CPU once and keeps the choice for the life of the process:
//   - AVX-512 when the CPU has every extension x86-64-v4 implies
//     (__builtin_cpu_supports) and the OS saves the opmask/zmm state (XCR0 bits
//     5-7, read with xgetbv: a kernel or hypervisor may hide AVX-512 state even
//     where CPUID lists it), and the environment variable LRM_DISABLE_AVX512 is
//     unset, empty or "0";
//   - the baseline build otherwise (or when CMake's LRM_AVX512_DISPATCH is OFF, or
//     on a non-x86 target).
// lrm_build_info reports the choice ("kernels: avx512" / "kernels: avx2+fma ...").
// Results are deterministic for a given thread count. The two builds are also
// written to do the same arithmetic in the same order (same blocks, each product
// one fused multiply-add chain, softmax sums vectorised across queries, not
// across keys): on every shape we compared, their outputs were bit-identical
// (a baseline built without FMA, LRM_CPU_ARCH="", differs in the last bits).
//
// Keeping the builds apart (an AVX-512 copy of an inline function picked by the
// linker for baseline code would fault on CPUs without AVX-512): each kernel build
// lives in its own namespace (LRM_KERNEL_NS), the headers it shares with the other
// build (microkernel.hpp, fastmath.hpp) put everything in an unnamed namespace,
// and the AVX-512 units define LRM_HD as `static inline` for kernels/*.cuh. In a
// Release build the AVX-512 objects then define nothing global but
// kernels_avx512::attention_forward / mlp_forward (`nm -C --defined-only
// CMakeFiles/lrm_native.dir/src/*_avx512.cpp.o`). Without inlining (Debug) they
// also emit weak copies of common.hpp helpers and std:: templates (Scratch,
// round_up, std::vector<int64_t>); CMake lists the *_avx512.cpp sources last, and
// the linker keeps the first copy it sees, the baseline one (checked with a link
// map of a Debug build).
#pragma once

#include <cstdint>

#if defined(LRM_KERNELS_AVX512)
#define LRM_KERNEL_NS kernels_avx512
#else
#define LRM_KERNEL_NS kernels_base
#endif

namespace lrm {

struct AttentionShape {
    int64_t batch, heads, q_len, kv_len, head_dim, q_row_stride, kv_row_stride;
    float scale;
};

// More columns than any build pads a packed MLP weight row with (lrm_mlp_forward's
// size check adds it).
constexpr int64_t kMaxTileCols = 64;

// One declaration per build; see attention.cpp and mlp.cpp for what they compute.
#define LRM_DECLARE_KERNELS                                                                                          \
    void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,                \
                           const AttentionShape& s);                                                                 \
    void mlp_forward(float* out, const float* inp, const float* const* weights, const float* const* biases,         \
                     const int64_t* dims, int32_t num_layers, int64_t rows, int32_t hidden_activation,              \
                     int32_t output_activation);                                                                     \
    void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse, \
                            const float* q, const float* k, const float* v, const AttentionShape& s,                \
                            int64_t dq_row_stride, int64_t dkv_row_stride);                                 \
    void patch_embed_forward(float* out, const float* image, const float* weight, const float* bias, int64_t batch, \
                             int64_t channels, int64_t height, int64_t width, int64_t out_channels, int64_t patch);  \
    void patch_embed_weight_grad(float* dweight, const float* dout, const float* image, int64_t batch,              \
                                 int64_t channels, int64_t height, int64_t width, int64_t out_channels,             \
                                 int64_t patch);
namespace kernels_base {
LRM_DECLARE_KERNELS
}
namespace kernels_avx512 {
LRM_DECLARE_KERNELS
}
#undef LRM_DECLARE_KERNELS

struct Kernels {
    decltype(&kernels_base::attention_forward) attention_forward;
    decltype(&kernels_base::mlp_forward) mlp_forward;
    decltype(&kernels_base::attention_backward) attention_backward;
    decltype(&kernels_base::patch_embed_forward) patch_embed_forward;
    decltype(&kernels_base::patch_embed_weight_grad) patch_embed_weight_grad;
    const char* description;  // "avx512", or the baseline's SIMD level and why AVX-512 is not used
};

// The kernels for this CPU, chosen at the first call (thread-safe), then fixed.
const Kernels& kernels() noexcept;

}  // namespace lrm
