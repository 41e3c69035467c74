/*
 * render.cuh — per-ray math of LRM's volume renderer (OpenLRM v1.1 RaySampler,
 * ImportanceRenderer and MipRayMarcher2, EG3D-derived), deterministic mode.
 * tests/golden/model/README.md is the specification; in short:
 *
 *  ray      pixel (i, j) of an H×W image, x = (j + ½)/W, y = (i + ½)/H,
 *           x_lift = (x − cx + cy·sk/fy − sk·y/fy)/fx, y_lift = (y − cy)/fy,
 *           d = normalize(R·(x_lift, −y_lift, −1)), origin = camera position
 *           (camera-to-world R | o in OpenGL convention; the flip is OpenCV→OpenGL).
 *  box      near/far = slab intersection with [−1, 1]³ (valid iff far > near).
 *  inside   a sample p is inside iff max|p_i| ≤ 1 + 1e-5; outside samples get rgb 0
 *           and the raw density −FLT_MAX/8, so every interval touching one has σ = 0.
 *  march    for consecutive samples k, k+1: Δ = t₊ − t, σ = softplus((σ_raw + σ_raw₊)/2 − 1),
 *           α = 1 − e^(−σΔ), T_k = Π_{j<k}(1 − α_j + 1e-10), w_k = α_k·T_k;
 *           rgb = Σ w·(c + c₊)/2 + bg·(1 − Σw), depth = Σ w·(t + t₊)/2 / Σw (NaN → +∞,
 *           then clamped to the image's sample range), opacity = Σw.
 *  pdf      importance samples by a deterministic inverse CDF of the smoothed
 *           coarse weights over the coarse midpoints (EG3D's sample_pdf, det=True).
 *  backward decode and march (docs/derivations/render_decode.md, render_march.md);
 *           rays, points and importance depths are not differentiated (render_points.md).
 */
#ifndef LRM_RENDER_CUH
#define LRM_RENDER_CUH

#include "lrm_common.cuh"
#include "nerf.cuh"

#define LRM_RENDER_INSIDE_TOLERANCE 1e-5f
/* OpenLRM's out-of-box raw density: nan_to_num(−inf)/8 = −FLT_MAX/8. */
#define LRM_RENDER_OUTSIDE_DENSITY (-4.2535295e37f)
#define LRM_RENDER_TRANSMITTANCE_EPS 1e-10f
#define LRM_RENDER_WEIGHT_PADDING 0.01f /* added to the smoothed weights */
#define LRM_RENDER_PDF_EPS 1e-5f        /* added to the pdf weights; smallest CDF step */
/* +infinity without <math.h> (NVRTC has none): the negation of lrm_common's −infinity. */
#define LRM_RENDER_INF (-LRM_NEG_INF)

/* Unit direction of the ray through pixel centre (x, y) ∈ (0, 1)², camera (25 floats:
 * 4×4 camera-to-world row-major, 3×3 normalised intrinsics row-major). Computed in
 * double: one ray per pixel costs nothing, and the result is then exact to fp32. */
LRM_HD void lrm_render_ray_direction(const float* camera, double x, double y, double* dir) {
    const double fx = camera[16], sk = camera[17], cx = camera[18];
    const double fy = camera[20], cy = camera[21];
    const double x_lift = (x - cx + cy * sk / fy - sk * y / fy) / fx;
    const double y_lift = (y - cy) / fy;
    const double cam[3] = {x_lift, -y_lift, -1.0};
    double norm2 = 0.0;
    for (int a = 0; a < 3; ++a) {
        dir[a] = camera[4 * a] * cam[0] + camera[4 * a + 1] * cam[1] + camera[4 * a + 2] * cam[2];
        norm2 += dir[a] * dir[a];
    }
    const double inv = 1.0 / sqrt(norm2);
    for (int a = 0; a < 3; ++a) dir[a] *= inv;
}

/* Slab intersection of the ray o + t·d with [−1, 1]³; returns far > near. */
LRM_HD int lrm_render_ray_box(const double* o, const double* d, double* near_t, double* far_t) {
    double lo = (double)LRM_NEG_INF, hi = (double)LRM_RENDER_INF;
    for (int a = 0; a < 3; ++a) {
        const double inv = 1.0 / d[a];
        const double start = inv >= 0.0 ? -1.0 : 1.0;
        const double t_lo = (start - o[a]) * inv, t_hi = (-start - o[a]) * inv;
        lo = t_lo > lo ? t_lo : lo;
        hi = t_hi < hi ? t_hi : hi;
    }
    *near_t = lo;
    *far_t = hi;
    return hi > lo;
}

