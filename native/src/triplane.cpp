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
// Backward (docs/derivations/triplane_sample.md); both gradients are overwritten.
//   dpoints: per point, the derivative of the bilinear weights (lrm_bilinear_coord_grad)
//            against the four corner dot products dout·value; one loop over points.
//   dplanes: the transpose of the sampling, dplanes[texel] = Σ_{samples touching it} w·dout,
//            a scatter-add with many collisions (a 64×64 plane under ~10⁵–10⁶ samples).
//            Two ways, neither with atomics:
//     deterministic (default): the samples are cut into chunks of a size fixed by the
//            plane size (never by the thread count); one thread scatters a chunk, in
//            sample order, into a zeroed partial image, and the partials are added to
//            the result in chunk order. Every element is then the same sequence of float
//            additions for any thread count: bitwise identical results.
//     per-thread partials: the samples are cut into one static share per requested
//            thread, each scattered into its own partial image, summed in share order once.
//            Deterministic for a given thread count only.
//   Both stream dout in sample order and scatter into a cache-resident partial image
//   (3·64·64·80 floats = 3.9 MB). A first version binned the samples by cell (counting
//   sort) and gathered per texel: also thread-count independent, but its reads of dout
//   in cell order are random and made it 4-5x slower on the CPU (262144 samples, 64²×80
//   planes: ~400 ms vs ~90 ms). Scratch: min(threads, chunks) partial images.
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "activation.cuh"
#include "fastmath.hpp"
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
        for (int plane = 0; plane < 3; ++plane) {
            int axis_u, axis_v;
            lrm_triplane_axes(plane, &axis_u, &axis_v);
            const float* base = planes + (b * 3 + plane) * plane_size;
            float* dst = out + i * 3 * channels + plane * channels;
            for (int64_t c = 0; c < channels; ++c) dst[c] = 0.0f;
            const lrm_bilinear_taps t =
                lrm_bilinear_taps_at(lrm_grid_unnormalize(p[axis_u], w), lrm_grid_unnormalize(p[axis_v], h), w, h);
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

// The linear-first NeRF's first layer: planes already carry the layer's outputs (P_p =
// plane_p·W_pᵀ), so one row is act(Σ_p sample_p + bias). The 12 weighted corners are
// added from zero in plane order (nw, ne, sw, se within a plane), then the bias, then
// the activation (the same functions as the fused MLP's epilogue, mlp.cpp).
inline float activate(float x, int32_t activation) {
    switch (activation) {
        case LRM_ACTIVATION_RELU: return lrm_relu(x);
        case LRM_ACTIVATION_GELU: return gelu_fast(x);
        case LRM_ACTIVATION_SILU: return lrm_silu(x);
        default: return x;
    }
}

typedef float Vec8 __attribute__((vector_size(32)));

inline Vec8 load8(const float* p) {
    Vec8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline void store8(float* p, Vec8 v) { std::memcpy(p, &v, sizeof v); }

// One valid bilinear corner of a point: where its C-vector starts in `planes`, and its weight.
struct Corner {
    int64_t offset;
    float weight;
};

void triplane_sample_sum_forward(float* out, const float* planes, const float* points, const float* bias,
                                 int64_t batch, int64_t num_points, int64_t channels, int64_t height, int64_t width,
                                 int32_t activation) {
    constexpr int64_t kBlock = 16;  // channels per register block (one zmm, two ymm)
    const int64_t total = batch * num_points;
    const int64_t plane_size = height * width * channels;
    const int w = static_cast<int>(width), h = static_cast<int>(height);
    const int64_t down = width * channels;
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (total * channels > 8192)
    for (int64_t i = 0; i < total; ++i) {
        const int64_t b = i / num_points;
        const float* p = points + i * 3;
        // The valid corners of the three planes, in plane order and nw, ne, sw, se within a plane.
        Corner corners[12];
        int count = 0;
        for (int plane = 0; plane < 3; ++plane) {
            int axis_u, axis_v;
            lrm_triplane_axes(plane, &axis_u, &axis_v);
            const lrm_bilinear_taps t =
                lrm_bilinear_taps_at(lrm_grid_unnormalize(p[axis_u], w), lrm_grid_unnormalize(p[axis_v], h), w, h);
            const int64_t at00 = (b * 3 + plane) * plane_size + (static_cast<int64_t>(t.y0) * width + t.x0) * channels;
            if (t.valid00) corners[count++] = {at00, t.w00};
            if (t.valid01) corners[count++] = {at00 + channels, t.w01};
            if (t.valid10) corners[count++] = {at00 + down, t.w10};
            if (t.valid11) corners[count++] = {at00 + down + channels, t.w11};
        }
        float* dst = out + i * channels;
        // Whole blocks of 16 channels accumulate in two 8-float vector registers (GCC vector extensions: a plain
        // array accumulator stayed on the stack), take the bias and (ReLU, the NeRF's case) the activation there;
        // the rest one channel at a time, in the same order. GELU/SiLU are applied afterwards, per element.
        const bool relu = activation == LRM_ACTIVATION_RELU;
        int64_t c0 = 0;
        for (; c0 + kBlock <= channels; c0 += kBlock) {
            Vec8 low = {}, high = {};
            for (int k = 0; k < count; ++k) {
                const float* src = planes + corners[k].offset + c0;
                const float weight = corners[k].weight;
                low += weight * load8(src);
                high += weight * load8(src + 8);
            }
            if (bias != nullptr) {
                low += load8(bias + c0);
                high += load8(bias + c0 + 8);
            }
            if (relu) {  // x < 0 ? 0 : x, so NaN stays NaN (lrm_relu)
                const Vec8 zero = {};
                low = low < zero ? zero : low;
                high = high < zero ? zero : high;
            }
            store8(dst + c0, low);
            store8(dst + c0 + 8, high);
        }
        for (int64_t c = c0; c < channels; ++c) {
            float acc = 0.0f;
            for (int k = 0; k < count; ++k) acc += corners[k].weight * planes[corners[k].offset + c];
            if (bias != nullptr) acc += bias[c];
            dst[c] = relu ? lrm_relu(acc) : acc;
        }
        if (activation == LRM_ACTIVATION_GELU || activation == LRM_ACTIVATION_SILU)
            for (int64_t c = 0; c < channels; ++c) dst[c] = activate(dst[c], activation);
    }
}

// Σ a·b with 8 partial sums in a fixed order, so it vectorises (a plain float reduction
// cannot be reordered without -ffast-math) and stays deterministic.
inline float dot(const float* __restrict a, const float* __restrict b, int64_t channels) {
    float partial[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    int64_t c = 0;
    for (; c + 8 <= channels; c += 8)
        for (int j = 0; j < 8; ++j) partial[j] += a[c + j] * b[c + j];
    float sum = ((partial[0] + partial[4]) + (partial[1] + partial[5])) +
                ((partial[2] + partial[6]) + (partial[3] + partial[7]));
    for (; c < channels; ++c) sum += a[c] * b[c];
    return sum;
}

void triplane_points_backward(float* dpoints, const float* dout, const float* planes, const float* points,
                              int64_t batch, int64_t num_points, int64_t channels, int64_t height, int64_t width) {
    const int64_t total = batch * num_points;
    const int64_t plane_size = height * width * channels;
    const int w = static_cast<int>(width), h = static_cast<int>(height);
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (total * channels > 8192)
    for (int64_t i = 0; i < total; ++i) {
        const int64_t b = i / num_points;
        const float* p = points + i * 3;
        float grad[3] = {0.0f, 0.0f, 0.0f};
        for (int plane = 0; plane < 3; ++plane) {
            int axis_u, axis_v;
            lrm_triplane_axes(plane, &axis_u, &axis_v);
            const float* base = planes + (b * 3 + plane) * plane_size;
            const float* g = dout + i * 3 * channels + plane * channels;
            const lrm_bilinear_taps t =
                lrm_bilinear_taps_at(lrm_grid_unnormalize(p[axis_u], w), lrm_grid_unnormalize(p[axis_v], h), w, h);
            if (!(t.valid00 || t.valid01 || t.valid10 || t.valid11)) continue;  // reads zeros: no gradient
            const int64_t at00 = (static_cast<int64_t>(t.y0) * width + t.x0) * channels;
            const int64_t down = width * channels;
            const float d00 = t.valid00 ? dot(g, base + at00, channels) : 0.0f;
            const float d01 = t.valid01 ? dot(g, base + at00 + channels, channels) : 0.0f;
            const float d10 = t.valid10 ? dot(g, base + at00 + down, channels) : 0.0f;
            const float d11 = t.valid11 ? dot(g, base + at00 + down + channels, channels) : 0.0f;
            float du, dv;
            lrm_bilinear_coord_grad(&t, d00, d01, d10, d11, w, h, &du, &dv);
            grad[axis_u] += du;
            grad[axis_v] += dv;
        }
        for (int a = 0; a < 3; ++a) dpoints[i * 3 + a] = grad[a];
    }
}

// Adds the four weighted corners of every sample n ∈ [first, last) into image (3, H, W, C).
void scatter_samples(float* image, const float* dout, const float* points, int64_t first, int64_t last,
                     int64_t channels, int64_t height, int64_t width) {
    const int64_t plane_size = height * width * channels;
    const int64_t down = width * channels;
    const int w = static_cast<int>(width), h = static_cast<int>(height);
    for (int64_t n = first; n < last; ++n) {
        const float* p = points + n * 3;
        const float* g = dout + n * 3 * channels;
        for (int plane = 0; plane < 3; ++plane) {
            int axis_u, axis_v;
            lrm_triplane_axes(plane, &axis_u, &axis_v);
            const lrm_bilinear_taps t =
                lrm_bilinear_taps_at(lrm_grid_unnormalize(p[axis_u], w), lrm_grid_unnormalize(p[axis_v], h), w, h);
            float* base = image + plane * plane_size;
            const float* gp = g + plane * channels;
            const int64_t at00 = (static_cast<int64_t>(t.y0) * width + t.x0) * channels;
            if (t.valid00) add_corner(base + at00, gp, t.w00, channels);
            if (t.valid01) add_corner(base + at00 + channels, gp, t.w01, channels);
            if (t.valid10) add_corner(base + at00 + down, gp, t.w10, channels);
            if (t.valid11) add_corner(base + at00 + down + channels, gp, t.w11, channels);
        }
    }
}

// Samples per chunk of the deterministic scatter: a function of the sizes only (never of
// the thread count). Zeroing and adding a chunk's partial costs 2·H·W·C per plane against
// 4·chunk·C of scatter, so 4·H·W samples keep that overhead near 1/8.
int64_t triplane_chunk(int64_t height, int64_t width) { return std::max<int64_t>(4096, 4 * height * width); }

// Deterministic dplanes: samples are cut into fixed chunks (triplane_chunk); each chunk is
// scattered by one thread, in sample order, into a zeroed partial image; the partials are
// added to dplanes one chunk after the other, so every element is the same sequence of
// float additions whatever the number of threads. Threads work on up to `threads` chunks
// at a time (one round), then add that round's partials in chunk order.
void triplane_planes_backward_chunked(float* dplanes, const float* dout, const float* points, int64_t batch,
                                      int64_t num_points, int64_t channels, int64_t height, int64_t width) {
    const int64_t image_size = 3 * height * width * channels;
    const int64_t chunk = triplane_chunk(height, width);
    const int64_t chunks = ceil_div(num_points, chunk);
    const int team = static_cast<int>(std::min<int64_t>(num_threads(), chunks));
    Scratch partial(static_cast<int64_t>(team) * image_size);
    for (int64_t b = 0; b < batch; ++b) {
        float* total = dplanes + b * image_size;
        const float* g = dout + b * num_points * 3 * channels;
        const float* p = points + b * num_points * 3;
        std::memset(total, 0, sizeof(float) * image_size);
        for (int64_t round = 0; round < chunks; round += team) {
            const int64_t in_round = std::min<int64_t>(team, chunks - round);
#pragma omp parallel num_threads(team)
            {
#pragma omp for schedule(static, 1)
                for (int64_t k = 0; k < in_round; ++k) {
                    float* mine = partial.data() + k * image_size;
                    std::memset(mine, 0, sizeof(float) * image_size);
                    const int64_t first = (round + k) * chunk;
                    scatter_samples(mine, g, p, first, std::min(first + chunk, num_points), channels, height, width);
                }
#pragma omp for schedule(static)
                for (int64_t e = 0; e < image_size; ++e) {
                    float sum = total[e];
                    for (int64_t k = 0; k < in_round; ++k) sum += partial.data()[k * image_size + e];
                    total[e] = sum;
                }
            }
        }
    }
}

// dplanes by partial images, one per requested thread (each a static share of the samples),
// summed in share order: one reduction instead of one per round, but the split follows the
// thread count, and so do the last bits. A share is not tied to the thread of that number:
// OpenMP may start fewer threads than asked (OMP_THREAD_LIMIT, OMP_DYNAMIC, nesting), so the
// threads it did start take the shares round-robin and every partial is zeroed and filled.
void triplane_planes_backward_partials(float* dplanes, const float* dout, const float* points, int64_t batch,
                                       int64_t num_points, int64_t channels, int64_t height, int64_t width) {
    const int64_t image_size = 3 * height * width * channels;
    const int shares = static_cast<int>(std::min<int64_t>(num_threads(), num_points));
    Scratch partial(static_cast<int64_t>(shares) * image_size);
    for (int64_t b = 0; b < batch; ++b) {
#pragma omp parallel num_threads(shares)
        {
            const int team = omp_get_num_threads();
            for (int64_t share = omp_get_thread_num(); share < shares; share += team) {
                float* image = partial.data() + share * image_size;
                std::memset(image, 0, sizeof(float) * image_size);
                const int64_t first = num_points * share / shares, last = num_points * (share + 1) / shares;
                scatter_samples(image, dout + b * num_points * 3 * channels, points + b * num_points * 3, first,
                                last, channels, height, width);
            }
#pragma omp barrier
#pragma omp for schedule(static)
            for (int64_t e = 0; e < image_size; ++e) {
                float sum = partial.data()[e];
                for (int k = 1; k < shares; ++k) sum += partial.data()[static_cast<int64_t>(k) * image_size + e];
                dplanes[b * image_size + e] = sum;
            }
        }
    }
}

// The checks lrm_triplane_sample_forward and lrm_triplane_sample_backward share; `output`
// describes out or dout, (batch x points x 3*channels) either way.
void check_triplane_sizes(const Args& args, int64_t batch, int64_t num_points, int64_t channels, int64_t height,
                          int64_t width, const char* output) {
    args.positive(batch, "batch").positive(num_points, "num_points").positive(channels, "channels");
    args.positive(height, "height").positive(width, "width");
    if (height >= (int64_t{1} << 30) || width >= (int64_t{1} << 30))
        args.fail(LRM_STATUS_UNSUPPORTED, "plane size %lld x %lld exceeds the 32-bit pixel index",
                  static_cast<long long>(height), static_cast<long long>(width));
    args.elements({batch, 3, height, width, channels}, "planes (batch x 3 x height x width x channels)");
    args.elements({batch, num_points, 3, channels}, output);
}

}  // namespace
}  // namespace lrm

extern "C" LRM_API lrm_status lrm_triplane_sample_forward(float* out, const float* planes, const float* points,
                                                          int64_t batch, int64_t num_points, int64_t channels,
                                                          int64_t height, int64_t width) {
    return lrm::guarded("lrm_triplane_sample_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(planes, "planes").not_null(points, "points");
        lrm::check_triplane_sizes(args, batch, num_points, channels, height, width,
                                  "out (batch x points x 3*channels)");
        lrm::triplane_sample_forward(out, planes, points, batch, num_points, channels, height, width);
    });
}

