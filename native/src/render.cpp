// render.cpp — LRM's volume renderer (LRM §3.3; OpenLRM v1.1's ImportanceRenderer in
// its deterministic mode), as five ops the C# renderer chains around the triplane
// query (lrm_triplane_sample_forward + lrm_mlp_forward):
//
//   rays        cameras (B, 25)                     → origins, directions (B, R, 3),
//                                                     coarse depths (B, R, Nc), R = H·W,
//                                                     the image's depth range (B, 2)
//   points      origins, directions, depths (B,R,S) → points (B, R·S, 3) = o + t·d
//   decode      raw MLP output (N, 4), points (N,3) → decoded (N, 4) = [σ_raw, rgb], with
//                                                     the box mask applied
//   importance  coarse depths (B,R,Nc), weights     → fine depths (B, R, Nf)
//               (B, R, Nc − 1)
//   march       one or two sorted sample sets       → rgb (B, R, 3), depth, opacity (B, R),
//               (depths (B, R, S), decoded (B, R·S, 4)) weights (B, R, S − 1)
//
// The per-ray formulas are kernels/render.cuh (the specification is
// tests/golden/model/README.md). Every ray is independent: OpenMP loops over rays,
// static schedule, so results do not depend on the thread count. The only
// cross-ray steps are OpenLRM's two per-image reductions: rays that miss the box
// borrow the image's near range (in rays), and depths are clamped to the image's
// sample range, which rays reports as depth_range so that march can run on any
// subset of the rays (the renderer marches in chunks). Fine samples lie between
// coarse midpoints, so the coarse range is the range of all samples.
//
// Backward (training): decode and march are differentiable in the decoded samples
// (lrm_render_decode_backward, lrm_render_march_backward; docs/derivations/); rays,
// points and importance depths are not trained through (render_points.md). The march
// backward keeps nothing per sample from the forward: per ray it replays the forward
// into a small per-thread scratch (α and T per interval, the merge order) and walks
// back with a transmittance-normalised suffix sum (kernels/render.cuh).
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "render.cuh"

namespace lrm {
namespace {

void render_rays_forward(float* origins, float* directions, float* depths, float* depth_range, const float* cameras,
                         int64_t batch, int64_t height, int64_t width, int64_t samples) {
    const int64_t rays = height * width;
    std::vector<double> near_far(static_cast<size_t>(2 * rays));
    std::vector<unsigned char> valid(static_cast<size_t>(rays));
    const int threads = num_threads();
    for (int64_t b = 0; b < batch; ++b) {
        const float* camera = cameras + 25 * b;
        const double origin[3] = {camera[3], camera[7], camera[11]};
#pragma omp parallel for num_threads(threads) schedule(static) if (rays > 4096)
        for (int64_t r = 0; r < rays; ++r) {
            const int64_t i = r / width, j = r % width;
            double dir[3];
            lrm_render_ray_direction(camera, (static_cast<double>(j) + 0.5) / static_cast<double>(width),
                                     (static_cast<double>(i) + 0.5) / static_cast<double>(height), dir);
            float* o = origins + 3 * (b * rays + r);
            float* d = directions + 3 * (b * rays + r);
            for (int a = 0; a < 3; ++a) {
                o[a] = static_cast<float>(origin[a]);
                d[a] = static_cast<float>(dir[a]);
            }
            valid[r] = static_cast<unsigned char>(lrm_render_ray_box(origin, dir, &near_far[2 * r], &near_far[2 * r + 1]));
        }
        // OpenLRM: rays that miss take near = min(valid near), far = max(valid NEAR) (sic);
        // with no valid ray at all it leaves them at near = −1, far = −2.
        double min_near = HUGE_VAL, max_near = -HUGE_VAL;
        bool any = false;
        for (int64_t r = 0; r < rays; ++r) {
            if (!valid[r]) continue;
            any = true;
            min_near = std::min(min_near, near_far[2 * r]);
            max_near = std::max(max_near, near_far[2 * r]);
        }
#pragma omp parallel for num_threads(threads) schedule(static) if (rays * samples > 16384)
        for (int64_t r = 0; r < rays; ++r) {
            double near_t = near_far[2 * r], far_t = near_far[2 * r + 1];
            if (!valid[r]) {
                near_t = any ? min_near : -1.0;
                far_t = any ? max_near : -2.0;
            }
            float* t = depths + (b * rays + r) * samples;
            for (int64_t k = 0; k < samples; ++k) {
                const double step = static_cast<double>(k) / static_cast<double>(samples - 1);
                t[k] = static_cast<float>(near_t + step * (far_t - near_t));
            }
        }
        if (depth_range != nullptr) {
            const float* t = depths + b * rays * samples;
            float lo = t[0], hi = t[0];
            for (int64_t n = 1; n < rays * samples; ++n) {
                lo = std::min(lo, t[n]);
                hi = std::max(hi, t[n]);
            }
            depth_range[2 * b] = lo;
            depth_range[2 * b + 1] = hi;
        }
    }
}

void render_points_forward(float* points, const float* origins, const float* directions, const float* depths,
                           int64_t rays, int64_t samples) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (rays * samples > 16384)
    for (int64_t r = 0; r < rays; ++r) {
        const float* o = origins + 3 * r;
        const float* d = directions + 3 * r;
        for (int64_t k = 0; k < samples; ++k) {
            const float t = depths[r * samples + k];
            float* p = points + 3 * (r * samples + k);
            for (int a = 0; a < 3; ++a) p[a] = o[a] + t * d[a];
        }
    }
}

void render_decode_forward(float* decoded, const float* raw, const float* points, int64_t rows) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (rows > 8192)
    for (int64_t n = 0; n < rows; ++n) lrm_render_decode(decoded + 4 * n, raw + 4 * n, points + 3 * n);
}

