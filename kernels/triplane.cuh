/*
 * triplane.cuh — bilinear tap computation of grid_sample(mode='bilinear',
 * padding_mode='zeros', align_corners=False), shared by the triplane sampler
 * forward and (later) backward.
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
    /* Decide validity in float (NaN compares false) before converting to int. */
    const int x_near = fx0 >= -1.0f && fx0 <= (float)(width - 1);
    const int y_near = fy0 >= -1.0f && fy0 <= (float)(height - 1);
    t.x0 = x_near ? (int)fx0 : 0;
    t.y0 = y_near ? (int)fy0 : 0;
    const int vx0 = x_near && t.x0 >= 0;
    const int vx1 = x_near && t.x0 + 1 <= width - 1;
    const int vy0 = y_near && t.y0 >= 0;
    const int vy1 = y_near && t.y0 + 1 <= height - 1;
    t.valid00 = vx0 && vy0;
    t.valid01 = vx1 && vy0;
    t.valid10 = vx0 && vy1;
    t.valid11 = vx1 && vy1;
    return t;
}

#endif /* LRM_TRIPLANE_CUH */
