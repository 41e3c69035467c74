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
 * Variants tried: none yet (simple and exact first; vectorised float4 loads are the next step).
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
    float sq = 0.0f;
    for (int c = lane; c < channels; c += 32) {
        const float d = (r != nullptr ? x[c] + r[c] : x[c]) - m;
        sq += d * d;
    }
    const float s = lrm_layernorm_rstd(lrm_warp_sum(sq) / (float)channels, eps);
    if (lane == 0) {
        if (mean != nullptr) mean[row] = m;
        if (rstd != nullptr) rstd[row] = s;
    }
    const long long modulation = (long long)(row / tokens) * channels;
    for (int c = lane; c < channels; c += 32) {
        const float v = r != nullptr ? x[c] + r[c] : x[c];
        float y = lrm_layernorm_apply(v, m, s, weight != nullptr ? weight[c] : 1.0f, bias != nullptr ? bias[c] : 0.0f);
        if (scale != nullptr) y = lrm_modln_modulate(y, shift[modulation + c], scale[modulation + c]);
        if (out != nullptr) out[base + c] = y;
        if (out_bf16 != nullptr) out_bf16[base + c] = lrm_bf16_from_bits(__float_as_uint(y));
    }
}
