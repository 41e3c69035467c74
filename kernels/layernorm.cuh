/*
 * layernorm.cuh — LayerNorm and ModLN per-element math.
 *
 *   mean = Σx/C,  var = Σ(x − mean)²/C  (biased, as nn.LayerNorm),
 *   rstd = 1/√(var + eps)               (eps inside the root),
 *   y    = (x − mean)·rstd·w + b
 *   ModLN (LRM §3.2): out = y·(1 + scale) + shift, scale/shift per sample and channel.
 *
 * Row statistics come in two flavours:
 *  - two-pass (lrm_row_moments), templated on the accumulator: the CPU reference
 *    accumulates in double, which makes it the accurate side of every parity test;
 *  - Welford with Chan's merge (lrm_welford_*), for one-pass GPU reductions where
 *    threads own slices of a row and merge their partial states.
 *
 * Backward (docs/derivations/layernorm.md, modln.md), per row with x̂ = (x − mean)·rstd:
 *   ModLN: dy = dout·(1 + scale)       (the gradient reaching LN's output)
 *          dshift = Σ_t dout, dscale = Σ_t dout·y, y = x̂·w + b
 *   LN:    dw += Σ_rows dy·x̂, db += Σ_rows dy, g = dy·w,
 *          dx = rstd·(g − mean_c(g) − x̂·mean_c(g·x̂))
 */
#ifndef LRM_LAYERNORM_CUH
#define LRM_LAYERNORM_CUH

#include "lrm_common.cuh"

/* Two-pass mean and biased variance of x[0..n). Acc is the accumulator type.
 * Eight interleaved partial sums: independent add chains (the CPU vectorises them
 * and hides the add latency), merged in a fixed order, so results are deterministic. */
template <typename Acc>
LRM_HD void lrm_row_moments(const float* x, long long n, Acc* mean, Acc* var) {
    Acc part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    long long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) part[l] += (Acc)x[i + l];
    Acc sum = 0;
    for (; i < n; ++i) sum += (Acc)x[i];
    for (int l = 0; l < 8; ++l) sum += part[l];
    const Acc m = sum / (Acc)n;
    for (int l = 0; l < 8; ++l) part[l] = 0;
    for (i = 0; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) {
            const Acc d = (Acc)x[i + l] - m;
            part[l] += d * d;
        }
    Acc sq = 0;
    for (; i < n; ++i) {
        const Acc d = (Acc)x[i] - m;
        sq += d * d;
    }
    for (int l = 0; l < 8; ++l) sq += part[l];
    *mean = m;
    *var = sq / (Acc)n;
}

/* Running (count, mean, M2) of a stream of values; var = m2 / count. */
typedef struct lrm_welford {
    float count;
    float mean;
    float m2;
} lrm_welford;

LRM_HD lrm_welford lrm_welford_init(void) {
    lrm_welford s;
    s.count = 0.0f;
    s.mean = 0.0f;
    s.m2 = 0.0f;
    return s;
}

LRM_HD void lrm_welford_update(lrm_welford* s, float x) {
    s->count += 1.0f;
    const float delta = x - s->mean;
    s->mean += delta / s->count;
    s->m2 += delta * (x - s->mean);
}

/* Chan et al.'s pairwise merge: a ← a ∪ b. */
LRM_HD void lrm_welford_merge(lrm_welford* a, lrm_welford b) {
    const float count = a->count + b.count;
    if (count == 0.0f) return;
    const float delta = b.mean - a->mean;
    const float fb = b.count / count;
    a->mean += delta * fb;
    a->m2 += b.m2 + delta * delta * a->count * fb;
    a->count = count;
}

LRM_HD float lrm_layernorm_rstd(float var, float eps) { return 1.0f / sqrtf(var + eps); }

/* Normalised value with the optional affine (w = 1, b = 0 when absent). */
LRM_HD float lrm_layernorm_apply(float x, float mean, float rstd, float w, float b) {
    return (x - mean) * rstd * w + b;
}

/* ModLN modulation of an already normalised value. */
LRM_HD float lrm_modln_modulate(float normed, float shift, float scale) {
    return normed * (1.0f + scale) + shift;
}

/* ModLN backward: the gradient reaching the LayerNorm output through the modulation. */
LRM_HD float lrm_modln_backward_dnormed(float dout, float scale) { return dout * (1.0f + scale); }

/* LayerNorm backward, one element: g = dy·w is the gradient of the normalised value x̂;
 * mean_g = Σ_c g/C and mean_gxhat = Σ_c g·x̂/C are row means. */
LRM_HD float lrm_layernorm_backward_dx(float g, float xhat, float mean_g, float mean_gxhat, float rstd) {
    return rstd * (g - mean_g - xhat * mean_gxhat);
}

#endif /* LRM_LAYERNORM_CUH */
