// resize.cpp — image/plane resize matching torch.nn.functional.interpolate
// (align_corners=False) for mode='bilinear' and 'bicubic', antialias False/True.
//
//   out (P, OH, OW), inp (P, IH, IW), P independent planes (B·C images).
//
// Separable, in PyTorch's order: every output pixel is Σ_y w_y (Σ_x w_x in[y, x]).
//   1. Per axis, a tap table: for each output index its input indices and weights
//      (kernels/resize.cuh has the per-index math for all four variants).
//   2. Horizontal pass: tmp (P, IH, OW) = rows of inp filtered along x.
//   3. Vertical pass:   out (P, OH, OW) = rows of tmp combined along y, vectorised
//      over the output row.
// Taps are computed in double and rounded once (see resize.cuh on why this is
// closer to the exact result than PyTorch's own float32 kernel); pixel sums run in
// float in tap order, as in PyTorch. Both passes are OpenMP loops over rows.
//
// Non-antialias taps may repeat an index (border clamping); antialias taps are a
// contiguous window [xmin, xmin + count) of varying length, so the table stores
// explicit indices and a per-output tap count.
//
// Two entry points: lrm_resize_forward maps coordinates with scale = in/out
// (interpolate(size=...)); lrm_resize_scaled_forward with scale = 1/scale_factor
// (interpolate(scale_factor=...), as DINOv2's position-table resize calls it).
//
// Backward (docs/derivations/resize.md): the forward is out = A_y · inp · A_xᵀ per plane
// with the float tap matrices A (OH × IH, OW × IW), so dinp = A_yᵀ · dout · A_x, exactly
// the adjoint of the float forward. The tap tables are transposed once (for every input
// index the (output index, weight) pairs that read it, in output order), so both passes
// are gathers: no scatter, no atomics, results independent of the thread count.
//   1. Vertical adjoint:   tmp (P, IH, OW) = A_yᵀ · dout
//   2. Horizontal adjoint: dinp (P, IH, IW) = tmp · A_x      (dinp is overwritten)
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "resize.cuh"