void render_decode_backward(float* draw, const float* ddecoded, const float* raw, const float* points, int64_t rows) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (rows > 8192)
    for (int64_t n = 0; n < rows; ++n)
        lrm_render_decode_backward(draw + 4 * n, ddecoded + 4 * n, raw + 4 * n, points + 3 * n);
}

void render_importance_forward(float* fine, const float* coarse, const float* weights, int64_t rays,
                               int64_t coarse_samples, int64_t fine_samples) {
    const int threads = num_threads();
    Scratch cdf(static_cast<int64_t>(threads) * (coarse_samples - 2));
#pragma omp parallel num_threads(threads)
    {
        float* scratch = cdf.data() + static_cast<int64_t>(omp_get_thread_num()) * (coarse_samples - 2);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rays; ++r)
            lrm_render_importance_ray(fine + r * fine_samples, coarse + r * coarse_samples,
                                      weights + r * (coarse_samples - 1), coarse_samples, fine_samples, scratch);
    }
}

void render_march_forward(float* rgb, float* depth, float* opacity, float* weights, const float* depths_a,
                          const float* decoded_a, int64_t samples_a, const float* depths_b, const float* decoded_b,
                          int64_t samples_b, const float* background, const float* depth_range, int64_t batch,
                          int64_t rays) {
    const int threads = num_threads();
    const int64_t total = samples_a + samples_b;
    const int64_t count = batch * rays;
#pragma omp parallel for num_threads(threads) schedule(static) if (count * total > 8192)
    for (int64_t ray = 0; ray < count; ++ray) {
        float color[3], ray_depth, ray_opacity;
        lrm_render_march_ray(color, &ray_depth, &ray_opacity, weights ? weights + ray * (total - 1) : nullptr,
                             depths_a + ray * samples_a, decoded_a + 4 * ray * samples_a, samples_a,
                             samples_b > 0 ? depths_b + ray * samples_b : nullptr,
                             samples_b > 0 ? decoded_b + 4 * ray * samples_b : nullptr, samples_b, background);
        if (rgb != nullptr)
            for (int c = 0; c < 3; ++c) rgb[3 * ray + c] = color[c];
        if (depth != nullptr) {
            const float* range = depth_range + 2 * (ray / rays);
            depth[ray] = std::min(std::max(ray_depth, range[0]), range[1]);
        }
        if (opacity != nullptr) opacity[ray] = ray_opacity;
    }
}