/* True if p lies inside the box, with the tolerance that keeps samples on its surface. */
LRM_HD int lrm_render_inside(const float* p) {
    const float limit = 1.0f + LRM_RENDER_INSIDE_TOLERANCE;
    return fabsf(p[0]) <= limit && fabsf(p[1]) <= limit && fabsf(p[2]) <= limit;
}

/* Decoded sample (σ_raw, r, g, b) from the MLP output and the sample position. */
LRM_HD void lrm_render_decode(float* decoded, const float* raw, const float* p) {
    if (lrm_render_inside(p)) {
        decoded[0] = raw[0];
        for (int c = 1; c < 4; ++c) decoded[c] = lrm_nerf_color(raw[c]);
    } else {
        decoded[0] = LRM_RENDER_OUTSIDE_DENSITY;
        decoded[1] = decoded[2] = decoded[3] = 0.0f;
    }
}

/* Backward of lrm_render_decode: draw (4) from ddecoded (4); 0 outside the box (the decoded
 * values there are constants), else dσ_raw passes through and drgb·1.002·s·(1 − s). */
LRM_HD void lrm_render_decode_backward(float* draw, const float* ddecoded, const float* raw, const float* p) {
    if (lrm_render_inside(p)) {
        draw[0] = ddecoded[0];
        for (int c = 1; c < 4; ++c) draw[c] = ddecoded[c] * lrm_nerf_color_derivative(raw[c]);
    } else {
        draw[0] = draw[1] = draw[2] = draw[3] = 0.0f;
    }
}

/* Composites one ray whose samples are the merge (by depth, a first on ties) of two
 * sorted sets: ta (na) with decoded sa (na, 4) and tb (nb) with sb (nb, 4); nb may be 0.
 * Writes rgb (3), the un-clamped depth (NaN → +∞), opacity, and weights (na + nb − 1)
 * when not NULL. */
LRM_HD void lrm_render_march_ray(float* rgb, float* depth, float* opacity, float* weights, const float* ta,
                                 const float* sa, long long na, const float* tb, const float* sb, long long nb,
                                 const float* background) {
    long long ia = 0, ib = 0;
    /* The first sample. */
    const int first_a = nb == 0 || (na > 0 && ta[0] <= tb[0]);
    float t0 = first_a ? ta[0] : tb[0];
    const float* s0 = first_a ? sa : sb;
    if (first_a) ia = 1; else ib = 1;
    float transmittance = 1.0f, total = 0.0f, depth_sum = 0.0f;
    float color[3] = {0.0f, 0.0f, 0.0f};
    for (long long k = 0; k + 1 < na + nb; ++k) {
        const int take_a = ib >= nb || (ia < na && ta[ia] <= tb[ib]);
        const float t1 = take_a ? ta[ia] : tb[ib];
        const float* s1 = take_a ? sa + 4 * ia : sb + 4 * ib;
        if (take_a) ++ia; else ++ib;
        const float delta = t1 - t0;
        const float sigma = lrm_softplus((s0[0] + s1[0]) * 0.5f - LRM_NERF_DENSITY_BIAS);
        const float alpha = 1.0f - expf(-sigma * delta);
        const float w = alpha * transmittance;
        transmittance *= 1.0f - alpha + LRM_RENDER_TRANSMITTANCE_EPS;
        for (int c = 0; c < 3; ++c) color[c] += w * ((s0[1 + c] + s1[1 + c]) * 0.5f);
        depth_sum += w * ((t0 + t1) * 0.5f);
        total += w;
        if (weights) weights[k] = w;
        t0 = t1;
        s0 = s1;
    }
    for (int c = 0; c < 3; ++c) rgb[c] = color[c] + background[c] * (1.0f - total);
    const float d = depth_sum / total;
    *depth = d != d ? LRM_RENDER_INF : d;
    *opacity = total;
}

/* Backward of lrm_render_march_ray (docs/derivations/render_march.md) for one ray: the gradients
 * of rgb, the clamped depth and opacity with respect to the decoded samples [σ_raw, rgb] of both
 * sets (ta/tb sorted, merged a-first on ties as the forward). Depths are constants.
 *   dsa (na, 4), dsb (nb, 4)  overwritten (dsb unused when nb = 0)
 *   grad_rgb (3) or NULL, grad_depth, grad_opacity: upstream gradients (0 when absent)
 *   depth_range [lo, hi]: the forward's clamp (NULL when grad_depth is 0)
 *   alpha_t: scratch of 2·(na + nb) floats, order: scratch of na + nb ints
 * Nothing per sample is kept from the forward. Pass 1 replays the forward (merge order, α_k, T_k,
 * Σw, Σw·t̄); pass 2 walks back with the transmittance-normalised suffix sum
 *   U_k = α_k·g_k + (1 − α_k + ε)·U_{k+1},  U_{n−1} = 0,   ∂L/∂α_k = T_k·(g_k − U_{k+1}),
 * g_k = ∂L/∂w_k = grad_rgb·(c̄_k − bg) + grad_opacity + grad_depth'·(t̄_k − D)/Σw, which needs no
 * division by (1 − α + ε) and no subtraction of nearly equal totals, so saturated intervals
 * (α = 1) stay exact. */