namespace lrm {
namespace {

struct TapTable {
    int64_t width = 0;            // taps per output index (max)
    std::vector<int64_t> count;   // (out) taps used
    std::vector<int64_t> index;   // (out, width)
    std::vector<float> weight;    // (out, width)
};

// scale: source pixels per output pixel (in/out, or 1/scale_factor).
TapTable make_taps(int64_t in_size, int64_t out_size, double scale, bool bicubic, float cubic_a, bool antialias) {
    TapTable t;
    const double a = static_cast<double>(cubic_a);
    if (antialias) {
        const double support = bicubic ? 2.0 : 1.0;
        std::vector<lrm_aa_window> windows(out_size);
        for (int64_t o = 0; o < out_size; ++o) {
            windows[o] = lrm_aa_window_at(scale, support, o, in_size);
            t.width = std::max<int64_t>(t.width, windows[o].xsize);
        }
        t.width = std::max<int64_t>(t.width, 1);
        t.count.assign(out_size, 0);
        t.index.assign(out_size * t.width, 0);
        t.weight.assign(out_size * t.width, 0.0f);
        std::vector<double> w(t.width);
        for (int64_t o = 0; o < out_size; ++o) {
            const lrm_aa_window& window = windows[o];
            double total = 0.0;
            for (int64_t j = 0; j < window.xsize; ++j) {
                const double x = lrm_aa_tap_position(&window, j);
                w[j] = bicubic ? lrm_cubic_filter(x, a) : lrm_triangle_filter(x);
                total += w[j];
            }
            // PIL/PyTorch: normalise to sum 1 unless every tap is zero.
            const double norm = total != 0.0 ? 1.0 / total : 1.0;
            for (int64_t j = 0; j < window.xsize; ++j) {
                t.weight[o * t.width + j] = static_cast<float>(w[j] * norm);
                t.index[o * t.width + j] = window.xmin + j;
            }
            t.count[o] = window.xsize;
        }
    } else if (!bicubic) {
        t.width = 2;
        t.count.assign(out_size, 2);
        t.index.resize(out_size * 2);
        t.weight.resize(out_size * 2);
        for (int64_t o = 0; o < out_size; ++o) {
            const double src = lrm_resize_source_index(scale, o, /*clamp_negative=*/1);
            // Clamped in double, so the conversion is in range whatever the scale.
            const int64_t i0 = static_cast<int64_t>(std::min(src, static_cast<double>(in_size - 1)));
            const int64_t offset = i0 < in_size - 1 ? 1 : 0;
            const double lambda1 = std::min(std::max(src - static_cast<double>(i0), 0.0), 1.0);
            t.index[2 * o] = i0;
            t.index[2 * o + 1] = i0 + offset;
            t.weight[2 * o] = static_cast<float>(1.0 - lambda1);
            t.weight[2 * o + 1] = static_cast<float>(lambda1);
        }
    } else {
        t.width = 4;
        t.count.assign(out_size, 4);
        t.index.resize(out_size * 4);
        t.weight.resize(out_size * 4);
        for (int64_t o = 0; o < out_size; ++o) {
            const double src = lrm_resize_source_index(scale, o, /*clamp_negative=*/0);
            const double floor_src = std::floor(src);
            // Beyond [−2, in + 1] every tap clamps to the same border pixel anyway: clamping the
            // base in double first keeps the conversion and i0 − 1 + j in range.
            const int64_t i0 = static_cast<int64_t>(
                std::min(std::max(floor_src, -2.0), static_cast<double>(in_size) + 1.0));
            lrm_cubic_weights(src - floor_src, a, &t.weight[4 * o]);
            for (int64_t j = 0; j < 4; ++j) t.index[4 * o + j] = std::min(std::max(i0 - 1 + j, int64_t{0}), in_size - 1);
        }
    }
    return t;
}

// The transposed table: for input index i, entries [start[i], start[i+1]) list the output
// indices that read it (ascending) and their weights. Repeated taps (border clamping) stay
// separate entries, so the sum is the same as the forward's.
struct AdjointTable {
    std::vector<int64_t> start;   // (in + 1)
    std::vector<int64_t> output;  // (entries)
    std::vector<float> weight;    // (entries)
};

AdjointTable transpose_taps(const TapTable& t, int64_t in_size, int64_t out_size) {
    AdjointTable a;
    a.start.assign(in_size + 1, 0);
    for (int64_t o = 0; o < out_size; ++o)
        for (int64_t j = 0; j < t.count[o]; ++j) ++a.start[t.index[o * t.width + j] + 1];
    for (int64_t i = 0; i < in_size; ++i) a.start[i + 1] += a.start[i];
    a.output.resize(a.start[in_size]);
    a.weight.resize(a.start[in_size]);
    std::vector<int64_t> next(a.start.begin(), a.start.end() - 1);
    for (int64_t o = 0; o < out_size; ++o)
        for (int64_t j = 0; j < t.count[o]; ++j) {
            const int64_t at = next[t.index[o * t.width + j]]++;
            a.output[at] = o;
            a.weight[at] = t.weight[o * t.width + j];
        }
    return a;
}

// Both axes' taps as the forward makes them (scale_factor <= 0: in/out).
TapTable axis_taps(int64_t in_size, int64_t out_size, double scale_factor, bool bicubic, float cubic_a,
                   bool antialias) {
    return make_taps(in_size, out_size, lrm_resize_scale_from_factor(scale_factor, in_size, out_size), bicubic,
                     cubic_a, antialias);
}

void resize_backward(float* dinp, const float* dout, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h,
                     int64_t out_w, bool bicubic, float cubic_a, bool antialias, double scale_factor_h,
                     double scale_factor_w) {
    const AdjointTable adj_x =
        transpose_taps(axis_taps(in_w, out_w, scale_factor_w, bicubic, cubic_a, antialias), in_w, out_w);
    const AdjointTable adj_y =
        transpose_taps(axis_taps(in_h, out_h, scale_factor_h, bicubic, cubic_a, antialias), in_h, out_h);
    Scratch tmp(planes * in_h * out_w);
    const int threads = num_threads();
    const int64_t in_rows = planes * in_h;

    // 1. tmp[p, i, :] = Σ_{(y, w) reading row i} w · dout[p, y, :]
#pragma omp parallel for num_threads(threads) schedule(static) if (in_rows * out_w > 16384)
    for (int64_t row = 0; row < in_rows; ++row) {
        const int64_t p = row / in_h, i = row % in_h;
        float* dst = tmp.data() + row * out_w;
        const float* plane = dout + p * out_h * out_w;
        for (int64_t x = 0; x < out_w; ++x) dst[x] = 0.0f;
        for (int64_t e = adj_y.start[i]; e < adj_y.start[i + 1]; ++e) {
            const float* src = plane + adj_y.output[e] * out_w;
            const float w = adj_y.weight[e];
            for (int64_t x = 0; x < out_w; ++x) dst[x] += src[x] * w;
        }
    }

    // 2. dinp[p, i, c] = Σ_{(x, w) reading column c} w · tmp[p, i, x]
#pragma omp parallel for num_threads(threads) schedule(static) if (in_rows * in_w > 16384)
    for (int64_t row = 0; row < in_rows; ++row) {
        const float* src = tmp.data() + row * out_w;
        float* dst = dinp + row * in_w;
        for (int64_t c = 0; c < in_w; ++c) {
            float acc = 0.0f;
            for (int64_t e = adj_x.start[c]; e < adj_x.start[c + 1]; ++e) acc += src[adj_x.output[e]] * adj_x.weight[e];
            dst[c] = acc;
        }
    }
}

void resize_forward(float* out, const float* inp, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h,
                    int64_t out_w, bool bicubic, float cubic_a, bool antialias, double scale_factor_h,
                    double scale_factor_w) {
    const TapTable taps_x = axis_taps(in_w, out_w, scale_factor_w, bicubic, cubic_a, antialias);
    const TapTable taps_y = axis_taps(in_h, out_h, scale_factor_h, bicubic, cubic_a, antialias);
    Scratch tmp(planes * in_h * out_w);
    const int threads = num_threads();

    const int64_t in_rows = planes * in_h;
#pragma omp parallel for num_threads(threads) schedule(static) if (in_rows * out_w > 16384)
    for (int64_t row = 0; row < in_rows; ++row) {
        const float* src = inp + row * in_w;
        float* dst = tmp.data() + row * out_w;
        for (int64_t x = 0; x < out_w; ++x) {
            const int64_t* idx = &taps_x.index[x * taps_x.width];
            const float* w = &taps_x.weight[x * taps_x.width];
            const int64_t n = taps_x.count[x];
            float acc = n > 0 ? src[idx[0]] * w[0] : 0.0f;
            for (int64_t j = 1; j < n; ++j) acc += src[idx[j]] * w[j];
            dst[x] = acc;
        }
    }

    const int64_t out_rows = planes * out_h;
#pragma omp parallel for num_threads(threads) schedule(static) if (out_rows * out_w > 16384)
    for (int64_t row = 0; row < out_rows; ++row) {
        const int64_t p = row / out_h, y = row % out_h;
        const int64_t* idx = &taps_y.index[y * taps_y.width];
        const float* w = &taps_y.weight[y * taps_y.width];
        const int64_t n = taps_y.count[y];
        const float* plane = tmp.data() + p * in_h * out_w;
        float* dst = out + row * out_w;
        if (n <= 0) {
            for (int64_t x = 0; x < out_w; ++x) dst[x] = 0.0f;
            continue;
        }
        const float* first = plane + idx[0] * out_w;
        for (int64_t x = 0; x < out_w; ++x) dst[x] = first[x] * w[0];
        for (int64_t j = 1; j < n; ++j) {
            const float* src = plane + idx[j] * out_w;
            const float wj = w[j];
            for (int64_t x = 0; x < out_w; ++x) dst[x] += src[x] * wj;
        }
    }
}

// Checks shared by both entry points.
void check_resize_args(const Args& args, const float* out, const float* inp, int64_t planes, int64_t in_height,
                       int64_t in_width, int64_t out_height, int64_t out_width, int32_t mode, float cubic_a,
                       const char* out_name = "out", const char* inp_name = "inp") {
    args.not_null(out, out_name).not_null(inp, inp_name);
    args.positive(planes, "planes").positive(in_height, "in_height").positive(in_width, "in_width");
    args.positive(out_height, "out_height").positive(out_width, "out_width");
    if (mode != LRM_RESIZE_BILINEAR && mode != LRM_RESIZE_BICUBIC)
        args.fail(LRM_STATUS_INVALID_ARGUMENT, "mode must be LRM_RESIZE_BILINEAR (0) or LRM_RESIZE_BICUBIC (1), got %d",
                  mode);
    args.finite(cubic_a, "cubic_a");
    args.elements({planes, in_height, in_width}, "inp (planes x in_height x in_width)");
    args.elements({planes, out_height, out_width}, "out (planes x out_height x out_width)");
    args.elements({planes, in_height, out_width}, "intermediate (planes x in_height x out_width)");
}

// The source coordinates an axis reads span out_size / scale_factor input pixels. A factor
// far below out/in would put them beyond any image (and beyond what the tap tables' integer
// indices, here and in kernels/resize.cu, can hold), so they are bounded by 2^31.
void check_scale_factors(const Args& args, double scale_factor_h, double scale_factor_w, int64_t out_height,
                         int64_t out_width) {
    if (!(scale_factor_h > 0.0) || !(scale_factor_w > 0.0) || !std::isfinite(scale_factor_h) ||
        !std::isfinite(scale_factor_w))
        args.fail(LRM_STATUS_INVALID_ARGUMENT, "scale factors must be finite and > 0, got %g x %g", scale_factor_h,
                  scale_factor_w);
    constexpr double kMaxSourceExtent = 2147483648.0;  // 2^31
    const double factors[2] = {scale_factor_h, scale_factor_w};
    const int64_t sizes[2] = {out_height, out_width};
    const char* names[2] = {"height", "width"};
    for (int axis = 0; axis < 2; ++axis) {
        const double extent = static_cast<double>(sizes[axis]) / factors[axis];
        if (!(extent <= kMaxSourceExtent))
            args.fail(LRM_STATUS_INVALID_ARGUMENT,
                      "scale factor %g along the %s is too small: the output's %lld pixels would read a source "
                      "extent of %g pixels (out / factor), more than 2^31",
                      factors[axis], names[axis], static_cast<long long>(sizes[axis]), extent);
    }
}

}  // namespace
}  // namespace lrm

