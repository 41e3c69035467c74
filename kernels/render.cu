/*
 * render.cu — LRM's volume renderer (OpenLRM's ImportanceRenderer, deterministic mode) as the
 * CPU's five ops (native/src/render.cpp has the data flow; the per-ray math is
 * kernels/render.cuh and kernels/nerf.cuh, shared with the CPU reference), and the backward of the two
 * decodes and of the compositing.
 *
 *   nerf_decode_kernel         sigma (N) = softplus(raw₀ − 1), rgb (N, 3) = widened sigmoid
 *   render_rays_kernel         per ray: origin, direction, near/far (double) and hit flag
 *   render_near_range_kernel   per image: min and max near over the rays that hit the box
 *                              (OpenLRM's fallback range for the rays that miss); one block
 *   render_depths_kernel       per (ray, sample): linspace(near, far, S)
 *   render_depth_range_kernel  per image: [min, max] over its depths; one block
 *   render_points_kernel       points (R·S, 3) = o + t·d
 *   grid_points_kernel         points (n, 3) of an R³ grid over [−1, 1]³, flat indices first… in [z][y][x] order
 *   render_decode_kernel       decoded (N, 4) = [σ_raw, rgb] inside the box, background outside
 *   render_importance_kernel   per ray: deterministic inverse-CDF fine depths (scratch per ray)
 *   render_march_kernel        per ray: compositing of one or two merged sample sets
 *   nerf_decode_backward_kernel    draw (N, 4) from dsigma (N) and/or drgb (N, 3) (absent: 0)
 *   render_decode_backward_kernel  draw (N, 4) from ddecoded (N, 4); 0 outside the box
 *   render_march_backward_kernel   per ray: ∂L/∂decoded samples from ∂L/∂(rgb, depth, opacity), replaying the
 *                              forward into a per-ray slot of scratch (nothing per sample kept; render.cuh)
 *
 * One thread per ray (or sample); the per-image reductions are one 256-thread block each,
 * tree-reduced in a fixed order, so results are deterministic.
 */
#include "lrm_prelude.cuh"
#include "render.cuh"

extern "C" __global__ void nerf_decode_kernel(float* sigma,     // (N) or null
                                              float* rgb,       // (N, 3) or null
                                              const float* raw, // (N, 4)
                                              long long rows) {
    LRM_GRID_STRIDE(r, rows) {
        const float* x = raw + 4 * r;
        if (sigma != nullptr) sigma[r] = lrm_nerf_density(x[0]);
        if (rgb != nullptr)
            for (int c = 0; c < 3; ++c) rgb[3 * r + c] = lrm_nerf_color(x[1 + c]);
    }
}

extern "C" __global__ void render_rays_kernel(float* origins,        // (B, R, 3)
                                              float* directions,     // (B, R, 3)
                                              double* near_far,      // (B, R, 2)
                                              int* hit,              // (B, R)
                                              const float* cameras,  // (B, 25)
                                              int batch, int height, int width) {
    const long long rays = (long long)height * width;
    LRM_GRID_STRIDE(i, (long long)batch * rays) {
        const long long b = i / rays, r = i % rays;
        const long long row = r / width, column = r % width;
        const float* camera = cameras + 25 * b;
        const double origin[3] = {camera[3], camera[7], camera[11]};
        double dir[3];
        lrm_render_ray_direction(camera, ((double)column + 0.5) / (double)width, ((double)row + 0.5) / (double)height,
                                 dir);
        for (int a = 0; a < 3; ++a) {
            origins[3 * i + a] = (float)origin[a];
            directions[3 * i + a] = (float)dir[a];
        }
        hit[i] = lrm_render_ray_box(origin, dir, &near_far[2 * i], &near_far[2 * i + 1]);
    }
}

