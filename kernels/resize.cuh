/*
 * resize.cuh — 1-D filter taps of torch.nn.functional.interpolate
 * (align_corners=False), bilinear and bicubic, with and without antialias.
 * A 2-D resize is separable: every output pixel is Σ_y w_y Σ_x w_x in[y, x].
 *
 * Without antialias (PyTorch's upsample_bilinear2d / upsample_bicubic2d):
 *   scale = in/out (or 1/scale_factor, see lrm_resize_scale_from_factor),
 *   src = (dst + 0.5)·scale − 0.5
 *   bilinear: src clamped at 0 from below, taps ⌊src⌋ and ⌊src⌋+1 (the second one
 *             collapses onto the first at the last pixel), weights 1−t, t.
 *   bicubic : src not clamped, taps ⌊src⌋−1 … ⌊src⌋+2 clamped to the border,
 *             Keys weights of t = src − ⌊src⌋ with coefficient a (PyTorch: −0.75).
 * With antialias (PyTorch's _upsample_*2d_aa, the same as PIL's resampling):
 *   support = s·max(scale, 1) with s = 1 (bilinear) or 2 (bicubic),
 *   center  = scale·(dst + 0.5),
 *   taps j ∈ [xmin, xmin + xsize): xmin = max(⌊center − support + 0.5⌋, 0),
 *                                  xmax = min(⌊center + support + 0.5⌋, in),
 *   w(j) = filter((j − center + 0.5)·invscale), invscale = 1/scale when
 *   downscaling, else 1; weights normalised to sum 1 (taps beyond the border are
 *   dropped, not clamped). filter = triangle (bilinear) or Keys with a (PIL: −0.5).
 *
 * Precision: tap positions and weights are computed in double (one table entry per
 * output row/column, so the cost is nil even on a GPU) and rounded to float once;
 * pixels are then accumulated in float. This is PyTorch's formula evaluated
 * accurately: PyTorch's float32 kernel rounds scale = in/out to float, which moves
 * its weights by up to one float ulp of the source coordinate (3e-5 at x ≈ 300),
 * so for large downscales torch-float32 itself is ~1e-5 away from the exact result
 * (and from interpolate on float64 inputs), while this stays ~1e-7 from it.
 */
#ifndef LRM_RESIZE_CUH
#define LRM_RESIZE_CUH

#include "lrm_common.cuh"

/* Keys' cubic convolution kernel for 0 ≤ |x| < 1 and for 1 ≤ |x| < 2. */
LRM_HD double lrm_cubic_convolution1(double x, double a) {
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
}
LRM_HD double lrm_cubic_convolution2(double x, double a) {
    return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
}

/* Weights of the taps ⌊src⌋−1, ⌊src⌋, ⌊src⌋+1, ⌊src⌋+2 for t = src − ⌊src⌋. */
LRM_HD void lrm_cubic_weights(double t, double a, float* w) {
    w[0] = (float)lrm_cubic_convolution2(t + 1.0, a);
    w[1] = (float)lrm_cubic_convolution1(t, a);
    w[2] = (float)lrm_cubic_convolution1(1.0 - t, a);
    w[3] = (float)lrm_cubic_convolution2(2.0 - t, a);
}

/* Keys kernel as an antialias filter: support 2. */
LRM_HD double lrm_cubic_filter(double x, double a) {
    x = fabs(x);
    if (x < 1.0) return lrm_cubic_convolution1(x, a);
    if (x < 2.0) return lrm_cubic_convolution2(x, a);
    return 0.0;
}

/* Triangle (tent) filter of bilinear antialiasing: support 1. */
LRM_HD double lrm_triangle_filter(double x) {
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* in/out, as PyTorch's area_pixel_compute_scale when no scale factor is given. */
LRM_HD double lrm_resize_scale(long long in_size, long long out_size) {
    return (double)in_size / (double)out_size;
}

/* Coordinate scale of interpolate(scale_factor=s) (PyTorch's area_pixel_compute_scale
 * with a scale given): 1/s, not in/out. The two differ unless out = in·s exactly, e.g.
 * DINOv2's position table 37 → 16 with s = 16/37 + offset. s <= 0 falls back to in/out. */
LRM_HD double lrm_resize_scale_from_factor(double scale_factor, long long in_size, long long out_size) {
    return scale_factor > 0.0 ? 1.0 / scale_factor : lrm_resize_scale(in_size, out_size);
}

/* Source coordinate of output index dst (align_corners=False). Linear modes clamp
 * negative coordinates to 0; cubic does not (its taps are clamped instead). */
LRM_HD double lrm_resize_source_index(double scale, long long dst, int clamp_negative) {
    const double src = scale * ((double)dst + 0.5) - 0.5;
    return (clamp_negative && src < 0.0) ? 0.0 : src;
}

/* Antialias window of one output index. */
typedef struct lrm_aa_window {
    long long xmin;  /* first input index read */
    long long xsize; /* number of input indices read */
    double center;   /* scale·(dst + 0.5), in input pixels */
    double invscale; /* filter stretch: 1/scale when downscaling, else 1 */
} lrm_aa_window;

/* filter_support: 1 for bilinear, 2 for bicubic (before widening by the scale). */
LRM_HD lrm_aa_window lrm_aa_window_at(double scale, double filter_support, long long dst,
                                      long long in_size) {
    lrm_aa_window w;
    const double support = scale >= 1.0 ? filter_support * scale : filter_support;
    w.center = scale * ((double)dst + 0.5);
    w.invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    /* Truncation toward zero, as PyTorch's static_cast. Both ends are clamped to [0, in] in
     * double first, which truncates to the same indices and keeps the conversion in range
     * for any scale; a window wholly outside the input is empty (xsize 0, never negative). */
    const double in_end = (double)in_size;
    const double low = w.center - support + 0.5;
    const double high = w.center + support + 0.5;
    const long long xmin = (long long)(low < 0.0 ? 0.0 : (low > in_end ? in_end : low));
    const long long xmax = (long long)(high < 0.0 ? 0.0 : (high > in_end ? in_end : high));
    w.xmin = xmin;
    w.xsize = xmax > xmin ? xmax - xmin : 0;
    return w;
}

/* Filter argument of the j-th tap of a window (j counts from xmin). */
LRM_HD double lrm_aa_tap_position(const lrm_aa_window* w, long long j) {
    return ((double)(j + w->xmin) - w->center + 0.5) * w->invscale;
}

#endif /* LRM_RESIZE_CUH */
