/*
 * layernorm.cu — LayerNorm and the fused ModLN of LRM §3.2, forward and backward.
 *
 *   x    = inp + residual                       (residual optional: the fused residual add;
 *                                                x is written to sum_out when given)
 *   mean = Σx/C, var = Σ(x − mean)²/C, rstd = 1/√(var + eps)     (fp32, two passes)
 *   y    = (x − mean)·rstd·w + b                 (w, b optional)
 *   ModLN: out = y·(1 + scale[b]) + shift[b]     (shift, scale (B, C) optional; b = row / tokens)
 *   out written as fp32 (out) and/or bf16 (out_bf16, the next GEMM's operand)
 *
 *   out, sum_out (rows, C) · out_bf16 (rows, C) u16 · mean, rstd (rows) · inp, residual (rows, C)
 *
 * One warp per row, 8 rows per 256-thread block. The row is read once for the mean, again for
 * the variance and once more for the output (the re-reads hit L1/L2: a row of 1024 floats is
 * 4 KiB). The per-element math is kernels/layernorm.cuh, shared with the CPU reference.
 *
 * Two kernels: layernorm_forward_kernel (any C, scalar loads, three passes over the row) and
 * layernorm_forward_vec4_kernel (C % 4 == 0, C ≤ 2048: the row read once into registers with
 * 16-byte loads). sum_out may alias inp or residual (the decoder's f = f + x in place).
 *
 * Backward (docs/derivations/layernorm.md, modln.md; the same layernorm.cuh functions as the CPU):
 *   layernorm_backward_input_kernel   dx per row, one warp per row: dy = dout (LN) or dout·(1 + scale[b])
 *                                     (ModLN), g = dy·w, dx = rstd·(g − mean(g) − x̂·mean(g·x̂))
 *   layernorm_backward_params_kernel  per group of `tokens` rows (ModLN: one sample) and column: Σ dy·x̂ and
 *                                     Σ dy in double (into partial), and for ModLN dshift = Σ dout,
 *                                     dscale = Σ dout·y (overwritten); 8 row lanes added in order
 *   layernorm_backward_reduce_kernel  dweight += Σ_groups, dbias += Σ_groups, in group order
 */
#include "lrm_prelude.cuh"
#include "bf16.cuh"
#include "layernorm.cuh"

#define LRM_LN_ROWS_PER_BLOCK 8

extern "C" __global__ void __launch_bounds__(256) layernorm_forward_kernel(
    float* out,                 // (rows, C) or null
    unsigned short* out_bf16,   // (rows, C) or null
    float* sum_out,             // (rows, C) or null: inp + residual
    float* mean,                // (rows) or null
    float* rstd,                // (rows) or null
    const float* inp,           // (rows, C)
    const float* residual,      // (rows, C) or null
    const float* weight,        // (C) or null
    const float* bias,          // (C) or null
    const float* shift,         // (rows / tokens, C) or null
    const float* scale,         // (rows / tokens, C) or null
    int rows, int tokens, int channels, float eps) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row = blockIdx.x * LRM_LN_ROWS_PER_BLOCK + warp;
    if (row >= rows) return;
    const long long base = (long long)row * channels;
    const float* x = inp + base;
    const float* r = residual != nullptr ? residual + base : nullptr;

    float sum = 0.0f;
    for (int c = lane; c < channels; c += 32) {
        const float v = r != nullptr ? x[c] + r[c] : x[c];
        if (sum_out != nullptr) sum_out[base + c] = v;
        sum += v;
    }
    const float m = lrm_warp_sum(sum) / (float)channels;
    /* Later passes re-read x + r, or the sum just written (which may overwrite inp or residual in place). */
    const float* summed = sum_out != nullptr ? sum_out + base : nullptr;
    float sq = 0.0f;
    for (int c = lane; c < channels; c += 32) {
        const float d = (summed != nullptr ? summed[c] : r != nullptr ? x[c] + r[c] : x[c]) - m;
        sq += d * d;
    }
    const float s = lrm_layernorm_rstd(lrm_warp_sum(sq) / (float)channels, eps);
    if (lane == 0) {
        if (mean != nullptr) mean[row] = m;
        if (rstd != nullptr) rstd[row] = s;
    }
    const long long modulation = (long long)(row / tokens) * channels;
    for (int c = lane; c < channels; c += 32) {
        const float v = summed != nullptr ? summed[c] : r != nullptr ? x[c] + r[c] : x[c];
        float y = lrm_layernorm_apply(v, m, s, weight != nullptr ? weight[c] : 1.0f, bias != nullptr ? bias[c] : 0.0f);
        if (scale != nullptr) y = lrm_modln_modulate(y, shift[modulation + c], scale[modulation + c]);
        if (out != nullptr) out[base + c] = y;
        if (out_bf16 != nullptr) out_bf16[base + c] = lrm_bf16_from_bits(__float_as_uint(y));
    }
}