/* grid (B), block 256: range[b] = (min near, max near, any hit) over the image's rays. */
extern "C" __global__ void __launch_bounds__(256) render_near_range_kernel(double* range,          // (B, 3)
                                                                           const double* near_far, // (B, R, 2)
                                                                           const int* hit,         // (B, R)
                                                                           long long rays) {
    __shared__ double lo[256], hi[256];
    __shared__ int any[256];
    const long long b = blockIdx.x;
    double my_lo = (double)LRM_RENDER_INF, my_hi = (double)LRM_NEG_INF;
    int my_any = 0;
    for (long long r = threadIdx.x; r < rays; r += blockDim.x) {
        if (!hit[b * rays + r]) continue;
        const double near_t = near_far[2 * (b * rays + r)];
        my_any = 1;
        my_lo = near_t < my_lo ? near_t : my_lo;
        my_hi = near_t > my_hi ? near_t : my_hi;
    }
    lo[threadIdx.x] = my_lo;
    hi[threadIdx.x] = my_hi;
    any[threadIdx.x] = my_any;
    __syncthreads();
    for (int stride = 128; stride > 0; stride >>= 1) {
        if ((int)threadIdx.x < stride) {
            lo[threadIdx.x] = lo[threadIdx.x + stride] < lo[threadIdx.x] ? lo[threadIdx.x + stride] : lo[threadIdx.x];
            hi[threadIdx.x] = hi[threadIdx.x + stride] > hi[threadIdx.x] ? hi[threadIdx.x + stride] : hi[threadIdx.x];
            any[threadIdx.x] |= any[threadIdx.x + stride];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        range[3 * b] = lo[0];
        range[3 * b + 1] = hi[0];
        range[3 * b + 2] = any[0] ? 1.0 : 0.0;
    }
}

extern "C" __global__ void render_depths_kernel(float* depths,           // (B, R, S)
                                                const double* near_far, // (B, R, 2)
                                                const int* hit,         // (B, R)
                                                const double* range,    // (B, 3)
                                                long long rays, int samples, int batch) {
    LRM_GRID_STRIDE(i, (long long)batch * rays * samples) {
        const long long ray = i / samples;
        const int k = (int)(i % samples);
        const long long b = ray / rays;
        double near_t = near_far[2 * ray], far_t = near_far[2 * ray + 1];
        if (!hit[ray]) {
            const int any = range[3 * b + 2] != 0.0;
            near_t = any ? range[3 * b] : -1.0;
            far_t = any ? range[3 * b + 1] : -2.0;
        }
        const double step = (double)k / (double)(samples - 1);
        depths[i] = (float)(near_t + step * (far_t - near_t));
    }
}

/* grid (B), block 256: depth_range[b] = [min, max] of the image's depths. */
extern "C" __global__ void __launch_bounds__(256) render_depth_range_kernel(float* depth_range,  // (B, 2)
                                                                            const float* depths, // (B, R·S)
                                                                            long long count) {
    __shared__ float lo[256], hi[256];
    const float* t = depths + blockIdx.x * count;
    float my_lo = t[0], my_hi = t[0];
    for (long long n = threadIdx.x; n < count; n += blockDim.x) {
        my_lo = fminf(my_lo, t[n]);
        my_hi = fmaxf(my_hi, t[n]);
    }
    lo[threadIdx.x] = my_lo;
    hi[threadIdx.x] = my_hi;
    __syncthreads();
    for (int stride = 128; stride > 0; stride >>= 1) {
        if ((int)threadIdx.x < stride) {
            lo[threadIdx.x] = fminf(lo[threadIdx.x], lo[threadIdx.x + stride]);
            hi[threadIdx.x] = fmaxf(hi[threadIdx.x], hi[threadIdx.x + stride]);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        depth_range[2 * blockIdx.x] = lo[0];
        depth_range[2 * blockIdx.x + 1] = hi[0];
    }
}

// Grid point k = first + i of an R³ grid over [−1, 1]³ ([z][y][x]): −1 + 2·index/(R − 1) per axis, in the operation
// order of the host (DensityGrid.Coordinate), so the points match it bit for bit (IEEE division, no fast-math).
extern "C" __global__ void grid_points_kernel(float* points, // (n, 3)
                                              int resolution, long long first, long long count) {
    const float scale = (float)(resolution - 1);
    const long long plane = (long long)resolution * resolution;
    LRM_GRID_STRIDE(i, count) {
        const long long k = first + i;
        points[3 * i] = -1.0f + 2.0f * (float)(k % resolution) / scale;
        points[3 * i + 1] = -1.0f + 2.0f * (float)(k / resolution % resolution) / scale;
        points[3 * i + 2] = -1.0f + 2.0f * (float)(k / plane) / scale;
    }
}

extern "C" __global__ void render_points_kernel(float* points,            // (B·R·S, 3)
                                                const float* origins,     // (B·R, 3)
                                                const float* directions,  // (B·R, 3)
                                                const float* depths,      // (B·R, S)
                                                long long rays, int samples) {
    LRM_GRID_STRIDE(i, rays * samples) {
        const long long r = i / samples;
        const float t = depths[i];
        for (int a = 0; a < 3; ++a) points[3 * i + a] = origins[3 * r + a] + t * directions[3 * r + a];
    }
}

extern "C" __global__ void render_decode_kernel(float* decoded,       // (N, 4)
                                                const float* raw,     // (N, 4)
                                                const float* points,  // (N, 3)
                                                long long rows) {
    LRM_GRID_STRIDE(n, rows) lrm_render_decode(decoded + 4 * n, raw + 4 * n, points + 3 * n);
}

extern "C" __global__ void render_importance_kernel(float* fine,           // (B·R, Nf)
                                                    const float* coarse,   // (B·R, Nc)
                                                    const float* weights,  // (B·R, Nc − 1)
                                                    float* scratch,        // (B·R, Nc − 2)
                                                    long long rays, int coarse_samples, int fine_samples) {
    LRM_GRID_STRIDE(r, rays)
        lrm_render_importance_ray(fine + r * fine_samples, coarse + r * coarse_samples,
                                  weights + r * (coarse_samples - 1), coarse_samples, fine_samples,
                                  scratch + r * (coarse_samples - 2));
}

extern "C" __global__ void render_march_kernel(float* rgb,              // (B·R, 3) or null
                                               float* depth,            // (B·R) or null
                                               float* opacity,          // (B·R) or null
                                               float* weights,          // (B·R, Sa + Sb − 1) or null
                                               const float* depths_a,   // (B·R, Sa)
                                               const float* decoded_a,  // (B·R·Sa, 4)
                                               const float* depths_b,   // (B·R, Sb) or null
                                               const float* decoded_b,  // (B·R·Sb, 4) or null
                                               const float* depth_range,// (B, 2), required with depth
                                               long long rays_per_image, long long count, int samples_a,
                                               int samples_b, float background_r, float background_g,
                                               float background_b) {
    const float background[3] = {background_r, background_g, background_b};
    const long long total = (long long)samples_a + samples_b;
    LRM_GRID_STRIDE(ray, count) {
        float color[3], ray_depth, ray_opacity;
        lrm_render_march_ray(color, &ray_depth, &ray_opacity, weights != nullptr ? weights + ray * (total - 1) : nullptr,
                             depths_a + ray * samples_a, decoded_a + 4 * ray * samples_a, samples_a,
                             samples_b > 0 ? depths_b + ray * samples_b : nullptr,
                             samples_b > 0 ? decoded_b + 4 * ray * samples_b : nullptr, samples_b, background);
        if (rgb != nullptr)
            for (int c = 0; c < 3; ++c) rgb[3 * ray + c] = color[c];
        if (depth != nullptr) {
            const float* range = depth_range + 2 * (ray / rays_per_image);
            depth[ray] = fminf(fmaxf(ray_depth, range[0]), range[1]);
        }
        if (opacity != nullptr) opacity[ray] = ray_opacity;
    }
}

extern "C" __global__ void nerf_decode_backward_kernel(float* draw,          // (N, 4)
                                                       const float* dsigma,  // (N) or null
                                                       const float* drgb,    // (N, 3) or null
                                                       const float* raw,     // (N, 4)
                                                       long long rows) {
    LRM_GRID_STRIDE(r, rows) {
        const float* x = raw + 4 * r;
        float* d = draw + 4 * r;
        d[0] = dsigma != nullptr ? dsigma[r] * lrm_nerf_density_derivative(x[0]) : 0.0f;
        for (int c = 0; c < 3; ++c) d[1 + c] = drgb != nullptr ? drgb[3 * r + c] * lrm_nerf_color_derivative(x[1 + c]) : 0.0f;
    }
}

extern "C" __global__ void render_decode_backward_kernel(float* draw,             // (N, 4)
                                                         const float* ddecoded,   // (N, 4)
                                                         const float* raw,        // (N, 4)
                                                         const float* points,     // (N, 3)
                                                         long long rows) {
    LRM_GRID_STRIDE(n, rows) lrm_render_decode_backward(draw + 4 * n, ddecoded + 4 * n, raw + 4 * n, points + 3 * n);
}

extern "C" __global__ void render_march_backward_kernel(float* ddecoded_a,        // (B·R·Sa, 4)
                                                        float* ddecoded_b,        // (B·R·Sb, 4) or null
                                                        const float* drgb,        // (B·R, 3) or null
                                                        const float* ddepth,      // (B·R) or null
                                                        const float* dopacity,    // (B·R) or null
                                                        const float* depths_a,    // (B·R, Sa)
                                                        const float* decoded_a,   // (B·R·Sa, 4)
                                                        const float* depths_b,    // (B·R, Sb) or null
                                                        const float* decoded_b,   // (B·R·Sb, 4) or null
                                                        const float* depth_range, // (B, 2), required with ddepth
                                                        float* alpha_t,           // (B·R, 2·(Sa + Sb)) scratch
                                                        int* order,               // (B·R, Sa + Sb) scratch
                                                        long long rays_per_image, long long count, int samples_a,
                                                        int samples_b, float background_r, float background_g,
                                                        float background_b) {
    const float background[3] = {background_r, background_g, background_b};
    const long long total = (long long)samples_a + samples_b;
    LRM_GRID_STRIDE(ray, count) {
        lrm_render_march_backward_at(ray, ddecoded_a, ddecoded_b, drgb, ddepth, dopacity, depths_a, decoded_a, samples_a,
                                     depths_b, decoded_b, samples_b, background, depth_range, rays_per_image,
                                     alpha_t + 2 * total * ray, order + total * ray);
    }
}
