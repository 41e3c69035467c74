// gemm.hpp — the library's one entry to BLAS, shared by gemm.cpp and conv.cpp.
#pragma once

#include <cstdint>

namespace lrm {

// C (m×n, rows ldc apart) = op(A)·op(B) + beta·C, row-major, OpenBLAS sgemm.
// Parallelised by us, not by OpenBLAS: C is cut into blocks of rows (or of
// columns when C is short and wide), one single-threaded sgemm per block on the
// library's OpenMP threads. OpenBLAS' own pthread pool is set to one thread when
// the library loads (library.cpp): two thread pools on the same cores (libgomp
// workers spinning after a parallel region while OpenBLAS' workers wait for a
// core) made sgemm after any OpenMP loop 2-5x slower (deconv 48 ms → 9 ms on 2
// cores). The split depends only on the sizes and the thread count, so results are
// deterministic for a given thread count; OpenBLAS' internal blocking depends on
// the block shape, so another thread count may change the last bits (~1e-7).
// Must be called outside OpenMP parallel regions.
void sgemm(bool transpose_a, bool transpose_b, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
           float beta, float* c, int ldc);

// dbias[c] += Σ_r dout[r, c] over rows × cols: per-thread double partials (RowPartials) added in order, so
// deterministic for a given thread count. The bias gradient of gemm_backward and of the patch embedding.
void bias_backward(float* dbias, const float* dout, int64_t rows, int64_t cols);

}  // namespace lrm
