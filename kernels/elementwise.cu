/*
 * elementwise.cu — point-wise and layout kernels (forward; the backward kernels come with
 * training, side by side here).
 *
 *   activation_forward_kernel  out (n) = act(inp (n)), act ∈ {none, relu, gelu, silu}; out may be inp
 *   activation_backward_kernel dinp (n) = dout·act'(inp) (relu: exactly 0 where inp ≤ 0); dinp may be dout
 *   bias_activation_kernel     out (rows, cols) = act(inp + bias (cols)); out may be inp
 *   add_forward_kernel         out (n) = a + b
 *   layerscale_forward_kernel  out (rows, C) = residual + inp·gamma (C); residual optional
 *   column_dot_accumulate_kernel  out (C) += Σ_rows x·y (rows, C), y optional (1): LayerScale's dgamma (x = dout,
 *                              y = inp) and GEMM's dbias (x = dout); in double, a fixed order per column (deterministic)
 *   layerscale_input_backward_kernel  dinp = dout·gamma, dresidual = dout (each optional; either may be dout)
 *   convert_f32_to_bf16_kernel / convert_bf16_to_f32_kernel   round to nearest even / exact
 *   transpose_forward_kernel   out (batch, cols, rows) = inp (batch, rows, cols)ᵀ, 32×32 tiles
 *                              through shared memory so both reads and writes are coalesced
 *
 * The math is kernels/activation.cuh and kernels/bf16.cuh (the CPU reference compiles the same
 * functions). Flat kernels are grid-stride loops with 64-bit indices, so any grid size is valid.
 */
#include "lrm_prelude.cuh"
#include "activation.cuh"
#include "bf16.cuh"

extern "C" __global__ void activation_forward_kernel(float* out,        // (n)
                                                     const float* inp,  // (n)
                                                     long long n, int activation) {
    LRM_GRID_STRIDE(i, n) out[i] = lrm_activate(inp[i], activation);
}

extern "C" __global__ void activation_backward_kernel(float* grad_inp,        // (n)
                                                      const float* grad_out,  // (n)
                                                      const float* inp,       // (n) the pre-activation
                                                      long long n, int activation) {
    LRM_GRID_STRIDE(i, n) {
        const float x = inp[i], dy = grad_out[i];
        float g;
        switch (activation) {
            case 1: g = lrm_relu_gradient(dy, x); break;
            case 2: g = dy * lrm_gelu_derivative(x); break;
            case 3: g = dy * lrm_silu_derivative(x); break;
            default: g = dy;
        }
        grad_inp[i] = g;
    }
}

extern "C" __global__ void bias_activation_kernel(float* out,         // (rows, cols)
                                                  const float* inp,   // (rows, cols)
                                                  const float* bias,  // (cols) or null
                                                  long long rows, int cols, int activation) {
    LRM_GRID_STRIDE(i, rows * cols) {
        const float b = bias != nullptr ? bias[i % cols] : 0.0f;
        out[i] = lrm_activate(inp[i] + b, activation);
    }
}

extern "C" __global__ void add_forward_kernel(float* out, const float* a, const float* b, long long n) {
    LRM_GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

extern "C" __global__ void layerscale_forward_kernel(float* out,             // (rows, channels)
                                                     const float* inp,       // (rows, channels)
                                                     const float* gamma,     // (channels)
                                                     const float* residual,  // (rows, channels) or null
                                                     long long rows, int channels) {
    LRM_GRID_STRIDE(i, rows * channels) {
        const float scaled = inp[i] * gamma[i % channels];
        out[i] = residual != nullptr ? residual[i] + scaled : scaled;
    }
}

/* grid (⌈cols/32⌉), block (32, 8): 8 row lanes per column, added in lane order. */
extern "C" __global__ void column_dot_accumulate_kernel(float* out,      // (cols), accumulated
                                                        const float* x,  // (rows, cols)
                                                        const float* y,  // (rows, cols) or null (1)
                                                        long long rows, int cols) {
    __shared__ double partial[8][32];
    const int c = blockIdx.x * 32 + threadIdx.x;
    double acc = 0.0;
    if (c < cols)
        for (long long r = threadIdx.y; r < rows; r += 8) {
            const long long i = r * cols + c;
            acc += y != nullptr ? (double)x[i] * (double)y[i] : (double)x[i];
        }
    partial[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        double total = 0.0;
        for (int k = 0; k < 8; ++k) total += partial[k][threadIdx.x];
        out[c] = (float)((double)out[c] + total);
    }
}

extern "C" __global__ void layerscale_input_backward_kernel(float* dinp,          // (rows, channels) or null
                                                            float* dresidual,     // (rows, channels) or null; may be dout
                                                            const float* dout,    // (rows, channels)
                                                            const float* gamma,   // (channels)
                                                            long long rows, int channels) {
    LRM_GRID_STRIDE(i, rows * channels) {
        const float g = dout[i];
        if (dinp != nullptr) dinp[i] = g * gamma[i % channels];
        if (dresidual != nullptr && dresidual != dout) dresidual[i] = g;
    }
}

extern "C" __global__ void convert_f32_to_bf16_kernel(unsigned short* out, const float* inp, long long n) {
    LRM_GRID_STRIDE(i, n) out[i] = lrm_bf16_from_bits(__float_as_uint(inp[i]));
}

extern "C" __global__ void convert_bf16_to_f32_kernel(float* out, const unsigned short* inp, long long n) {
    LRM_GRID_STRIDE(i, n) out[i] = __uint_as_float(lrm_bf16_to_bits(inp[i]));
}

#define LRM_TRANSPOSE_TILE 32
#define LRM_TRANSPOSE_ROWS 8

/* grid (⌈cols/32⌉, ⌈rows/32⌉, batch), block (32, 8). */
extern "C" __global__ void transpose_forward_kernel(float* out,        // (batch, cols, rows)
                                                    const float* inp,  // (batch, rows, cols)
                                                    int rows, int cols) {
    __shared__ float tile[LRM_TRANSPOSE_TILE][LRM_TRANSPOSE_TILE + 1]; /* +1: no bank conflicts on the column read */
    const long long plane = (long long)rows * cols;
    const float* src = inp + blockIdx.z * plane;
    float* dst = out + blockIdx.z * plane;
    const int x = blockIdx.x * LRM_TRANSPOSE_TILE + threadIdx.x;
    const int y0 = blockIdx.y * LRM_TRANSPOSE_TILE;
    for (int dy = threadIdx.y; dy < LRM_TRANSPOSE_TILE; dy += LRM_TRANSPOSE_ROWS) {
        const int y = y0 + dy;
        if (x < cols && y < rows) tile[dy][threadIdx.x] = src[(long long)y * cols + x];
    }
    __syncthreads();
    /* Output row = input column. */
    const int ox = y0 + threadIdx.x; /* input row index, output column */
    for (int dx = threadIdx.y; dx < LRM_TRANSPOSE_TILE; dx += LRM_TRANSPOSE_ROWS) {
        const int oy = blockIdx.x * LRM_TRANSPOSE_TILE + dx; /* input column, output row */
        if (oy < cols && ox < rows) dst[(long long)oy * rows + ox] = tile[threadIdx.x][dx];
    }
}
