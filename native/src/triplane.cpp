// triplane.cpp — bilinear sampling of three axis-aligned feature planes at 3-D points
// (the triplane NeRF's feature lookup, LRM §3.3).
//
//   out[b, n, p·C + c] = grid_sample(planes[b, p], uv_p(points[b, n]))[c]
//   out (B, N, 3·C), planes (B, 3, H, W, C) channels-last, points (B, N, 3) in [−1, 1]³
//   uv_0 = (x, y), uv_1 = (x, z), uv_2 = (z, y)   (OpenLRM's plane order; u → width, v → height)
//
// Exactly grid_sample(mode='bilinear', padding_mode='zeros', align_corners=False)
// per plane; the tap math is kernels/triplane.cuh. Channels-last planes make each
// of the 4 corners one contiguous C-vector, so a sample is 4 vectorised axpys of
// length C. Points are independent: one OpenMP loop over all (batch, point).
//
// Backward (to come): dplanes += taps·dout (scatter; per-thread or sorted to avoid
// an atomics storm on the GPU), dpoints from the weight derivatives.
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <cmath>

#include "triplane.cuh"

namespace lrm {
namespace {

inline void add_corner(float* __restrict dst, const float* __restrict src, float w, int64_t channels) {
    for (int64_t c = 0; c < channels; ++c) dst[c] += w * src[c];
}

void triplane_sample_forward(float* out, const float* planes, const float* points, int64_t batch, int64_t num_points,
                             int64_t channels, int64_t height, int64_t width) {
    const int64_t total = batch * num_points;
    const int64_t plane_size = height * width * channels;
    const int w = static_cast<int>(width), h = static_cast<int>(height);
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (total * channels > 8192)
    for (int64_t i = 0; i < total; ++i) {
        const int64_t b = i / num_points;
        const float* p = points + i * 3;
        const float coords[3][2] = {{p[0], p[1]}, {p[0], p[2]}, {p[2], p[1]}};
        for (int plane = 0; plane < 3; ++plane) {
            const float* base = planes + (b * 3 + plane) * plane_size;
            float* dst = out + i * 3 * channels + plane * channels;
            for (int64_t c = 0; c < channels; ++c) dst[c] = 0.0f;
            const float ix = lrm_grid_unnormalize(coords[plane][0], w);
            const float iy = lrm_grid_unnormalize(coords[plane][1], h);
            const lrm_bilinear_taps t = lrm_bilinear_taps_at(ix, iy, w, h);
            // Offsets only, so no pointer is formed outside the plane for invalid corners.
            const int64_t at00 = (static_cast<int64_t>(t.y0) * width + t.x0) * channels;
            const int64_t down = width * channels;
            // PyTorch's order: nw, ne, sw, se.
            if (t.valid00) add_corner(dst, base + at00, t.w00, channels);
            if (t.valid01) add_corner(dst, base + at00 + channels, t.w01, channels);
            if (t.valid10) add_corner(dst, base + at00 + down, t.w10, channels);
            if (t.valid11) add_corner(dst, base + at00 + down + channels, t.w11, channels);
        }
    }
}

}  // namespace
}  // namespace lrm

extern "C" LRM_API lrm_status lrm_triplane_sample_forward(float* out, const float* planes, const float* points,
                                                          int64_t batch, int64_t num_points, int64_t channels,
                                                          int64_t height, int64_t width) {
    return lrm::guarded("lrm_triplane_sample_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(planes, "planes").not_null(points, "points");
        args.positive(batch, "batch").positive(num_points, "num_points").positive(channels, "channels");
        args.positive(height, "height").positive(width, "width");
        if (height >= (int64_t{1} << 30) || width >= (int64_t{1} << 30))
            args.fail(LRM_STATUS_UNSUPPORTED, "plane size %lld x %lld exceeds the 32-bit pixel index",
                      static_cast<long long>(height), static_cast<long long>(width));
        args.elements({batch, 3, height, width, channels}, "planes (batch x 3 x height x width x channels)");
        args.elements({batch, num_points, 3, channels}, "out (batch x points x 3*channels)");
        lrm::triplane_sample_forward(out, planes, points, batch, num_points, channels, height, width);
    });
}
