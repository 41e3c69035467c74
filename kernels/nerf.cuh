/*
 * nerf.cuh — the triplane NeRF's output activations (OpenLRM's OSGDecoder and
 * ImportanceRenderer), per element:
 *   density  σ   = softplus(raw₀ − 1)            ("activation bias of −1", EG3D)
 *   colour   rgb = sigmoid(raw₁…₃)·(1 + 2·0.001) − 0.001   (MipNeRF's widened sigmoid)
 * softplus as torch.nn.functional.softplus (β = 1, threshold 20): x above the
 * threshold passes through unchanged, so large inputs never overflow exp.
 */
#ifndef LRM_NERF_CUH
#define LRM_NERF_CUH

#include "lrm_common.cuh"

#define LRM_NERF_DENSITY_BIAS 1.0f    /* σ = softplus(raw − 1) */
#define LRM_NERF_COLOR_PADDING 0.001f /* rgb ∈ (−0.001, 1.001) */

LRM_HD float lrm_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

LRM_HD float lrm_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

LRM_HD float lrm_nerf_density(float raw) { return lrm_softplus(raw - LRM_NERF_DENSITY_BIAS); }

LRM_HD float lrm_nerf_color(float raw) {
    return lrm_sigmoid(raw) * (1.0f + 2.0f * LRM_NERF_COLOR_PADDING) - LRM_NERF_COLOR_PADDING;
}

/* Derivatives for the backward (docs/derivations/nerf_decode.md):
 *   softplus'(x) = sigmoid(x) below the threshold, 1 above it (torch's softplus_backward);
 *   dσ/draw = softplus'(raw − 1);  drgb/draw = 1.002·s·(1 − s), s = sigmoid(raw). */
LRM_HD float lrm_softplus_derivative(float x) { return x > 20.0f ? 1.0f : lrm_sigmoid(x); }

LRM_HD float lrm_nerf_density_derivative(float raw) { return lrm_softplus_derivative(raw - LRM_NERF_DENSITY_BIAS); }

LRM_HD float lrm_nerf_color_derivative(float raw) {
    const float s = lrm_sigmoid(raw);
    return (1.0f + 2.0f * LRM_NERF_COLOR_PADDING) * s * (1.0f - s);
}

#endif /* LRM_NERF_CUH */
