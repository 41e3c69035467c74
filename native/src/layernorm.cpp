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
// Backward (docs/derivations/layernorm.md and modln.md), from the saved mean/rstd:
//   dy = dout·(1 + scale) (ModLN; dout for LN), x̂ = (x − mean)·rstd, g = dy·w,
//   dinp = rstd·(g − mean_c(g) − x̂·mean_c(g·x̂))                  overwritten
//   dweight += Σ_rows dy·x̂, dbias += Σ_rows dy                      accumulated
//   dshift = Σ_tokens dout, dscale = Σ_tokens dout·(x̂·w + b)         overwritten
// shift and scale come out of the modulation MLP (activations, one pair per ModLN
// and sample), so their gradients overwrite like any input gradient. One pass per
// row for the row sums (double) and the parameter/modulation sums, a second pass
// writes dinp (recomputing x̂ and g rather than storing them). Rows are split into one
// contiguous range per requested thread; every column sum goes through a double partial
// per range, added in range order (reduce.hpp): deterministic for a thread count.
// dinp may alias dout (each element of dout is read before dinp's is written).
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"
#include "reduce.hpp"

#include <cmath>
#include <cstring>

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

// LayerNorm is ModLN backward with batch = 1 and no modulation (scale = NULL, and
// then dshift/dscale are not produced).
void modln_backward(float* dinp, float* dweight, float* dbias, float* dshift, float* dscale, const float* dout,
                    const float* mean, const float* rstd, const float* inp, const float* weight, const float* bias,
                    const float* scale, int64_t batch, int64_t tokens, int64_t channels) {
    const int64_t rows = batch * tokens;
    const int64_t C = channels;
    const bool modulated = scale != nullptr;
    // Partial layout per thread: [dweight C | dbias C | dshift B·C | dscale B·C].
    const int64_t width = 2 * C + (modulated ? 2 * batch * C : 0);
    RowPartials parts(rows, width, num_threads(), std::max<int64_t>(1, 16384 / C));
    // The per-row work runs in float so it vectorises (omp simd reductions for the row sums); the parameter sums
    // go through a float tile of up to kTile rows that is flushed into the part's double partials, which keeps
    // the long (rows × batch) sums accurate and the result deterministic for a given thread count.
    // Scratch per part: [tile (width) | dnormed (C)], allocated here: an exception must not leave the region.
    constexpr int64_t kTile = 32;
    const int64_t per_part = width + C;
    Scratch scratch(parts.parts() * per_part);
#pragma omp parallel num_threads(parts.parts())
    parts.for_each_part([&](int part) {
        double* acc = parts.partial(part);
        float* tile = scratch.data() + part * per_part;
        float* dyn = tile + width;
        std::memset(tile, 0, sizeof(float) * width);
        float* tile_w = tile;
        float* tile_b = tile + C;
        int64_t tile_rows = 0;
        auto flush = [&] {
            for (int64_t i = 0; i < width; ++i) {
                acc[i] += tile[i];
                tile[i] = 0.0f;
            }
            tile_rows = 0;
        };
        for (int64_t r = parts.begin(part); r < parts.end(part); ++r) {
            const int64_t b = r / tokens;
            const float* x = inp + r * C;
            const float* dy_out = dout + r * C;
            const float* s = modulated ? scale + b * C : nullptr;
            const float mu = mean[r], rs = rstd[r];
            float* tile_shift = modulated ? tile + 2 * C + b * C : nullptr;
            float* tile_scale = modulated ? tile + 2 * C + batch * C + b * C : nullptr;
            if (modulated) {
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) {
                    const float w = weight != nullptr ? weight[c] : 1.0f;
                    const float y = lrm_layernorm_apply(x[c], mu, rs, w, bias != nullptr ? bias[c] : 0.0f);
                    tile_shift[c] += dy_out[c];
                    tile_scale[c] += dy_out[c] * y;
                    dyn[c] = lrm_modln_backward_dnormed(dy_out[c], s[c]);
                }
            } else {
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) dyn[c] = dy_out[c];
            }
            float sum_g = 0.0f, sum_gx = 0.0f;
#pragma omp simd reduction(+ : sum_g, sum_gx)
            for (int64_t c = 0; c < C; ++c) {
                const float xhat = lrm_layernorm_apply(x[c], mu, rs, 1.0f, 0.0f);
                const float w = weight != nullptr ? weight[c] : 1.0f;
                const float dy = dyn[c];
                tile_w[c] += dy * xhat;
                tile_b[c] += dy;
                const float g = dy * w;
                sum_g += g;
                sum_gx += g * xhat;
            }
            if (++tile_rows == kTile) flush();
            if (dinp == nullptr) continue;
            const float mean_g = sum_g / static_cast<float>(C);
            const float mean_gx = sum_gx / static_cast<float>(C);
            float* dx = dinp + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) {
                const float xhat = lrm_layernorm_apply(x[c], mu, rs, 1.0f, 0.0f);
                const float w = weight != nullptr ? weight[c] : 1.0f;
                dx[c] = lrm_layernorm_backward_dx(dyn[c] * w, xhat, mean_g, mean_gx, rs);
            }
        }
        if (tile_rows > 0) flush();
    });
    parts.reduce();
    for (int64_t c = 0; c < C; ++c) {
        if (dweight != nullptr) dweight[c] = static_cast<float>(dweight[c] + parts.total(c));
        if (dbias != nullptr) dbias[c] = static_cast<float>(dbias[c] + parts.total(C + c));
    }
    if (modulated) {
        for (int64_t i = 0; i < batch * C; ++i) {
            if (dshift != nullptr) dshift[i] = static_cast<float>(parts.total(2 * C + i));
            if (dscale != nullptr) dscale[i] = static_cast<float>(parts.total(2 * C + batch * C + i));
        }
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

LRM_API lrm_status lrm_layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                          const float* mean, const float* rstd, const float* inp, const float* weight,
                                          int64_t rows, int64_t channels) {
    return lrm::guarded("lrm_layernorm_backward", [&](const lrm::Args& args) {
        args.not_null(dout, "dout").not_null(mean, "mean").not_null(rstd, "rstd").not_null(inp, "inp");
        if (dinp == nullptr && dweight == nullptr && dbias == nullptr)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "no gradient requested (dinp, dweight and dbias are all NULL)");
        args.positive(rows, "rows").positive(channels, "channels");
        args.elements({rows, channels}, "inp (rows x channels)");
        lrm::modln_backward(dinp, dweight, dbias, nullptr, nullptr, dout, mean, rstd, inp, weight, nullptr, nullptr, 1,
                            rows, channels);
    });
}

LRM_API lrm_status lrm_modln_backward(float* dinp, float* dweight, float* dbias, float* dshift, float* dscale,
                                      const float* dout, const float* mean, const float* rstd, const float* inp,
                                      const float* weight, const float* bias, const float* scale, int64_t batch,
                                      int64_t tokens, int64_t channels) {
    return lrm::guarded("lrm_modln_backward", [&](const lrm::Args& args) {
        args.not_null(dout, "dout").not_null(mean, "mean").not_null(rstd, "rstd").not_null(inp, "inp");
        args.not_null(scale, "scale");
        if (dinp == nullptr && dweight == nullptr && dbias == nullptr && dshift == nullptr && dscale == nullptr)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "no gradient requested (all gradient pointers are NULL)");
        args.positive(batch, "batch").positive(tokens, "tokens").positive(channels, "channels");
        args.elements({batch, tokens, channels}, "inp (batch x tokens x channels)");
        lrm::modln_backward(dinp, dweight, dbias, dshift, dscale, dout, mean, rstd, inp, weight, bias, scale, batch,
                            tokens, channels);
    });
}

}  // extern "C"