/* The same op with the row held in registers: C % 4 == 0 and C ≤ 2048, 16-byte aligned rows.
 * Each lane loads its float4 columns once (coalesced 16-byte loads), both statistics come from
 * registers (the same two-pass formulas), and the outputs are written from them: one read of
 * the row instead of three. Register arrays are indexed by unrolled constants only. */
#define LRM_LN_VEC4_MAX (2048 / 128) /* float4 per lane */

static __device__ __forceinline__ float4 lrm_add4(float4 a, float4 b) { return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }

extern "C" __global__ void __launch_bounds__(256) layernorm_forward_vec4_kernel(
    float* out, unsigned short* out_bf16, float* sum_out, float* mean, float* rstd, const float* inp,
    const float* residual, const float* weight, const float* bias, const float* shift, const float* scale, int rows,
    int tokens, int channels, float eps) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row = blockIdx.x * LRM_LN_ROWS_PER_BLOCK + warp;
    if (row >= rows) return;
    const int quads = channels >> 2;
    const long long base = (long long)row * channels;
    const float4* x4 = (const float4*)(inp + base);
    const float4* r4 = residual != nullptr ? (const float4*)(residual + base) : nullptr;
    float4 v[LRM_LN_VEC4_MAX];
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < LRM_LN_VEC4_MAX; ++i) {
        const int q = lane + 32 * i;
        if (q < quads) {
            v[i] = r4 != nullptr ? lrm_add4(x4[q], r4[q]) : x4[q];
            if (sum_out != nullptr) ((float4*)(sum_out + base))[q] = v[i];
            sum += (v[i].x + v[i].y) + (v[i].z + v[i].w);
        }
    }
    const float m = lrm_warp_sum(sum) / (float)channels;
    float sq = 0.0f;
#pragma unroll
    for (int i = 0; i < LRM_LN_VEC4_MAX; ++i) {
        if (lane + 32 * i < quads) {
            const float dx = v[i].x - m, dy = v[i].y - m, dz = v[i].z - m, dw = v[i].w - m;
            sq += (dx * dx + dy * dy) + (dz * dz + dw * dw);
        }
    }
    const float s = lrm_layernorm_rstd(lrm_warp_sum(sq) / (float)channels, eps);
    if (lane == 0) {
        if (mean != nullptr) mean[row] = m;
        if (rstd != nullptr) rstd[row] = s;
    }
    const long long modulation = (long long)(row / tokens) * channels;
#pragma unroll
    for (int i = 0; i < LRM_LN_VEC4_MAX; ++i) {
        const int q = lane + 32 * i;
        if (q >= quads) continue;
        float y[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int c = 4 * q + e;
            y[e] = lrm_layernorm_apply(y[e], m, s, weight != nullptr ? weight[c] : 1.0f, bias != nullptr ? bias[c] : 0.0f);
            if (scale != nullptr) y[e] = lrm_modln_modulate(y[e], shift[modulation + c], scale[modulation + c]);
        }
        if (out != nullptr) ((float4*)(out + base))[q] = make_float4(y[0], y[1], y[2], y[3]);
        if (out_bf16 != nullptr) {
            uint2 packed;
            packed.x = (unsigned int)lrm_bf16_from_bits(__float_as_uint(y[0])) | ((unsigned int)lrm_bf16_from_bits(__float_as_uint(y[1])) << 16);
            packed.y = (unsigned int)lrm_bf16_from_bits(__float_as_uint(y[2])) | ((unsigned int)lrm_bf16_from_bits(__float_as_uint(y[3])) << 16);
            ((uint2*)(out_bf16 + base))[q] = packed;
        }
    }
}