void render_march_backward(float* ddecoded_a, float* ddecoded_b, const float* drgb, const float* ddepth,
                           const float* dopacity, const float* depths_a, const float* decoded_a, int64_t samples_a,
                           const float* depths_b, const float* decoded_b, int64_t samples_b, const float* background,
                           const float* depth_range, int64_t batch, int64_t rays) {
    const int threads = num_threads();
    const int64_t total = samples_a + samples_b;
    const int64_t count = batch * rays;
    Scratch alpha_t(static_cast<int64_t>(threads) * 2 * total);
    std::vector<int> order(static_cast<size_t>(threads) * static_cast<size_t>(total));
#pragma omp parallel num_threads(threads) if (count * total > 8192)
    {
        const int64_t slot = omp_get_thread_num();
        float* scratch = alpha_t.data() + slot * 2 * total;
        int* merge = order.data() + slot * total;
#pragma omp for schedule(static)
        for (int64_t ray = 0; ray < count; ++ray) {
            lrm_render_march_backward_at(ray, ddecoded_a, ddecoded_b, drgb, ddepth, dopacity, depths_a, decoded_a,
                                         samples_a, depths_b, decoded_b, samples_b, background, depth_range, rays,
                                         scratch, merge);
        }
    }
}

}  // namespace
}  // namespace lrm

extern "C" {

LRM_API lrm_status lrm_render_rays_forward(float* origins, float* directions, float* depths, float* depth_range,
                                           const float* cameras, int64_t batch, int64_t height, int64_t width,
                                           int64_t samples) {
    return lrm::guarded("lrm_render_rays_forward", [&](const lrm::Args& args) {
        args.not_null(origins, "origins").not_null(directions, "directions").not_null(depths, "depths");
        args.not_null(cameras, "cameras");
        args.positive(batch, "batch").positive(height, "height").positive(width, "width");
        args.positive(samples, "samples");
        if (samples < 2) args.fail(LRM_STATUS_INVALID_ARGUMENT, "samples must be >= 2, got %lld", (long long)samples);
        args.elements({batch, height, width, samples}, "depths (batch x height x width x samples)");
        args.elements({batch, height, width, 3}, "origins (batch x height x width x 3)");
        lrm::render_rays_forward(origins, directions, depths, depth_range, cameras, batch, height, width, samples);
    });
}

LRM_API lrm_status lrm_render_points_forward(float* points, const float* origins, const float* directions,
                                             const float* depths, int64_t batch, int64_t rays, int64_t samples) {
    return lrm::guarded("lrm_render_points_forward", [&](const lrm::Args& args) {
        args.not_null(points, "points").not_null(origins, "origins").not_null(directions, "directions");
        args.not_null(depths, "depths");
        args.positive(batch, "batch").positive(rays, "rays").positive(samples, "samples");
        args.elements({batch, rays, samples, 3}, "points (batch x rays x samples x 3)");
        lrm::render_points_forward(points, origins, directions, depths, batch * rays, samples);
    });
}

LRM_API lrm_status lrm_render_decode_forward(float* decoded, const float* raw, const float* points, int64_t rows) {
    return lrm::guarded("lrm_render_decode_forward", [&](const lrm::Args& args) {
        args.not_null(decoded, "decoded").not_null(raw, "raw").not_null(points, "points").positive(rows, "rows");
        args.elements({rows, 4}, "raw (rows x 4)");
        lrm::render_decode_forward(decoded, raw, points, rows);
    });
}

LRM_API lrm_status lrm_render_decode_backward(float* draw, const float* ddecoded, const float* raw,
                                              const float* points, int64_t rows) {
    return lrm::guarded("lrm_render_decode_backward", [&](const lrm::Args& args) {
        args.not_null(draw, "draw").not_null(ddecoded, "ddecoded").not_null(raw, "raw").not_null(points, "points");
        args.positive(rows, "rows");
        args.elements({rows, 4}, "raw (rows x 4)");
        lrm::render_decode_backward(draw, ddecoded, raw, points, rows);
    });
}

LRM_API lrm_status lrm_render_importance_forward(float* fine_depths, const float* coarse_depths,
                                                 const float* coarse_weights, int64_t batch, int64_t rays,
                                                 int64_t coarse_samples, int64_t fine_samples) {
    return lrm::guarded("lrm_render_importance_forward", [&](const lrm::Args& args) {
        args.not_null(fine_depths, "fine_depths").not_null(coarse_depths, "coarse_depths");
        args.not_null(coarse_weights, "coarse_weights");
        args.positive(batch, "batch").positive(rays, "rays");
        args.positive(coarse_samples, "coarse_samples").positive(fine_samples, "fine_samples");
        if (coarse_samples < 4)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "coarse_samples must be >= 4 (the pdf drops 3 bins), got %lld",
                      (long long)coarse_samples);
        args.elements({batch, rays, coarse_samples}, "coarse_depths (batch x rays x coarse_samples)");
        args.elements({batch, rays, fine_samples}, "fine_depths (batch x rays x fine_samples)");
        args.elements({lrm::num_threads(), coarse_samples - 2}, "per-thread cdf scratch");
        lrm::render_importance_forward(fine_depths, coarse_depths, coarse_weights, batch * rays, coarse_samples,
                                       fine_samples);
    });
}

