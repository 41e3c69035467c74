/*
 * triplane.cu — bilinear sampling of the three feature planes at 3-D points (LRM §3.3), forward
 * and backward.
 *
 *   out[b, n, p·C + c] = grid_sample(planes[b, p], uv_p(points[b, n]))[c]
 *   out (B, N, 3·C) · planes (B, 3, H, W, C) channels-last · points (B, N, 3) in [−1, 1]³
 *   uv_0 = (x, y), uv_1 = (x, z), uv_2 = (z, y)      (OpenLRM's plane order; u → width)
 *
 * grid_sample(bilinear, zeros, align_corners=False) per plane; the tap math is
 * kernels/triplane.cuh, shared with the CPU reference. Corners are summed in PyTorch's order
 * (nw, ne, sw, se) from zero, as on the CPU.
 *
 *   triplane_sample_forward_kernel       one thread per output element (any C)
 *   triplane_sample_forward_vec4_kernel  one thread per 4 channels, 16-byte loads and stores
 *                                        (C % 4 == 0); a warp covers 32·4 channels of a corner
 *   triplane_sample_sum_kernel           the linear-first NeRF's first layer: planes already multiplied by
 *                                        the layer's weight block of each plane, out (B, N, C) =
 *                                        act(Σ_p sample_p + bias); one thread per 4 channels when
 *                                        C % 4 == 0 (16-byte loads), else per channel
 *   triplane_planes_backward_kernel      dplanes (zeroed first) += the four weighted corners of each
 *                                        dout element, one thread per (point, plane, channel), float
 *                                        atomics (order not fixed: not bit-reproducible)
 *   triplane_points_backward_kernel      dpoints per point: Σ_c dout·corner per corner, then
 *                                        lrm_bilinear_coord_grad (as the CPU, no atomics)
 */
#include "lrm_prelude.cuh"
#include "activation.cuh"
#include "triplane.cuh"

static __device__ __forceinline__ lrm_bilinear_taps lrm_plane_taps(const float* p, int plane, int width, int height) {
    const float u = plane == 2 ? p[2] : p[0];
    const float v = plane == 1 ? p[2] : p[1];
    return lrm_bilinear_taps_at(lrm_grid_unnormalize(u, width), lrm_grid_unnormalize(v, height), width, height);
}

extern "C" __global__ void triplane_sample_forward_kernel(float* out,           // (B, N, 3·C)
                                                          const float* planes,  // (B, 3, H, W, C)
                                                          const float* points,  // (B, N, 3)
                                                          int batch, int num_points, int channels, int height,
                                                          int width) {
    const long long per_point = 3LL * channels;
    LRM_GRID_STRIDE(i, (long long)batch * num_points * per_point) {
        const long long point = i / per_point;
        const int plane = (int)(i % per_point / channels), c = (int)(i % channels);
        const long long b = point / num_points;
        const lrm_bilinear_taps t = lrm_plane_taps(points + 3 * point, plane, width, height);
        const float* base = planes + ((b * 3 + plane) * height * width) * (long long)channels + c;
        const long long at00 = ((long long)t.y0 * width + t.x0) * channels;
        const long long down = (long long)width * channels;
        float acc = 0.0f;
        if (t.valid00) acc += t.w00 * base[at00];
        if (t.valid01) acc += t.w01 * base[at00 + channels];
        if (t.valid10) acc += t.w10 * base[at00 + down];
        if (t.valid11) acc += t.w11 * base[at00 + down + channels];
        out[i] = acc;
    }
}

static __device__ __forceinline__ void lrm_axpy4(float4* acc, float w, float4 x) {
    acc->x += w * x.x;
    acc->y += w * x.y;
    acc->z += w * x.z;
    acc->w += w * x.w;
}

extern "C" __global__ void triplane_sample_forward_vec4_kernel(float4* out,           // (B, N, 3·C/4)
                                                               const float4* planes,  // (B, 3, H, W, C/4)
                                                               const float* points,   // (B, N, 3)
                                                               int batch, int num_points, int channels, int height,
                                                               int width) {
    const int quads = channels / 4;
    const long long per_point = 3LL * quads;
    LRM_GRID_STRIDE(i, (long long)batch * num_points * per_point) {
        const long long point = i / per_point;
        const int plane = (int)(i % per_point / quads), c = (int)(i % quads);
        const long long b = point / num_points;
        const lrm_bilinear_taps t = lrm_plane_taps(points + 3 * point, plane, width, height);
        const float4* base = planes + ((b * 3 + plane) * height * width) * (long long)quads + c;
        const long long at00 = ((long long)t.y0 * width + t.x0) * quads;
        const long long down = (long long)width * quads;
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (t.valid00) lrm_axpy4(&acc, t.w00, base[at00]);
        if (t.valid01) lrm_axpy4(&acc, t.w01, base[at00 + quads]);
        if (t.valid10) lrm_axpy4(&acc, t.w10, base[at00 + down]);
        if (t.valid11) lrm_axpy4(&acc, t.w11, base[at00 + down + quads]);
        out[i] = acc;
    }
}

/* out (B, N, C) = act(Σ_p sample_p(points) + bias); planes (B, 3, H, W, C) channels-last. Each thread owns
 * `width` consecutive channels (4 when C % 4 == 0, read as float4; else 1). Corners added from zero in plane
 * order (nw, ne, sw, se within a plane), then the bias, then the activation, as the CPU. */