extern "C" __global__ void __launch_bounds__(256) layernorm_backward_input_kernel(
    float* dinp,                // (rows, C)
    const float* dout,          // (rows, C)
    const float* mean,          // (rows)
    const float* rstd,          // (rows)
    const float* inp,           // (rows, C)
    const float* weight,        // (C) or null
    const float* scale,         // (rows / tokens, C) or null: ModLN
    int rows, int tokens, int channels) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row = blockIdx.x * LRM_LN_ROWS_PER_BLOCK + warp;
    if (row >= rows) return;
    const long long base = (long long)row * channels;
    const float* x = inp + base;
    const float* dy = dout + base;
    const float* s = scale != nullptr ? scale + (long long)(row / tokens) * channels : nullptr;
    const float mu = mean[row], rs = rstd[row];
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (int c = lane; c < channels; c += 32) {
        const float dyn = s != nullptr ? lrm_modln_backward_dnormed(dy[c], s[c]) : dy[c];
        const float g = dyn * (weight != nullptr ? weight[c] : 1.0f);
        sum_g += g;
        sum_gx += g * lrm_layernorm_apply(x[c], mu, rs, 1.0f, 0.0f);
    }
    const float mean_g = lrm_warp_sum(sum_g) / (float)channels;
    const float mean_gx = lrm_warp_sum(sum_gx) / (float)channels;
    for (int c = lane; c < channels; c += 32) {
        const float dyn = s != nullptr ? lrm_modln_backward_dnormed(dy[c], s[c]) : dy[c];
        const float g = dyn * (weight != nullptr ? weight[c] : 1.0f);
        dinp[base + c] = lrm_layernorm_backward_dx(g, lrm_layernorm_apply(x[c], mu, rs, 1.0f, 0.0f), mean_g, mean_gx, rs);
    }
}

/* grid (groups, ⌈C/32⌉), block (32, 8): groups on x, whose limit is 2³¹ − 1 (y's is 65535, 16.7M rows of LayerNorm). */
extern "C" __global__ void layernorm_backward_params_kernel(
    double* partial,            // (groups, 2, C): Σ dy·x̂, Σ dy over the group's rows
    float* dshift,              // (groups, C) or null (ModLN), overwritten
    float* dscale,              // (groups, C) or null (ModLN), overwritten
    const float* dout,          // (rows, C)
    const float* mean,          // (rows)
    const float* rstd,          // (rows)
    const float* inp,           // (rows, C)
    const float* weight,        // (C) or null
    const float* bias,          // (C) or null
    const float* scale,         // (groups, C) or null: ModLN
    int rows, int tokens, int channels) {
    __shared__ double lanes[4][8][32];
    const int c = blockIdx.y * 32 + threadIdx.x, group = blockIdx.x;
    double sum_w = 0.0, sum_b = 0.0, sum_shift = 0.0, sum_scale = 0.0;
    if (c < channels) {
        const float w = weight != nullptr ? weight[c] : 1.0f, b = bias != nullptr ? bias[c] : 0.0f;
        const float s = scale != nullptr ? scale[(long long)group * channels + c] : 0.0f;
        for (int t = threadIdx.y; t < tokens; t += 8) {
            const long long row = (long long)group * tokens + t;
            if (row >= rows) break;
            const long long i = row * channels + c;
            const float mu = mean[row], rs = rstd[row], dy = dout[i];
            float dyn = dy;
            if (scale != nullptr) {
                sum_shift += (double)dy;
                sum_scale += (double)dy * (double)lrm_layernorm_apply(inp[i], mu, rs, w, b);
                dyn = lrm_modln_backward_dnormed(dy, s);
            }
            sum_w += (double)dyn * (double)lrm_layernorm_apply(inp[i], mu, rs, 1.0f, 0.0f);
            sum_b += (double)dyn;
        }
    }
    lanes[0][threadIdx.y][threadIdx.x] = sum_w;
    lanes[1][threadIdx.y][threadIdx.x] = sum_b;
    lanes[2][threadIdx.y][threadIdx.x] = sum_shift;
    lanes[3][threadIdx.y][threadIdx.x] = sum_scale;
    __syncthreads();
    if (threadIdx.y == 0 && c < channels) {
        double total[4] = {0.0, 0.0, 0.0, 0.0};
        for (int q = 0; q < 4; ++q)
            for (int k = 0; k < 8; ++k) total[q] += lanes[q][k][threadIdx.x];
        partial[((long long)group * 2) * channels + c] = total[0];
        partial[((long long)group * 2 + 1) * channels + c] = total[1];
        if (dshift != nullptr) dshift[(long long)group * channels + c] = (float)total[2];
        if (dscale != nullptr) dscale[(long long)group * channels + c] = (float)total[3];
    }
}

extern "C" __global__ void layernorm_backward_reduce_kernel(float* dweight,          // (C) or null, accumulated
                                                            float* dbias,            // (C) or null, accumulated
                                                            const double* partial,   // (groups, 2, C)
                                                            int groups, int channels) {
    LRM_GRID_STRIDE(c, channels) {
        double w = 0.0, b = 0.0;
        for (int g = 0; g < groups; ++g) {
            w += partial[((long long)g * 2) * channels + c];
            b += partial[((long long)g * 2 + 1) * channels + c];
        }
        if (dweight != nullptr) dweight[c] = (float)((double)dweight[c] + w);
        if (dbias != nullptr) dbias[c] = (float)((double)dbias[c] + b);
    }
}
