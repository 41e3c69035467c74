/*
 * softmax.cu — softmax over the last dimension, forward and backward.
 *
 *   out (rows, cols) = exp(x − max) / Σ exp(x − max); out may be inp
 *   backward: dinp = y·(dy − Σ_c y·dy) (activation.cuh's lrm_softmax_gradient); dinp may be dy
 *
 * One warp per row, 8 rows per block; three passes over the row (max, sum, write). Accurate
 * expf (not __expf): the parity bound for fp32 ops is 1e-5.
 */
#include "lrm_prelude.cuh"
#include "lrm_common.cuh"
#include "activation.cuh"

extern "C" __global__ void __launch_bounds__(256) softmax_forward_kernel(float* out,        // (rows, cols)
                                                                         const float* inp,  // (rows, cols)
                                                                         int rows, int cols) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row = blockIdx.x * 8 + warp;
    if (row >= rows) return;
    const float* x = inp + (long long)row * cols;
    float* y = out + (long long)row * cols;
    float m = LRM_NEG_INF;
    for (int c = lane; c < cols; c += 32) m = fmaxf(m, x[c]);
    m = lrm_warp_max(m);
    float sum = 0.0f;
    for (int c = lane; c < cols; c += 32) sum += expf(x[c] - m);
    const float inv = 1.0f / lrm_warp_sum(sum);
    for (int c = lane; c < cols; c += 32) y[c] = expf(x[c] - m) * inv;
}

extern "C" __global__ void __launch_bounds__(256) softmax_backward_kernel(float* grad_inp,         // (rows, cols)
                                                                          const float* grad_out,   // (rows, cols)
                                                                          const float* out,        // (rows, cols)
                                                                          int rows, int cols) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row = blockIdx.x * 8 + warp;
    if (row >= rows) return;
    const long long base = (long long)row * cols;
    float dot = 0.0f;
    for (int c = lane; c < cols; c += 32) dot += out[base + c] * grad_out[base + c];
    dot = lrm_warp_sum(dot);
    for (int c = lane; c < cols; c += 32) grad_inp[base + c] = lrm_softmax_gradient(out[base + c], grad_out[base + c], dot);
}
