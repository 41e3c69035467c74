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
// and sample), so their gradients overwrite like any input gradient.
// Two passes per row, the second from L1: the first sums Σg, Σg·x̂ (16 float lanes)
// and adds the row into a float tile of the parameter/modulation sums, the second
// writes dinp (recomputing x̂ and g rather than storing them). Rows are split into one
// contiguous range per requested thread; the tile is flushed every 32 rows into a double
// partial per range, added in range order (reduce.hpp): deterministic for a thread count.
// dinp may alias dout (each element of dout is read before dinp's is written).
// Tried for the backward (Zen 5, 2 threads, 3072 rows of 512-1024): non-temporal dinp
// stores and an AVX-512 build of this file were no faster; prefetching the next row
// while summing this one was (up to ~25% at C = 1024, where a row is a 4 KiB page).
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"
#include "reduce.hpp"

#include <algorithm>
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

// Row sums of the backward (Σg, Σg·x̂) run in kRowLanes interleaved float partials, merged in lane order: plain
// loops over a fixed lane count, which GCC turns into vector adds (two ymm registers in the AVX2 build) and which
// give the same bits whatever the vector width. (An `omp simd reduction` here ran as a scalar add chain: ~4 cycles
// an element, a third of the memory bandwidth.)
constexpr int64_t kRowLanes = 16;
// Rows summed into the float parameter tile before it is added into the part's double partials.
constexpr int64_t kTileRows = 32;

#define LRM_ALWAYS_INLINE inline __attribute__((always_inline))

// The read-only operands of one backward call; weight and bias point at ones and zeros when absent, so the loops
// need no branch.
struct BackwardInputs {
    const float* dout;    // (rows, C)
    const float* mean;    // (rows)
    const float* rstd;    // (rows)
    const float* inp;     // (rows, C)
    const float* weight;  // (C)
    const float* bias;    // (C)
    const float* scale;   // (B, C) or NULL (LayerNorm)
    int64_t tokens, channels, rows;
};

// The float tile of one part holds its parameter sums block by block: for each block of kRowLanes columns, the
// kRowLanes sums of dweight, then of dbias (and for ModLN of dshift, dscale of the current sample). Interleaved rather
// than one array per sum: with C·4 bytes a multiple of 4 KiB (C = 512, 1024), separate arrays put tile_b[c] at the same
// address modulo 4 KiB as the tile_w[c] just stored, and the CPU then holds the load back as if it depended on the
// store (4K aliasing; it cost ModLN 3072x1024 about a third of its time).
template <bool Modulated>
constexpr int64_t kTileSums = Modulated ? 4 : 2;

// One element of pass 1 (below): column c = block start + lane; its parameter sums into the block's tile, g and g·x̂
// into the row's lane partials.
template <bool Modulated>
LRM_ALWAYS_INLINE void backward_element(float* __restrict block, float& lane_g, float& lane_gx,
                                        const float* __restrict dout, const float* __restrict x,
                                        const float* __restrict w, const float* __restrict b,
                                        const float* __restrict s, float mu, float rs, int64_t c, int64_t lane) {
    const float xhat = lrm_layernorm_apply(x[c], mu, rs, 1.0f, 0.0f);
    float dy = dout[c];
    if (Modulated) {
        block[2 * kRowLanes + lane] += dy;                                                 // dshift
        block[3 * kRowLanes + lane] += dy * lrm_layernorm_apply(x[c], mu, rs, w[c], b[c]);  // dscale
        dy = lrm_modln_backward_dnormed(dy, s[c]);
    }
    block[lane] += dy * xhat;         // dweight
    block[kRowLanes + lane] += dy;    // dbias
    const float g = dy * w[c];
    lane_g += g;
    lane_gx += g * xhat;
}

// Pass 1 over row r, which the loops keep in L1 for pass 2: the parameter sums into the float tile
// (dweight += dy·x̂, dbias += dy; ModLN also dshift += dout, dscale += dout·y) and the row means of g = dy·w
// and g·x̂, returned through mean_g / mean_gx.
template <bool Modulated>
inline void backward_row_sums(float* tile, float* mean_g, float* mean_gx, const BackwardInputs& in, int64_t r) {
    const int64_t C = in.channels;
    const float* x = in.inp + r * C;
    const float* dout = in.dout + r * C;
    const float* s = Modulated ? in.scale + (r / in.tokens) * C : nullptr;
    const float mu = in.mean[r], rs = in.rstd[r];
    float lane_g[kRowLanes] = {}, lane_gx[kRowLanes] = {};
    int64_t c = 0;
    float* block = tile;
    // The next row's x and dout, one cache line of each per block: at C = 1024 a row is a 4 KiB page, where the
    // hardware prefetchers stop and start over.
    const int64_t ahead = r + 1 < in.rows ? C : 0;
    for (; c + kRowLanes <= C; c += kRowLanes, block += kTileSums<Modulated> * kRowLanes) {
        __builtin_prefetch(x + ahead + c);
        __builtin_prefetch(dout + ahead + c);
#pragma omp simd
        for (int64_t lane = 0; lane < kRowLanes; ++lane)
            backward_element<Modulated>(block, lane_g[lane], lane_gx[lane], dout, x, in.weight, in.bias, s, mu, rs,
                                        c + lane, lane);
    }
    for (int64_t lane = 0; c + lane < C; ++lane)
        backward_element<Modulated>(block, lane_g[lane], lane_gx[lane], dout, x, in.weight, in.bias, s, mu, rs,
                                    c + lane, lane);
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (int64_t lane = 0; lane < kRowLanes; ++lane) {
        sum_g += lane_g[lane];
        sum_gx += lane_gx[lane];
    }
    *mean_g = sum_g / static_cast<float>(C);
    *mean_gx = sum_gx / static_cast<float>(C);
}