LRM_HD void lrm_render_march_ray_backward(float* dsa, float* dsb, const float* grad_rgb, float grad_depth,
                                          float grad_opacity, const float* ta, const float* sa, long long na,
                                          const float* tb, const float* sb, long long nb, const float* background,
                                          const float* depth_range, float* alpha_t, int* order) {
    const long long n = na + nb;
    float* alpha = alpha_t;         /* (n − 1) */
    float* trans = alpha_t + n - 1; /* (n − 1): T_k before interval k */
    /* Pass 1: the merge order and the forward's α, T, Σw and Σw·t̄, in its exact arithmetic. */
    long long ia = 0, ib = 0;
    for (long long k = 0; k < n; ++k) {
        const int take_a = ib >= nb || (ia < na && ta[ia] <= tb[ib]);
        order[k] = take_a ? (int)ia : (int)(na + ib);
        if (take_a) ++ia; else ++ib;
    }
#define LRM_MARCH_T(i) ((i) < na ? ta[(i)] : tb[(i) - na])
#define LRM_MARCH_S(i) ((i) < na ? sa + 4 * (i) : sb + 4 * ((i) - na))
    float transmittance = 1.0f, total = 0.0f, depth_sum = 0.0f;
    for (long long k = 0; k + 1 < n; ++k) {
        const int p = order[k], q = order[k + 1];
        const float t0 = LRM_MARCH_T(p), t1 = LRM_MARCH_T(q);
        const float* s0 = LRM_MARCH_S(p);
        const float* s1 = LRM_MARCH_S(q);
        const float sigma = lrm_softplus((s0[0] + s1[0]) * 0.5f - LRM_NERF_DENSITY_BIAS);
        const float a = 1.0f - expf(-sigma * (t1 - t0));
        const float w = a * transmittance;
        alpha[k] = a;
        trans[k] = transmittance;
        transmittance *= 1.0f - a + LRM_RENDER_TRANSMITTANCE_EPS;
        depth_sum += w * ((t0 + t1) * 0.5f);
        total += w;
    }
    /* The depth's gradient passes only where the clamp did not bite (PyTorch's clamp: lo ≤ D ≤ hi). */
    const float d = depth_sum / total;
    float g_depth = 0.0f;
    if (grad_depth != 0.0f && total != 0.0f && d == d && d >= depth_range[0] && d <= depth_range[1])
        g_depth = grad_depth / total;
    for (long long i = 0; i < 4 * na; ++i) dsa[i] = 0.0f;
    for (long long i = 0; i < 4 * nb; ++i) dsb[i] = 0.0f;
    /* Pass 2: back to front. */
    float suffix = 0.0f; /* U_{k+1} */
    for (long long k = n - 2; k >= 0; --k) {
        const int p = order[k], q = order[k + 1];
        const float t0 = LRM_MARCH_T(p), t1 = LRM_MARCH_T(q);
        const float* s0 = LRM_MARCH_S(p);
        const float* s1 = LRM_MARCH_S(q);
        float* d0 = p < na ? dsa + 4 * p : dsb + 4 * (p - na);
        float* d1 = q < na ? dsa + 4 * q : dsb + 4 * (q - na);
        const float a = alpha[k], w = a * trans[k];
        /* The depth term only when it is live: on a ray whose weights all underflow, d = 0/0 and 0·NaN would poison g. */
        float g = grad_opacity;
        if (g_depth != 0.0f) g += g_depth * ((t0 + t1) * 0.5f - d);
        if (grad_rgb) {
            for (int c = 0; c < 3; ++c) {
                g += grad_rgb[c] * ((s0[1 + c] + s1[1 + c]) * 0.5f - background[c]);
                const float dc = 0.5f * w * grad_rgb[c];
                d0[1 + c] += dc;
                d1[1 + c] += dc;
            }
        }
        const float d_alpha = trans[k] * (g - suffix);
        suffix = a * g + (1.0f - a + LRM_RENDER_TRANSMITTANCE_EPS) * suffix;
        /* α = 1 − e^(−σΔ): ∂α/∂σ = Δ·e^(−σΔ); σ = softplus(m − 1), m = (σ_raw,p + σ_raw,q)/2. */
        const float delta = t1 - t0;
        const float m = (s0[0] + s1[0]) * 0.5f - LRM_NERF_DENSITY_BIAS;
        const float sigma = lrm_softplus(m);
        const float d_m = d_alpha * delta * expf(-sigma * delta) * lrm_softplus_derivative(m);
        d0[0] += 0.5f * d_m;
        d1[0] += 0.5f * d_m;
    }
#undef LRM_MARCH_T
#undef LRM_MARCH_S
}

