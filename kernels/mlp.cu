/*
 * mlp.cu — the fused small MLP of the triplane NeRF decoder (OpenLRM's OSGDecoder: 3·C → 64 →
 * … → 4, ReLU), forward; the backward comes with training.
 *
 *   x_0 = inp (rows, d_0);  x_{l+1} = act_l(x_l · W_lᵀ + b_l)
 *   act_l = hidden_activation for l < L−1, output_activation for the last layer
 *   out (rows, d_L); every d_l for l ≥ 1 at most 64; L ≤ 16
 *
 * One thread carries one row through all layers: the layer's outputs accumulate in registers
 * (64, indexed only by unrolled constants, so they never spill to local memory), its inputs are
 * read from the thread's own column of a shared-memory tile (act[k][thread]: consecutive threads,
 * consecutive banks), and the weights sit in shared memory, packed by the host as W_lᵀ
 * (d_l × d_{l+1}) followed by b_l (zeros when absent), so every thread reads the same weight at
 * the same time (a broadcast). The first layer streams the input
 * row from global memory. A persistent grid (blocks = what fits on the SMs) loads the weights
 * into shared memory once per block. Dynamic shared memory above 48 KiB is opted in by the host
 * (cuFuncSetAttribute MAX_DYNAMIC_SHARED_SIZE_BYTES). Sums run in k order from the bias, in fp32.
 * Layers wider than 64 use the GEMM chain in CudaBackend instead.
 */
#include "lrm_prelude.cuh"
#include "activation.cuh"

#define LRM_MLP_WIDTH 64
#define LRM_MLP_MAX_LAYERS 16

typedef struct lrm_mlp_shape {
    int layers;
    int dims[LRM_MLP_MAX_LAYERS + 1];
    int hidden_activation;
    int output_activation;
} lrm_mlp_shape;

/* grid: persistent (≤ rows/128 blocks), block 128; dynamic shared memory = the packed parameters
 * followed by 64 × 128 floats of activations. */
extern "C" __global__ void __launch_bounds__(128) mlp_fused_forward_kernel(float* out,           // (rows, d_L)
                                                                           const float* inp,     // (rows, d_0)
                                                                           const float* params,  // packed Wᵀ, b per layer
                                                                           long long rows, lrm_mlp_shape shape) {
    extern __shared__ float weights[];
    int total = 0;
    for (int l = 0; l < shape.layers; ++l) total += (shape.dims[l] + 1) * shape.dims[l + 1];
    float* act = weights + total + threadIdx.x; /* act[k * blockDim.x]: this thread's column */
    for (int i = threadIdx.x; i < total; i += blockDim.x) weights[i] = params[i];
    __syncthreads();

    for (long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x; row < rows; row += (long long)gridDim.x * blockDim.x) {
        float acc[LRM_MLP_WIDTH];
        const float* w = weights;
        int in = shape.dims[0], width = shape.dims[1];
        const float* x = inp + row * in; /* layer 0 reads the input row from global memory */
        long long x_step = 1;
        for (int l = 0; l < shape.layers; ++l) {
            if (l > 0) {
                in = width;
                width = shape.dims[l + 1];
                x = act;
                x_step = blockDim.x;
            }
            const float* bias = w + in * width;
#pragma unroll
            for (int j = 0; j < LRM_MLP_WIDTH; ++j) acc[j] = j < width ? bias[j] : 0.0f;
            for (int k = 0; k < in; ++k) {
                const float xk = x[k * x_step];
                const float* wk = w + k * width;
#pragma unroll
                for (int j = 0; j < LRM_MLP_WIDTH; ++j)
                    if (j < width) acc[j] += xk * wk[j];
            }
            const int activation = l == shape.layers - 1 ? shape.output_activation : shape.hidden_activation;
#pragma unroll
            for (int j = 0; j < LRM_MLP_WIDTH; ++j)
                if (j < width) act[j * blockDim.x] = lrm_activate(acc[j], activation);
            w += (in + 1) * width;
        }
        float* y = out + row * width;
        for (int j = 0; j < width; ++j) y[j] = act[j * blockDim.x];
    }
}
