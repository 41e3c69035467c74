// gemm.cpp — out = op(a)·op(b) + bias + residual   (nn.Linear and friends)
//
//   out      (m, n)
//   a        (m, k), or (k, m) stored when transpose_a
//   b        (k, n), or (n, k) stored when transpose_b (nn.Linear weight: (out, in))
//   bias     (n)     optional, broadcast over rows
//   residual (m, n)  optional, may be out itself (in-place residual add)
//
// OpenBLAS sgemm does the product; the epilogue is folded into its C operand:
// out is first filled with residual + bias (or left alone when residual == out,
// then bias added), and sgemm runs with beta = 1. That is one extra pass over
// out, done in parallel, and no temporary. Without bias and residual, beta = 0.
//
// lrm::sgemm (declared in gemm.hpp, also used by conv.cpp) is where threads meet
// BLAS: it splits C into one block per OpenMP thread and runs single-threaded
// OpenBLAS on each (see gemm.hpp for why OpenBLAS' own threads are not used).
//
// PyTorch computes (a·b + bias) + residual; we compute a·b + (residual + bias).
// The difference is one rounding of the epilogue, ~1e-7 relative.
//
// Backward (docs/derivations/gemm.md), with A = op(a) (m×k), B = op(b) (k×n):
//   dA = dout·Bᵀ, dB = Aᵀ·dout, stored in a's and b's own layouts (transposed when
//   the forward's operand was), so each is one sgemm with no copies:
//     da (m,k) = dout·bᵀ      [tb: dout·b]      da (k,m) when ta = b·doutᵀ  [tb: bᵀ·doutᵀ]
//     db (k,n) = aᵀ·dout      [ta: a·dout]      db (n,k) when tb = doutᵀ·a  [ta: doutᵀ·aᵀ]
//   dbias (n) += Σ_rows dout   (RowPartials: double sums per requested thread, in order)
//   dresidual = dout: nothing to compute, the caller passes dout on.
// da and db overwrite (beta = 0): either operand may be an activation, so the op
// does not guess; a caller summing weight gradients over micro-batches adds db into
// its own accumulator. dbias accumulates, as parameter gradients do.
#include "gemm.hpp"

#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"
#include "reduce.hpp"

#include <cblas.h>

#include <algorithm>
#include <cstring>