/* lrm_render_march_ray_backward for ray `ray` of flattened (B·R) ray lists: the per-ray slices of every tensor
 * (either optional set B and gradient may be null), the ray's image's depth range (rays_per_image rays an image), and
 * its own scratch (alpha_t 2·(Sa + Sb), order Sa + Sb). Shared by the CPU loop and the CUDA kernel. */
LRM_HD void lrm_render_march_backward_at(long long ray, float* ddecoded_a, float* ddecoded_b, const float* drgb,
                                         const float* ddepth, const float* dopacity, const float* depths_a,
                                         const float* decoded_a, long long samples_a, const float* depths_b,
                                         const float* decoded_b, long long samples_b, const float* background,
                                         const float* depth_range, long long rays_per_image, float* alpha_t,
                                         int* order) {
    lrm_render_march_ray_backward(
        ddecoded_a + 4 * ray * samples_a, samples_b > 0 ? ddecoded_b + 4 * ray * samples_b : nullptr,
        drgb != nullptr ? drgb + 3 * ray : nullptr, ddepth != nullptr ? ddepth[ray] : 0.0f,
        dopacity != nullptr ? dopacity[ray] : 0.0f, depths_a + ray * samples_a, decoded_a + 4 * ray * samples_a,
        samples_a, samples_b > 0 ? depths_b + ray * samples_b : nullptr,
        samples_b > 0 ? decoded_b + 4 * ray * samples_b : nullptr, samples_b, background,
        depth_range != nullptr ? depth_range + 2 * (ray / rays_per_image) : nullptr, alpha_t, order);
}

/* Importance depths of one ray (EG3D sample_pdf, det=True). t: nc coarse depths,
 * w: nc − 1 coarse weights, fine: nf outputs, cdf: scratch of nc − 2 floats. nc >= 4. */
LRM_HD void lrm_render_importance_ray(float* fine, const float* t, const float* w, long long nc, long long nf,
                                      float* cdf) {
    const long long m = nc - 3; /* pdf weights a[1:-1] */
    /* Smoothed weight a_k = (max(w_{k-1}, w_k) + max(w_k, w_{k+1}))/2 + 0.01 (max-pool k2 s1 p1,
     * then avg-pool k2 s1), with out-of-range neighbours ignored; q_j = a_{j+1} + eps. */
    float sum = 0.0f;
    for (long long j = 0; j < m; ++j) {
        const long long k = j + 1; /* 1 ≤ k ≤ nc − 3, so w_{k−1}, w_k, w_{k+1} all exist */
        const float left = w[k - 1] > w[k] ? w[k - 1] : w[k];
        const float right = w[k] > w[k + 1] ? w[k] : w[k + 1];
        const float q = (left + right) * 0.5f + LRM_RENDER_WEIGHT_PADDING + LRM_RENDER_PDF_EPS;
        cdf[j + 1] = q;
        sum += q;
    }
    cdf[0] = 0.0f;
    for (long long j = 0; j < m; ++j) cdf[j + 1] = cdf[j] + cdf[j + 1] / sum;
    for (long long s = 0; s < nf; ++s) {
        const float u = nf > 1 ? (float)s / (float)(nf - 1) : 0.0f;
        long long ind = 0; /* searchsorted right: entries ≤ u */
        while (ind <= m && cdf[ind] <= u) ++ind;
        const long long below = ind - 1 > 0 ? ind - 1 : 0;
        const long long above = ind < m ? ind : m;
        float denom = cdf[above] - cdf[below];
        if (denom < LRM_RENDER_PDF_EPS) denom = 1.0f;
        /* Bins are the coarse midpoints b_k = (t_k + t_{k+1})/2. */
        const float b_below = (t[below] + t[below + 1]) * 0.5f;
        const float b_above = (t[above] + t[above + 1]) * 0.5f;
        fine[s] = b_below + (u - cdf[below]) / denom * (b_above - b_below);
    }
}

#endif /* LRM_RENDER_CUH */
