/*
 * triplane.cuh — bilinear tap computation of grid_sample(mode='bilinear',
 * padding_mode='zeros', align_corners=False), shared by the triplane sampler
 * forward and backward (docs/derivations/triplane_sample.md).
 *
 * A normalised coordinate u ∈ [−1, 1] addresses pixel centres, so −1 is the left
 * edge of the first pixel and +1 the right edge of the last:
 *   ix = ((u + 1)·W − 1)/2           (PyTorch's grid_sampler_unnormalize)
 * The four corners are x0 = ⌊ix⌋, x1 = x0 + 1 (same for y) with weights
 *   w(x0) = x1 − ix,  w(x1) = ix − x0.
 * Zero padding: a corner outside the image contributes nothing (its weight is
 * kept, its value is 0). Non-finite or far-away coordinates give four invalid
 * corners, i.e. zeros, and never an out-of-range integer conversion.
 */
#ifndef LRM_TRIPLANE_CUH
#define LRM_TRIPLANE_CUH

#include "lrm_common.cuh"

/* Normalised coordinate → continuous pixel coordinate (align_corners=False). */
LRM_HD float lrm_grid_unnormalize(float coord, int size) {
    return ((coord + 1.0f) * (float)size - 1.0f) * 0.5f;
}

/* Corners (x0, y0), (x1, y0), (x0, y1), (x1, y1) of one bilinear sample. */
typedef struct lrm_bilinear_taps {
    int x0, y0;           /* top-left corner, meaningful only where valid */
    float w00, w01;       /* weights of (y0, x0) and (y0, x1) */
    float w10, w11;       /* weights of (y1, x0) and (y1, x1) */
    int valid00, valid01; /* corner lies inside the image */
    int valid10, valid11;
    float wx0, wx1;       /* 1-D weights: w00 = wx0·wy0 etc. (for the coordinate gradient) */
    float wy0, wy1;
} lrm_bilinear_taps;

LRM_HD lrm_bilinear_taps lrm_bilinear_taps_at(float ix, float iy, int width, int height) {
    lrm_bilinear_taps t;
    const float fx0 = floorf(ix);
    const float fy0 = floorf(iy);
    const float wx1 = ix - fx0, wx0 = (fx0 + 1.0f) - ix;
    const float wy1 = iy - fy0, wy0 = (fy0 + 1.0f) - iy;
    t.w00 = wx0 * wy0;
    t.w01 = wx1 * wy0;
    t.w10 = wx0 * wy1;
    t.w11 = wx1 * wy1;
    t.wx0 = wx0;
    t.wx1 = wx1;
    t.wy0 = wy0;
    t.wy1 = wy1;
    /* A float range test first (NaN compares false), so the conversion to int is in range;
     * then the corners are validated as integers: above 2^24, (float)(width − 1) may round
     * up to width, and the float test alone would let x0 = width through. */
    const int x_near = fx0 >= -1.0f && fx0 <= (float)(width - 1);
    const int y_near = fy0 >= -1.0f && fy0 <= (float)(height - 1);
    t.x0 = x_near ? (int)fx0 : 0;
    t.y0 = y_near ? (int)fy0 : 0;
    const int vx0 = x_near && t.x0 >= 0 && t.x0 <= width - 1;
    const int vx1 = x_near && t.x0 + 1 <= width - 1;
    const int vy0 = y_near && t.y0 >= 0 && t.y0 <= height - 1;
    const int vy1 = y_near && t.y0 + 1 <= height - 1;
    t.valid00 = vx0 && vy0;
    t.valid01 = vx1 && vy0;
    t.valid10 = vx0 && vy1;
    t.valid11 = vx1 && vy1;
    return t;
}

/* The point coordinates plane `plane` reads: 0 → (x, y), 1 → (x, z), 2 → (z, y) (OpenLRM's order);
 * axis_u/axis_v receive their indices into the point (0 = x, 1 = y, 2 = z). */
LRM_HD void lrm_triplane_axes(int plane, int* axis_u, int* axis_v) {
    *axis_u = plane == 2 ? 2 : 0;
    *axis_v = plane == 1 ? 2 : 1;
}

/* Gradient of a bilinear sample with respect to its normalised coordinates (u, v), given
 * d_ij = Σ_c dout_c · value_ij,c for each corner (0 for corners outside the image):
 *   ∂/∂ix = (d01 − d00)·wy0 + (d11 − d10)·wy1,  ∂/∂iy = (d10 − d00)·wx0 + (d11 − d01)·wx1,
 *   ix = ((u + 1)·W − 1)/2, so ∂/∂u = ∂/∂ix · W/2 (and ∂/∂v = ∂/∂iy · H/2).
 * The weights are piecewise linear: at integer pixel coordinates this is the one-sided
 * derivative of the cell floor() picks, as in PyTorch. */
LRM_HD void lrm_bilinear_coord_grad(const lrm_bilinear_taps* t, float d00, float d01, float d10, float d11,
                                    int width, int height, float* du, float* dv) {
    const float gix = (d01 - d00) * t->wy0 + (d11 - d10) * t->wy1;
    const float giy = (d10 - d00) * t->wx0 + (d11 - d01) * t->wx1;
    *du = gix * (float)width * 0.5f;
    *dv = giy * (float)height * 0.5f;
}

#endif /* LRM_TRIPLANE_CUH */
