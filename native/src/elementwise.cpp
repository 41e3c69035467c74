// elementwise.cpp — element-wise arithmetic the model glues its layers with.
//
//   add         out = a + b                              out, a, b (n)
//   layerscale  out = residual + inp·gamma[c]            out, inp, residual (rows, C), gamma (C)
//               (DINOv2's LayerScale, `x + ls.gamma ⊙ f(x)`; residual optional = 0)
//
// Outputs may alias any input element-for-element (in-place residual updates);
// each element is read before it is written. Flat OpenMP loops, static schedule,
// parallel only above a size where the fork/join pays off: deterministic.
//
// Backward (to come): add passes dout to both; layerscale dinp = dout·gamma
// (overwrites), dgamma += Σ_rows dout·inp, dresidual = dout.
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

namespace lrm {
namespace {

constexpr int64_t kParallelThreshold = 1 << 15;

void add_forward(float* out, const float* a, const float* b, int64_t n) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void layerscale_forward(float* out, const float* inp, const float* gamma, const float* residual, int64_t rows,
                        int64_t channels) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (rows * channels > kParallelThreshold)
    for (int64_t r = 0; r < rows; ++r) {
        const float* x = inp + r * channels;
        float* y = out + r * channels;
        if (residual != nullptr) {
            const float* skip = residual + r * channels;
            for (int64_t c = 0; c < channels; ++c) y[c] = skip[c] + x[c] * gamma[c];
        } else {
            for (int64_t c = 0; c < channels; ++c) y[c] = x[c] * gamma[c];
        }
    }
}

}  // namespace
}  // namespace lrm

extern "C" {

LRM_API lrm_status lrm_add_forward(float* out, const float* a, const float* b, int64_t n) {
    return lrm::guarded("lrm_add_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(a, "a").not_null(b, "b").positive(n, "n");
        args.elements({n}, "out");
        lrm::add_forward(out, a, b, n);
    });
}

LRM_API lrm_status lrm_layerscale_forward(float* out, const float* inp, const float* gamma, const float* residual,
                                          int64_t rows, int64_t channels) {
    return lrm::guarded("lrm_layerscale_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(inp, "inp").not_null(gamma, "gamma");
        args.positive(rows, "rows").positive(channels, "channels");
        args.elements({rows, channels}, "inp (rows x channels)");
        lrm::layerscale_forward(out, inp, gamma, residual, rows, channels);
    });
}

}  // extern "C"
