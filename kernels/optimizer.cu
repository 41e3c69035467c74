/*
 * optimizer.cu — the optimiser's device kernels (the CPU reference is native/src/optimizer.cpp; the update is
 * kernels/optimizer.cuh, compiled by both).
 *
 *   adamw_step_kernel         one AdamW step of one tensor in place: param, exp_avg, exp_avg_sq (n) from grad (n);
 *                             the step's scalars come from the host, formed in double as PyTorch forms them
 *   sum_squares_block_kernel  Σ x² of each LRM_SUMSQ_CHUNK-element chunk of x (n) in double, and how many of its
 *                             elements are NaN or ±inf: one block per chunk, a fixed reduction tree, so the partial
 *                             sums do not depend on the device; the host adds them in chunk order
 */
#include "lrm_prelude.cuh"
#include "optimizer.cuh"

#define LRM_SUMSQ_CHUNK 16384
#define LRM_SUMSQ_THREADS 256

extern "C" __global__ void adamw_step_kernel(float* param, float* exp_avg, float* exp_avg_sq,  // (n) each, updated
                                             const float* grad,                                 // (n)
                                             long long n, float decay, float beta1, float one_minus_beta1, float beta2,
                                             float one_minus_beta2, float step_size, float bias2_sqrt, float eps,
                                             float grad_scale) {
    lrm_adamw_scalars s;
    s.decay = decay;
    s.beta1 = beta1;
    s.one_minus_beta1 = one_minus_beta1;
    s.beta2 = beta2;
    s.one_minus_beta2 = one_minus_beta2;
    s.step_size = step_size;
    s.bias2_sqrt = bias2_sqrt;
    s.eps = eps;
    s.grad_scale = grad_scale;
    LRM_GRID_STRIDE(i, n) lrm_adamw_update(param + i, exp_avg + i, exp_avg_sq + i, grad[i], s);
}

/* grid (⌈n / LRM_SUMSQ_CHUNK⌉), block (LRM_SUMSQ_THREADS). */
extern "C" __global__ void sum_squares_block_kernel(double* sums,     // (chunks)
                                                    int* nonfinite,   // (chunks)
                                                    const float* x,   // (n)
                                                    long long n) {
    __shared__ double partial[LRM_SUMSQ_THREADS];
    __shared__ int bad[LRM_SUMSQ_THREADS];
    const long long begin = (long long)blockIdx.x * LRM_SUMSQ_CHUNK;
    const long long end = begin + LRM_SUMSQ_CHUNK < n ? begin + LRM_SUMSQ_CHUNK : n;
    double sum = 0.0;
    int count = 0;
    for (long long i = begin + threadIdx.x; i < end; i += LRM_SUMSQ_THREADS) {
        const float v = x[i];
        sum += (double)v * (double)v;
        count += (__float_as_uint(v) & 0x7f800000u) == 0x7f800000u ? 1 : 0;
    }
    partial[threadIdx.x] = sum;
    bad[threadIdx.x] = count;
    __syncthreads();
    for (int stride = LRM_SUMSQ_THREADS / 2; stride > 0; stride >>= 1) {
        if ((int)threadIdx.x < stride) {
            partial[threadIdx.x] += partial[threadIdx.x + stride];
            bad[threadIdx.x] += bad[threadIdx.x + stride];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        sums[blockIdx.x] = partial[0];
        nonfinite[blockIdx.x] = bad[0];
    }
}
