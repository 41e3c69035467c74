// convert.cpp — fp32 ⇄ bf16 conversion (weights and activations for the GPU path).
//
//   lrm_convert_f32_to_bf16: out[i] = bf16(inp[i]), round to nearest even, NaN stays NaN
//   lrm_convert_bf16_to_f32: out[i] = inp[i] widened, exact
//   out, inp (n)
//
// Bit manipulation in kernels/bf16.cuh (the same on the GPU). Flat OpenMP loops.
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <cstring>

#include "bf16.cuh"

namespace lrm {
namespace {

constexpr int64_t kParallelThreshold = 1 << 16;

void f32_to_bf16(uint16_t* out, const float* inp, int64_t n) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
        uint32_t bits;
        std::memcpy(&bits, &inp[i], sizeof bits);
        out[i] = lrm_bf16_from_bits(bits);
    }
}

void bf16_to_f32(float* out, const uint16_t* inp, int64_t n) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t bits = lrm_bf16_to_bits(inp[i]);
        std::memcpy(&out[i], &bits, sizeof bits);
    }
}

}  // namespace
}  // namespace lrm

extern "C" {

LRM_API lrm_status lrm_convert_f32_to_bf16(uint16_t* out, const float* inp, int64_t n) {
    return lrm::guarded("lrm_convert_f32_to_bf16", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(inp, "inp").positive(n, "n");
        args.elements({n}, "inp");
        lrm::f32_to_bf16(out, inp, n);
    });
}

LRM_API lrm_status lrm_convert_bf16_to_f32(float* out, const uint16_t* inp, int64_t n) {
    return lrm::guarded("lrm_convert_bf16_to_f32", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(inp, "inp").positive(n, "n");
        args.elements({n}, "inp");
        lrm::bf16_to_f32(out, inp, n);
    });
}

}  // extern "C"
