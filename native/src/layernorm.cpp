// layernorm.cpp — LayerNorm and ModLN (LayerNorm + per-sample modulation, LRM §3.2).
//
//   LayerNorm: out[r, c] = (inp[r, c] − mean_r)·rstd_r·weight[c] + bias[c]
//              mean_r = Σ_c inp/C, var_r = Σ_c (inp − mean)²/C (biased), rstd_r = 1/√(var_r + eps)
//   ModLN:     out[b, t, c] = LN(inp)[b, t, c]·(1 + scale[b, c]) + shift[b, c]
//
//   out, inp   (rows, C) / (B, T, C)
//   mean, rstd (rows) / (B, T)  optional, saved for backward
//   weight, bias (C) optional LN affine; shift, scale (B, C)
//
// This is the reference the GPU kernels are measured against, so statistics are
// accumulated in double with two passes over the row (exact enough that parity
// errors are the GPU's); per-element math is in kernels/layernorm.cuh.
// Rows are independent: one OpenMP loop over rows, static schedule.
// Works in place (out == inp): a row is fully read before it is written.
//
// Backward (to come): dinp from the saved mean/rstd; dweight, dbias accumulate (+=).
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <cmath>

#include "layernorm.cuh"

namespace lrm {
namespace {

// One row: statistics, normalisation, optional affine, optional modulation.
inline void normalize_row(float* out, float* mean_out, float* rstd_out, const float* inp, const float* weight,
                          const float* bias, const float* shift, const float* scale, int64_t channels, float eps) {
    double mean_d, var_d;
    lrm_row_moments<double>(inp, channels, &mean_d, &var_d);
    const float mean = static_cast<float>(mean_d);
    const float rstd = lrm_layernorm_rstd(static_cast<float>(var_d), eps);
    for (int64_t c = 0; c < channels; ++c) {
        const float w = weight != nullptr ? weight[c] : 1.0f;
        const float b = bias != nullptr ? bias[c] : 0.0f;
        float y = lrm_layernorm_apply(inp[c], mean, rstd, w, b);
        if (scale != nullptr) y = lrm_modln_modulate(y, shift[c], scale[c]);
        out[c] = y;
    }
    if (mean_out != nullptr) *mean_out = mean;
    if (rstd_out != nullptr) *rstd_out = rstd;
}

// LayerNorm is ModLN with batch = 1 and no modulation (shift = scale = NULL).
void modln_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                   const float* shift, const float* scale, int64_t batch, int64_t tokens, int64_t channels, float eps) {
    const int64_t rows = batch * tokens;
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (rows * channels > 16384)
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t b = r / tokens;
        normalize_row(out + r * channels, mean != nullptr ? mean + r : nullptr, rstd != nullptr ? rstd + r : nullptr,
                      inp + r * channels, weight, bias, shift != nullptr ? shift + b * channels : nullptr,
                      scale != nullptr ? scale + b * channels : nullptr, channels, eps);
    }
}

void check_eps(const Args& args, float eps) {
    if (!(eps >= 0.0f) || !std::isfinite(eps))
        args.fail(LRM_STATUS_INVALID_ARGUMENT, "eps must be finite and >= 0, got %g", static_cast<double>(eps));
}

}  // namespace
}  // namespace lrm

extern "C" {

LRM_API lrm_status lrm_layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                                         const float* bias, int64_t rows, int64_t channels, float eps) {
    return lrm::guarded("lrm_layernorm_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(inp, "inp");
        args.positive(rows, "rows").positive(channels, "channels");
        args.elements({rows, channels}, "inp (rows x channels)");
        lrm::check_eps(args, eps);
        lrm::modln_forward(out, mean, rstd, inp, weight, bias, nullptr, nullptr, 1, rows, channels, eps);
    });
}

LRM_API lrm_status lrm_modln_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                                     const float* bias, const float* shift, const float* scale, int64_t batch,
                                     int64_t tokens, int64_t channels, float eps) {
    return lrm::guarded("lrm_modln_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(inp, "inp").not_null(shift, "shift").not_null(scale, "scale");
        args.positive(batch, "batch").positive(tokens, "tokens").positive(channels, "channels");
        args.elements({batch, tokens, channels}, "inp (batch x tokens x channels)");
        lrm::check_eps(args, eps);
        lrm::modln_forward(out, mean, rstd, inp, weight, bias, shift, scale, batch, tokens, channels, eps);
    });
}

}  // extern "C"