extern "C" __global__ void triplane_sample_sum_kernel(float* out,           // (B, N, C)
                                                      const float* planes,  // (B, 3, H, W, C)
                                                      const float* points,  // (B, N, 3)
                                                      const float* bias,    // (C) or NULL
                                                      int batch, int num_points, int channels, int height, int width,
                                                      int activation, int vec4) {
    const int per_thread = vec4 ? 4 : 1;
    const int groups = channels / per_thread;
    const long long plane_size = (long long)height * width * channels;
    const long long down = (long long)width * channels;
    LRM_GRID_STRIDE(i, (long long)batch * num_points * groups) {
        const long long point = i / groups;
        const int c = (int)(i % groups) * per_thread;
        const long long b = point / num_points;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int plane = 0; plane < 3; ++plane) {
            const lrm_bilinear_taps t = lrm_plane_taps(points + 3 * point, plane, width, height);
            const float* base = planes + (b * 3 + plane) * plane_size + c;
            const long long at00 = ((long long)t.y0 * width + t.x0) * channels;
            const long long corner[4] = {at00, at00 + channels, at00 + down, at00 + down + channels};
            const float weight[4] = {t.w00, t.w01, t.w10, t.w11};
            const int valid[4] = {t.valid00, t.valid01, t.valid10, t.valid11};
            for (int k = 0; k < 4; ++k) {
                if (!valid[k]) continue;
                if (vec4) {
                    const float4 v = *(const float4*)(base + corner[k]);
                    acc[0] += weight[k] * v.x;
                    acc[1] += weight[k] * v.y;
                    acc[2] += weight[k] * v.z;
                    acc[3] += weight[k] * v.w;
                } else {
                    acc[0] += weight[k] * base[corner[k]];
                }
            }
        }
        float* dst = out + point * channels + c;
        for (int j = 0; j < per_thread; ++j) {
            const float biased = bias != 0 ? acc[j] + bias[c + j] : acc[j];
            dst[j] = lrm_activate(biased, activation);
        }
    }
}

extern "C" __global__ void triplane_planes_backward_kernel(float* dplanes,       // (B, 3, H, W, C), zeroed
                                                           const float* dout,    // (B, N, 3·C)
                                                           const float* points,  // (B, N, 3)
                                                           int batch, int num_points, int channels, int height,
                                                           int width) {
    const long long plane_size = (long long)height * width * channels;
    LRM_GRID_STRIDE(i, (long long)batch * num_points * 3 * channels) {
        const int c = (int)(i % channels);
        const int plane = (int)(i / channels % 3);
        const long long n = i / (3LL * channels);
        const long long b = n / num_points;
        const float g = dout[i];
        if (g == 0.0f) continue;
        const lrm_bilinear_taps t = lrm_plane_taps(points + 3 * n, plane, width, height);
        float* base = dplanes + (b * 3 + plane) * plane_size + c;
        const long long at00 = ((long long)t.y0 * width + t.x0) * channels;
        const long long down = (long long)width * channels;
        if (t.valid00) atomicAdd(base + at00, g * t.w00);
        if (t.valid01) atomicAdd(base + at00 + channels, g * t.w01);
        if (t.valid10) atomicAdd(base + at00 + down, g * t.w10);
        if (t.valid11) atomicAdd(base + at00 + down + channels, g * t.w11);
    }
}

extern "C" __global__ void triplane_points_backward_kernel(float* dpoints,       // (B, N, 3)
                                                           const float* dout,    // (B, N, 3·C)
                                                           const float* planes,  // (B, 3, H, W, C)
                                                           const float* points,  // (B, N, 3)
                                                           int batch, int num_points, int channels, int height,
                                                           int width) {
    const long long plane_size = (long long)height * width * channels;
    LRM_GRID_STRIDE(n, (long long)batch * num_points) {
        const long long b = n / num_points;
        float grad[3] = {0.0f, 0.0f, 0.0f};
        for (int plane = 0; plane < 3; ++plane) {
            const lrm_bilinear_taps t = lrm_plane_taps(points + 3 * n, plane, width, height);
            if (!(t.valid00 || t.valid01 || t.valid10 || t.valid11)) continue; /* reads zeros: no gradient */
            const float* base = planes + (b * 3 + plane) * plane_size;
            const float* g = dout + n * 3 * channels + plane * channels;
            const long long at00 = ((long long)t.y0 * width + t.x0) * channels;
            const long long down = (long long)width * channels;
            float d00 = 0.0f, d01 = 0.0f, d10 = 0.0f, d11 = 0.0f;
            for (int c = 0; c < channels; ++c) {
                if (t.valid00) d00 += g[c] * base[at00 + c];
                if (t.valid01) d01 += g[c] * base[at00 + channels + c];
                if (t.valid10) d10 += g[c] * base[at00 + down + c];
                if (t.valid11) d11 += g[c] * base[at00 + down + channels + c];
            }
            float du, dv;
            int axis_u, axis_v;
            lrm_bilinear_coord_grad(&t, d00, d01, d10, d11, width, height, &du, &dv);
            lrm_triplane_axes(plane, &axis_u, &axis_v);
            grad[axis_u] += du;
            grad[axis_v] += dv;
        }
        for (int a = 0; a < 3; ++a) dpoints[3 * n + a] = grad[a];
    }
}