namespace lrm {

void sgemm(bool transpose_a, bool transpose_b, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
           float beta, float* c, int ldc) {
    const CBLAS_TRANSPOSE ta = transpose_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = transpose_b ? CblasTrans : CblasNoTrans;
    // Below ~4 MFLOP a fork/join costs more than it saves.
    const double flops = 2.0 * m * n * k;
    const int threads = flops < 4e6 ? 1 : num_threads();
    const bool split_rows = m >= n;
    const int64_t extent = split_rows ? m : n;
    // Blocks are multiples of 16 (whole register tiles in OpenBLAS' kernels).
    const int64_t block = round_up(ceil_div(extent, threads), 16);
    const int64_t blocks = ceil_div(extent, block);
    if (blocks <= 1) {
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#pragma omp parallel for num_threads(static_cast<int>(blocks)) schedule(static, 1)
    for (int64_t i = 0; i < blocks; ++i) {
        const int64_t start = i * block;
        const int size = static_cast<int>(std::min(block, extent - start));
        if (split_rows) {
            // Rows start..start+size of op(A) and of C.
            const float* a_rows = transpose_a ? a + start : a + start * lda;
            cblas_sgemm(CblasRowMajor, ta, tb, size, n, k, 1.0f, a_rows, lda, b, ldb, beta, c + start * ldc, ldc);
        } else {
            // Columns start..start+size of op(B) and of C.
            const float* b_cols = transpose_b ? b + start * ldb : b + start;
            cblas_sgemm(CblasRowMajor, ta, tb, m, size, k, 1.0f, a, lda, b_cols, ldb, beta, c + start, ldc);
        }
    }
}

void bias_backward(float* dbias, const float* dout, int64_t rows, int64_t cols) {
    RowPartials parts(rows, cols, num_threads(), std::max<int64_t>(1, 32768 / cols));
#pragma omp parallel num_threads(parts.parts())
    parts.for_each_part([&](int part) {
        double* acc = parts.partial(part);
        for (int64_t r = parts.begin(part); r < parts.end(part); ++r) {
            const float* g = dout + r * cols;
            for (int64_t c = 0; c < cols; ++c) acc[c] += g[c];
        }
    });
    parts.reduce();
    for (int64_t c = 0; c < cols; ++c) dbias[c] = static_cast<float>(dbias[c] + parts.total(c));
}

namespace {

void gemm_forward(float* out, const float* a, const float* b, const float* bias, const float* residual, int m, int n,
                  int k, bool transpose_a, bool transpose_b) {
    const int64_t rows = m, cols = n;
    float beta = 0.0f;
    if (residual != nullptr || bias != nullptr) {
        beta = 1.0f;
        const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (rows * cols > 32768)
        for (int64_t i = 0; i < rows; ++i) {
            float* dst = out + i * cols;
            if (residual == nullptr) {
                for (int64_t j = 0; j < cols; ++j) dst[j] = bias[j];
            } else {
                const float* src = residual + i * cols;
                if (bias == nullptr) {
                    if (src != dst) std::memcpy(dst, src, sizeof(float) * cols);
                } else {
                    for (int64_t j = 0; j < cols; ++j) dst[j] = src[j] + bias[j];
                }
            }
        }
    }
    sgemm(transpose_a, transpose_b, m, n, k, a, transpose_a ? m : k, b, transpose_b ? k : n, beta, out, n);
}

void gemm_backward(float* da, float* db, float* dbias, const float* dout, const float* a, const float* b, int m, int n,
                   int k, bool transpose_a, bool transpose_b) {
    if (da != nullptr) {
        if (!transpose_a)  // da (m, k) = dout (m, n) · Bᵀ; Bᵀ is b itself when transpose_b
            sgemm(false, !transpose_b, m, k, n, dout, n, b, transpose_b ? k : n, 0.0f, da, k);
        else  // da (k, m) = B (k, n) · doutᵀ
            sgemm(transpose_b, true, k, m, n, b, transpose_b ? k : n, dout, n, 0.0f, da, m);
    }
    if (db != nullptr) {
        if (!transpose_b)  // db (k, n) = Aᵀ (k, m) · dout (m, n); Aᵀ is a itself when transpose_a
            sgemm(!transpose_a, false, k, n, m, a, transpose_a ? m : k, dout, n, 0.0f, db, n);
        else  // db (n, k) = doutᵀ (n, m) · A (m, k)
            sgemm(true, transpose_a, n, k, m, dout, n, a, transpose_a ? m : k, 0.0f, db, k);
    }
    if (dbias != nullptr) bias_backward(dbias, dout, m, n);
}

}  // namespace
}  // namespace lrm

extern "C" LRM_API lrm_status lrm_gemm_backward(float* da, float* db, float* dbias, const float* dout, const float* a,
                                                const float* b, int64_t m, int64_t n, int64_t k, int32_t transpose_a,
                                                int32_t transpose_b) {
    return lrm::guarded("lrm_gemm_backward", [&](const lrm::Args& args) {
        args.not_null(dout, "dout");
        if (da == nullptr && db == nullptr && dbias == nullptr)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "no gradient requested (da, db and dbias are all NULL)");
        if (da != nullptr) args.not_null(b, "b (needed for da)");
        if (db != nullptr) args.not_null(a, "a (needed for db)");
        args.positive(m, "m").positive(n, "n").positive(k, "k");
        args.elements({m, n}, "dout (m x n)");
        args.elements({m, k}, "a (m x k)");
        args.elements({k, n}, "b (k x n)");
        const int bm = args.blas_int(m, "m"), bn = args.blas_int(n, "n"), bk = args.blas_int(k, "k");
        lrm::gemm_backward(da, db, dbias, dout, a, b, bm, bn, bk, transpose_a != 0, transpose_b != 0);
    });
}

extern "C" LRM_API lrm_status lrm_gemm_forward(float* out, const float* a, const float* b, const float* bias,
                                               const float* residual, int64_t m, int64_t n, int64_t k,
                                               int32_t transpose_a, int32_t transpose_b) {
    return lrm::guarded("lrm_gemm_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(a, "a").not_null(b, "b");
        args.positive(m, "m").positive(n, "n").positive(k, "k");
        args.elements({m, n}, "out (m x n)");
        args.elements({m, k}, "a (m x k)");
        args.elements({k, n}, "b (k x n)");
        const int bm = args.blas_int(m, "m"), bn = args.blas_int(n, "n"), bk = args.blas_int(k, "k");
        lrm::gemm_forward(out, a, b, bias, residual, bm, bn, bk, transpose_a != 0, transpose_b != 0);
    });
}