extern "C" LRM_API lrm_status lrm_triplane_sample_sum_forward(float* out, const float* planes, const float* points,
                                                              const float* bias, int64_t batch, int64_t num_points,
                                                              int64_t channels, int64_t height, int64_t width,
                                                              int32_t activation) {
    return lrm::guarded("lrm_triplane_sample_sum_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(planes, "planes").not_null(points, "points");
        lrm::check_triplane_sizes(args, batch, num_points, channels, height, width,
                                  "out (batch x points x channels)");
        if (activation < LRM_ACTIVATION_NONE || activation > LRM_ACTIVATION_SILU)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "activation must be an lrm_activation (0..3), got %d", activation);
        lrm::triplane_sample_sum_forward(out, planes, points, bias, batch, num_points, channels, height, width,
                                         activation);
    });
}

extern "C" LRM_API lrm_status lrm_triplane_sample_backward(float* dplanes, float* dpoints, const float* dout,
                                                           const float* planes, const float* points, int64_t batch,
                                                           int64_t num_points, int64_t channels, int64_t height,
                                                           int64_t width, int32_t deterministic) {
    return lrm::guarded("lrm_triplane_sample_backward", [&](const lrm::Args& args) {
        args.not_null(dout, "dout").not_null(points, "points");
        if (dplanes == nullptr && dpoints == nullptr)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "at least one of 'dplanes' and 'dpoints' must be given");
        if (dpoints != nullptr) args.not_null(planes, "planes (required with dpoints)");
        lrm::check_triplane_sizes(args, batch, num_points, channels, height, width,
                                  "dout (batch x points x 3*channels)");
        args.elements({lrm::num_threads(), 3, height, width, channels}, "partial planes (threads x 3 x H x W x C)");
        if (dpoints != nullptr)
            lrm::triplane_points_backward(dpoints, dout, planes, points, batch, num_points, channels, height, width);
        if (dplanes != nullptr) {
            if (deterministic != 0)
                lrm::triplane_planes_backward_chunked(dplanes, dout, points, batch, num_points, channels, height, width);
            else {
                lrm::triplane_planes_backward_partials(dplanes, dout, points, batch, num_points, channels, height,
                                                       width);
            }
        }
    });
}