// Pass 2 over row r: dinp, recomputing x̂ and g. dx may alias dout (each element is read before it is written).
template <bool Modulated>
inline void backward_row_dinp(float* dx, const BackwardInputs& in, int64_t r, float mean_g, float mean_gx) {
    const int64_t C = in.channels;
    const float* x = in.inp + r * C;
    const float* dout = in.dout + r * C;
    const float* w = in.weight;
    const float* s = Modulated ? in.scale + (r / in.tokens) * C : nullptr;
    const float mu = in.mean[r], rs = in.rstd[r];
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
        const float dy = Modulated ? lrm_modln_backward_dnormed(dout[c], s[c]) : dout[c];
        const float xhat = lrm_layernorm_apply(x[c], mu, rs, 1.0f, 0.0f);
        dx[c] = lrm_layernorm_backward_dx(dy * w[c], xhat, mean_g, mean_gx, rs);
    }
}

// One part's rows (a contiguous range of RowPartials): both passes per row, the parameter sums through the float
// tile (kTileSums) flushed into the part's double partials [dweight C | dbias C | dshift B·C | dscale B·C] every
// kTileRows rows and at each new sample.
template <bool Modulated>
void backward_part(float* dinp, double* partial, float* tile, const BackwardInputs& in, int64_t batch, int64_t begin,
                   int64_t end) {
    const int64_t C = in.channels;
    constexpr int64_t sums = kTileSums<Modulated>;
    const int64_t tile_size = ceil_div(C, kRowLanes) * sums * kRowLanes;
    std::memset(tile, 0, sizeof(float) * tile_size);
    int64_t tile_rows = 0, tile_sample = begin / in.tokens;
    auto flush = [&] {
        // Where each of the tile's sums goes: dweight, dbias, and this sample's dshift, dscale.
        double* const targets[4] = {partial, partial + C,
                                    Modulated ? partial + 2 * C + tile_sample * C : nullptr,
                                    Modulated ? partial + 2 * C + batch * C + tile_sample * C : nullptr};
        for (int64_t sum = 0; sum < sums; ++sum) {
            double* target = targets[sum];
            const float* block = tile + sum * kRowLanes;
            for (int64_t c0 = 0; c0 < C; c0 += kRowLanes, block += sums * kRowLanes) {
                const int64_t lanes = std::min(kRowLanes, C - c0);
                for (int64_t lane = 0; lane < lanes; ++lane) target[c0 + lane] += block[lane];
            }
        }
        std::memset(tile, 0, sizeof(float) * tile_size);
        tile_rows = 0;
    };
    for (int64_t r = begin; r < end; ++r) {
        if (Modulated && r / in.tokens != tile_sample) {
            if (tile_rows > 0) flush();
            tile_sample = r / in.tokens;
        }
        float mean_g, mean_gx;
        backward_row_sums<Modulated>(tile, &mean_g, &mean_gx, in, r);
        if (dinp != nullptr) backward_row_dinp<Modulated>(dinp + r * C, in, r, mean_g, mean_gx);
        if (++tile_rows == kTileRows) flush();
    }
    if (tile_rows > 0) flush();
}

// LayerNorm is ModLN backward with batch = 1 and no modulation (scale = NULL, and
// then dshift/dscale are not produced).
void modln_backward(float* dinp, float* dweight, float* dbias, float* dshift, float* dscale, const float* dout,
                    const float* mean, const float* rstd, const float* inp, const float* weight, const float* bias,
                    const float* scale, int64_t batch, int64_t tokens, int64_t channels) {
    const int64_t rows = batch * tokens;
    const int64_t C = channels;
    const bool modulated = scale != nullptr;
    // Partial layout per part: [dweight C | dbias C | dshift B·C | dscale B·C].
    const int64_t width = 2 * C + (modulated ? 2 * batch * C : 0);
    RowPartials parts(rows, width, num_threads(), std::max<int64_t>(1, 16384 / C));
    // Scratch: [ones C | zeros C] standing in for an absent weight / bias, then one float tile per part (whole cache
    // lines, so two threads never share one); allocated here: an exception must not leave the region.
    const int64_t tile_stride = ceil_div(C, kRowLanes) * kTileSums<true> * kRowLanes;
    Scratch scratch(round_up(2 * C, 16) + parts.parts() * tile_stride);
    float* ones = scratch.data();
    float* zeros = ones + C;
    std::fill(ones, ones + C, 1.0f);
    std::fill(zeros, zeros + C, 0.0f);
    const BackwardInputs in{dout, mean, rstd, inp, weight != nullptr ? weight : ones, bias != nullptr ? bias : zeros,
                            scale, tokens, C, rows};
    float* tiles = scratch.data() + round_up(2 * C, 16);
#pragma omp parallel num_threads(parts.parts())
    parts.for_each_part([&](int part) {
        float* tile = tiles + part * tile_stride;
        if (modulated)
            backward_part<true>(dinp, parts.partial(part), tile, in, batch, parts.begin(part), parts.end(part));
        else
            backward_part<false>(dinp, parts.partial(part), tile, in, batch, parts.begin(part), parts.end(part));
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
