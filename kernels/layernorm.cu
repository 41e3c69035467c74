/*
 * layernorm.cu — LayerNorm and the fused ModLN of LRM §3.2, forward (backward with training).
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