LRM_API lrm_status lrm_render_march_forward(float* rgb, float* depth, float* opacity, float* weights,
                                            const float* depths_a, const float* decoded_a, int64_t samples_a,
                                            const float* depths_b, const float* decoded_b, int64_t samples_b,
                                            const float* background, const float* depth_range, int64_t batch,
                                            int64_t rays) {
    return lrm::guarded("lrm_render_march_forward", [&](const lrm::Args& args) {
        args.not_null(depths_a, "depths_a").not_null(decoded_a, "decoded_a").not_null(background, "background");
        if (depth != nullptr) args.not_null(depth_range, "depth_range (required with depth)");
        args.positive(batch, "batch").positive(rays, "rays").positive(samples_a, "samples_a");
        if (samples_b < 0)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "samples_b must be >= 0, got %lld", (long long)samples_b);
        if (samples_b > 0) args.not_null(depths_b, "depths_b").not_null(decoded_b, "decoded_b");
        // Sizes bounded first, so samples_a + samples_b cannot overflow.
        args.elements({batch, rays, samples_a, 4}, "decoded_a (batch x rays x samples_a x 4)");
        if (samples_b > 0) args.elements({batch, rays, samples_b, 4}, "decoded_b (batch x rays x samples_b x 4)");
        if (samples_a + samples_b < 2)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "need at least 2 samples per ray, got %lld",
                      (long long)(samples_a + samples_b));
        lrm::render_march_forward(rgb, depth, opacity, weights, depths_a, decoded_a, samples_a, depths_b, decoded_b,
                                  samples_b, background, depth_range, batch, rays);
    });
}

LRM_API lrm_status lrm_render_march_backward(float* ddecoded_a, float* ddecoded_b, const float* drgb,
                                             const float* ddepth, const float* dopacity, const float* depths_a,
                                             const float* decoded_a, int64_t samples_a, const float* depths_b,
                                             const float* decoded_b, int64_t samples_b, const float* background,
                                             const float* depth_range, int64_t batch, int64_t rays) {
    return lrm::guarded("lrm_render_march_backward", [&](const lrm::Args& args) {
        args.not_null(ddecoded_a, "ddecoded_a").not_null(depths_a, "depths_a").not_null(decoded_a, "decoded_a");
        args.not_null(background, "background");
        if (drgb == nullptr && ddepth == nullptr && dopacity == nullptr)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "at least one of 'drgb', 'ddepth' and 'dopacity' must be given");
        if (ddepth != nullptr) args.not_null(depth_range, "depth_range (required with ddepth)");
        args.positive(batch, "batch").positive(rays, "rays").positive(samples_a, "samples_a");
        if (samples_b < 0)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "samples_b must be >= 0, got %lld", (long long)samples_b);
        if (samples_b > 0)
            args.not_null(depths_b, "depths_b").not_null(decoded_b, "decoded_b").not_null(ddecoded_b, "ddecoded_b");
        // Sizes bounded first, so samples_a + samples_b cannot overflow.
        args.elements({batch, rays, samples_a, 4}, "decoded_a (batch x rays x samples_a x 4)");
        if (samples_b > 0) args.elements({batch, rays, samples_b, 4}, "decoded_b (batch x rays x samples_b x 4)");
        if (samples_a + samples_b < 2)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "need at least 2 samples per ray, got %lld",
                      (long long)(samples_a + samples_b));
        if (samples_a + samples_b > INT32_MAX)
            args.fail(LRM_STATUS_UNSUPPORTED, "%lld samples per ray exceed the 32-bit merge index",
                      (long long)(samples_a + samples_b));
        args.elements({lrm::num_threads(), samples_a + samples_b, 2}, "per-thread scratch");
        lrm::render_march_backward(ddecoded_a, ddecoded_b, drgb, ddepth, dopacity, depths_a, decoded_a, samples_a,
                                   depths_b, decoded_b, samples_b, background, depth_range, batch, rays);
    });
}

}  // extern "C"
