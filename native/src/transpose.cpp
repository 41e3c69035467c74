// transpose.cpp — batched matrix transpose, the layout changes between the
// transformer's token-major tensors and the image-shaped ones:
//
//   out[b, c, r] = inp[b, r, c]        out (B, C, R), inp (B, R, C)
//
// Used for tokens (3, H·W, D) → (3, D, H, W) before the de-convolution, planes
// (3, C, H·W) → (3, H·W, C) channels-last for triplane sampling, and DINOv2's
// position table (37·37, C) ↔ (C, 37, 37) around its resize.
//
// Cache-blocked in kTile × kTile tiles; OpenMP over (batch, tile rows). A pure
// permutation, so results are exact. out must not overlap inp.
// Backward: the transpose of the gradient (the same op with R and C swapped).
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <algorithm>

namespace lrm {
namespace {

constexpr int64_t kTile = 32;

void transpose_forward(float* out, const float* inp, int64_t batch, int64_t rows, int64_t cols) {
    const int64_t row_tiles = ceil_div(rows, kTile);
    const int64_t jobs = batch * row_tiles;
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (batch * rows * cols > (1 << 15))
    for (int64_t job = 0; job < jobs; ++job) {
        const int64_t b = job / row_tiles;
        const int64_t r0 = (job % row_tiles) * kTile;
        const int64_t r1 = std::min(r0 + kTile, rows);
        const float* src = inp + b * rows * cols;
        float* dst = out + b * rows * cols;
        for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
            const int64_t c1 = std::min(c0 + kTile, cols);
            for (int64_t r = r0; r < r1; ++r)
                for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
        }
    }
}

}  // namespace
}  // namespace lrm

extern "C" LRM_API lrm_status lrm_transpose_forward(float* out, const float* inp, int64_t batch, int64_t rows,
                                                    int64_t cols) {
    return lrm::guarded("lrm_transpose_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(inp, "inp");
        args.positive(batch, "batch").positive(rows, "rows").positive(cols, "cols");
        const int64_t n = args.elements({batch, rows, cols}, "inp (batch x rows x cols)");
        if (out < inp + n && inp < out + n)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "out must not overlap inp (the transpose is not in place)");
        lrm::transpose_forward(out, inp, batch, rows, cols);
    });
}
