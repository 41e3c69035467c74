// nerf.cpp — decoding the triplane NeRF MLP's raw output into density and colour.
//
//   raw   (rows, 4)   MLP output: [σ_raw, r, g, b]
//   sigma (rows)      softplus(σ_raw − 1)                      (kernels/nerf.cuh)
//   rgb   (rows, 3)   sigmoid(raw₁…₃)·1.002 − 0.001
//
// Either output may be NULL (the renderer needs only colours: it averages raw
// densities at interval midpoints before activating them). Flat OpenMP loop.
// Backward (lrm_nerf_decode_backward, docs/derivations/nerf_decode.md): per row,
// draw₀ = dσ·softplus'(raw₀ − 1) (sigmoid, or 1 above the threshold 20),
// draw₁…₃ = drgb·1.002·s·(1 − s) with s = sigmoid(raw); an absent upstream gradient is 0.
// draw is overwritten; nothing is saved (s is recomputed from raw).
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <cmath>

#include "nerf.cuh"

namespace lrm {
namespace {

void nerf_decode_forward(float* sigma, float* rgb, const float* raw, int64_t rows) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (rows > 8192)
    for (int64_t r = 0; r < rows; ++r) {
        const float* x = raw + 4 * r;
        if (sigma != nullptr) sigma[r] = lrm_nerf_density(x[0]);
        if (rgb != nullptr)
            for (int c = 0; c < 3; ++c) rgb[3 * r + c] = lrm_nerf_color(x[1 + c]);
    }
}

void nerf_decode_backward(float* draw, const float* dsigma, const float* drgb, const float* raw, int64_t rows) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (rows > 8192)
    for (int64_t r = 0; r < rows; ++r) {
        const float* x = raw + 4 * r;
        float* d = draw + 4 * r;
        d[0] = dsigma != nullptr ? dsigma[r] * lrm_nerf_density_derivative(x[0]) : 0.0f;
        for (int c = 0; c < 3; ++c) d[1 + c] = drgb != nullptr ? drgb[3 * r + c] * lrm_nerf_color_derivative(x[1 + c]) : 0.0f;
    }
}

}  // namespace
}  // namespace lrm

extern "C" LRM_API lrm_status lrm_nerf_decode_forward(float* sigma, float* rgb, const float* raw, int64_t rows) {
    return lrm::guarded("lrm_nerf_decode_forward", [&](const lrm::Args& args) {
        args.not_null(raw, "raw").positive(rows, "rows");
        if (sigma == nullptr && rgb == nullptr)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "at least one of 'sigma' and 'rgb' must be given");
        args.elements({rows, 4}, "raw (rows x 4)");
        lrm::nerf_decode_forward(sigma, rgb, raw, rows);
    });
}

extern "C" LRM_API lrm_status lrm_nerf_decode_backward(float* draw, const float* dsigma, const float* drgb,
                                                       const float* raw, int64_t rows) {
    return lrm::guarded("lrm_nerf_decode_backward", [&](const lrm::Args& args) {
        args.not_null(draw, "draw").not_null(raw, "raw").positive(rows, "rows");
        if (dsigma == nullptr && drgb == nullptr)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "at least one of 'dsigma' and 'drgb' must be given");
        args.elements({rows, 4}, "raw (rows x 4)");
        lrm::nerf_decode_backward(draw, dsigma, drgb, raw, rows);
    });
}
