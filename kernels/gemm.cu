/*
 * gemm.cu — the plain fp32 GEMM: the parity path, and the fallback when cuBLASLt is absent
 * (the fast path is cuBLASLt, bf16 operands with fp32 accumulation, in CudaBackend).
 *
 *   out (M, N) = op(a)·op(b) + bias (N) + residual (M, N)
 *   a (M, K), or (K, M) when transpose_a; b (K, N), or (N, K) when transpose_b (nn.Linear weights)
 *   bias, residual optional; residual may be out (each element is read, then written, by the
 *   one thread that owns it).
 *
 * 64×64 output tiles, K in steps of 16 staged in shared memory, 256 threads with 4×4 outputs
 * each. Loads are coalesced along whichever dimension is contiguous in memory. Not tuned.
 */
#include "lrm_prelude.cuh"

#define LRM_GEMM_TILE 64
#define LRM_GEMM_K 16

/* grid (⌈M/64⌉, ⌈N/64⌉), block 256: rows on x, whose limit is 2³¹ − 1 blocks. */
extern "C" __global__ void __launch_bounds__(256) gemm_forward_kernel(float* out,             // (M, N)
                                                                      const float* a,         // (M, K) or (K, M)
                                                                      const float* b,         // (K, N) or (N, K)
                                                                      const float* bias,      // (N) or null
                                                                      const float* residual,  // (M, N) or null
                                                                      int m, int n, int k, int transpose_a,
                                                                      int transpose_b) {
    __shared__ float a_tile[LRM_GEMM_K][LRM_GEMM_TILE + 4]; /* [k][row] */
    __shared__ float b_tile[LRM_GEMM_K][LRM_GEMM_TILE + 4]; /* [k][col] */
    const int tid = threadIdx.x;
    const int tx = tid % 16, ty = tid / 16;
    const int row0 = blockIdx.x * LRM_GEMM_TILE, col0 = blockIdx.y * LRM_GEMM_TILE;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < k; k0 += LRM_GEMM_K) {
        for (int idx = tid; idx < LRM_GEMM_K * LRM_GEMM_TILE; idx += 256) {
            int kk, r;
            if (transpose_a) { r = idx % LRM_GEMM_TILE; kk = idx / LRM_GEMM_TILE; }
            else { kk = idx % LRM_GEMM_K; r = idx / LRM_GEMM_K; }
            const int row = row0 + r, kx = k0 + kk;
            float value = 0.0f;
            if (row < m && kx < k) value = transpose_a ? a[(long long)kx * m + row] : a[(long long)row * k + kx];
            a_tile[kk][r] = value;
        }
        for (int idx = tid; idx < LRM_GEMM_K * LRM_GEMM_TILE; idx += 256) {
            int kk, c;
            if (transpose_b) { kk = idx % LRM_GEMM_K; c = idx / LRM_GEMM_K; }
            else { c = idx % LRM_GEMM_TILE; kk = idx / LRM_GEMM_TILE; }
            const int col = col0 + c, kx = k0 + kk;
            float value = 0.0f;
            if (col < n && kx < k) value = transpose_b ? b[(long long)col * k + kx] : b[(long long)kx * n + col];
            b_tile[kk][c] = value;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < LRM_GEMM_K; ++kk) {
            float av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) av[i] = a_tile[kk][ty * 4 + i];
#pragma unroll
            for (int j = 0; j < 4; ++j) bv[j] = b_tile[kk][tx * 4 + j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int row = row0 + ty * 4 + i;
        if (row >= m) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int col = col0 + tx * 4 + j;
            if (col >= n) continue;
            const long long at = (long long)row * n + col;
            float value = acc[i][j];
            if (bias != nullptr) value += bias[col];
            if (residual != nullptr) value += residual[at];
            out[at] = value;
        }
    }
}