extern "C" LRM_API lrm_status lrm_resize_forward(float* out, const float* inp, int64_t planes, int64_t in_height,
                                                 int64_t in_width, int64_t out_height, int64_t out_width, int32_t mode,
                                                 float cubic_a, int32_t antialias) {
    return lrm::guarded("lrm_resize_forward", [&](const lrm::Args& args) {
        lrm::check_resize_args(args, out, inp, planes, in_height, in_width, out_height, out_width, mode, cubic_a);
        lrm::resize_forward(out, inp, planes, in_height, in_width, out_height, out_width, mode == LRM_RESIZE_BICUBIC,
                            cubic_a, antialias != 0, 0.0, 0.0);
    });
}

extern "C" LRM_API lrm_status lrm_resize_scaled_forward(float* out, const float* inp, int64_t planes,
                                                        int64_t in_height, int64_t in_width, int64_t out_height,
                                                        int64_t out_width, int32_t mode, float cubic_a,
                                                        int32_t antialias, double scale_factor_h,
                                                        double scale_factor_w) {
    return lrm::guarded("lrm_resize_scaled_forward", [&](const lrm::Args& args) {
        lrm::check_resize_args(args, out, inp, planes, in_height, in_width, out_height, out_width, mode, cubic_a);
        lrm::check_scale_factors(args, scale_factor_h, scale_factor_w, out_height, out_width);
        lrm::resize_forward(out, inp, planes, in_height, in_width, out_height, out_width, mode == LRM_RESIZE_BICUBIC,
                            cubic_a, antialias != 0, scale_factor_h, scale_factor_w);
    });
}

extern "C" LRM_API lrm_status lrm_resize_backward(float* dinp, const float* dout, int64_t planes, int64_t in_height,
                                                  int64_t in_width, int64_t out_height, int64_t out_width,
                                                  int32_t mode, float cubic_a, int32_t antialias) {
    return lrm::guarded("lrm_resize_backward", [&](const lrm::Args& args) {
        lrm::check_resize_args(args, dinp, dout, planes, in_height, in_width, out_height, out_width, mode, cubic_a,
                               "dinp", "dout");
        lrm::resize_backward(dinp, dout, planes, in_height, in_width, out_height, out_width,
                             mode == LRM_RESIZE_BICUBIC, cubic_a, antialias != 0, 0.0, 0.0);
    });
}

extern "C" LRM_API lrm_status lrm_resize_scaled_backward(float* dinp, const float* dout, int64_t planes,
                                                         int64_t in_height, int64_t in_width, int64_t out_height,
                                                         int64_t out_width, int32_t mode, float cubic_a,
                                                         int32_t antialias, double scale_factor_h,
                                                         double scale_factor_w) {
    return lrm::guarded("lrm_resize_scaled_backward", [&](const lrm::Args& args) {
        lrm::check_resize_args(args, dinp, dout, planes, in_height, in_width, out_height, out_width, mode, cubic_a,
                               "dinp", "dout");
        lrm::check_scale_factors(args, scale_factor_h, scale_factor_w, out_height, out_width);
        lrm::resize_backward(dinp, dout, planes, in_height, in_width, out_height, out_width,
                             mode == LRM_RESIZE_BICUBIC, cubic_a, antialias != 0, scale_factor_h, scale_factor_w);
    });
}
