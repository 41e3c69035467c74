// mlp.cpp — a small fused MLP: a stack of nn.Linear layers with an activation
// between them and (optionally) after the last, e.g. LRM's triplane NeRF decoder
// (3·80 → 64 → … → 4, ReLU) or the camera embedder.
//
//   x_0 = inp (rows, d_0);  x_{l+1} = act_l(x_l · W_lᵀ + b_l)
//   act_l = hidden_activation for l < L−1, output_activation for the last layer
//   out (rows, d_L), W_l (d_{l+1}, d_l) nn.Linear layout, b_l (d_{l+1}) optional
//
// Fusion: rows are cut into blocks of kBlockRows; one thread carries a block
// through all layers in two ping-pong scratch tiles, so activations never leave
// the cache and memory stays O(threads · kBlockRows · max d). The layer products
// use the register-tiled microkernel (microkernel.hpp), not BLAS: we are inside an
// OpenMP region, and for widths of 64 per-call BLAS overhead would dominate anyway.
// Weights are packed once per call as W_lᵀ (d_l, d_{l+1} rounded up to whole
// vectors, zero-padded), the layout the microkernel streams. The first layer reads
// the input rows in place (only a last partial row tile is copied), prefetching the
// next row tile: the input (e.g. 262144 × 240 floats, 250 MB) comes from memory.
//
// Two builds (cpu_dispatch.hpp): the baseline (x86-64-v3: AVX2, 6×16 tiles) and
// AVX-512 (x86-64-v4: 8×32 tiles), chosen at run time. Every output is the same
// chain of fused multiply-adds in both, so their results are bit-identical.
// Measured (AMD EPYC Zen 5 VM, 2 threads, 262144 rows, 240→64→64→64→4, ReLU,
// 12.5 GFLOP, best of 5): before (AVX2, input copied per block) ~63 ms; baseline
// build ~56 ms; AVX-512 build ~31 ms (~400 GFLOP/s; without the prefetch ~36 ms).
//
// Backward (lrm_mlp_backward, docs/derivations/mlp.md): nothing saved; rows are taken in
// chunks whose activations are recomputed (sgemm), then the chain rule runs back through
// the layers with g_L = dout ⊙ act'(z_L), dW_l += g_{l+1}ᵀ·x_l, db_l += Σ_rows g_{l+1},
// g_l = (g_{l+1}·W_l) ⊙ act'(z_l), dinp = g_1·W_0 (overwritten). The products go through
// lrm::sgemm (outside OpenMP regions, beta = 1 accumulating dW in place); memory is
// O(chunk · Σ d_l), independent of rows. Deterministic for a given thread count.
#include "common.hpp"
#include "cpu_dispatch.hpp"
#include "errors.hpp"
#include "gemm.hpp"
#include "lrm_native.h"
#include "fastmath.hpp"
#include "microkernel.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "activation.cuh"

namespace lrm {
namespace LRM_KERNEL_NS {
namespace {

constexpr int64_t kBlockRows = 240;  // rows per block (a multiple of 6 and 8, both builds' kTileRows)
static_assert(kBlockRows % kTileRows == 0, "row block must hold whole tiles");
static_assert(kVecWidth <= kMaxTileCols, "lrm_mlp_forward checks packed sizes with kMaxTileCols of padding");

// y[r, o] = act(y[r, o] + bias[o]) over a block; one loop per activation so each
// one vectorises (a switch inside the loop would not).
template <class Activation>
void bias_activate(float* y, int64_t ld, int64_t rows, int64_t cols, const float* bias, Activation act) {
    for (int64_t r = 0; r < rows; ++r) {
        float* yr = y + r * ld;
        if (bias != nullptr)
            for (int64_t o = 0; o < cols; ++o) yr[o] = act(yr[o] + bias[o]);
        else
            for (int64_t o = 0; o < cols; ++o) yr[o] = act(yr[o]);
    }
}

void epilogue(float* y, int64_t ld, int64_t rows, int64_t cols, const float* bias, int32_t activation) {
    switch (activation) {
        case LRM_ACTIVATION_RELU: bias_activate(y, ld, rows, cols, bias, [](float x) { return lrm_relu(x); }); break;
        case LRM_ACTIVATION_GELU: bias_activate(y, ld, rows, cols, bias, [](float x) { return gelu_fast(x); }); break;
        case LRM_ACTIVATION_SILU: bias_activate(y, ld, rows, cols, bias, [](float x) { return lrm_silu(x); }); break;
        default:
            if (bias != nullptr) bias_activate(y, ld, rows, cols, bias, [](float x) { return x; });
            break;
    }
}

}  // namespace

void mlp_forward(float* out, const float* inp, const float* const* weights, const float* const* biases,
                 const int64_t* dims, int32_t num_layers, int64_t rows, int32_t hidden_activation,
                 int32_t output_activation) {
    // Padded widths and packed, transposed weights.
    std::vector<int64_t> padded(num_layers + 1), offset(num_layers + 1, 0);
    int64_t widest = 0;
    for (int32_t l = 0; l <= num_layers; ++l) {
        padded[l] = round_up(dims[l], kVecWidth);
        widest = std::max(widest, padded[l]);
    }
    for (int32_t l = 0; l < num_layers; ++l) offset[l + 1] = offset[l] + dims[l] * padded[l + 1];
    Scratch packed(std::max<int64_t>(offset[num_layers], 1));
    const int threads = num_threads();
    for (int32_t l = 0; l < num_layers; ++l) {
        const int64_t din = dims[l], dout = dims[l + 1], ld = padded[l + 1];
        const float* w = weights[l];
        float* wt = packed.data() + offset[l];
#pragma omp parallel for num_threads(threads) schedule(static) if (din * dout > 65536)
        for (int64_t i = 0; i < din; ++i) {
            float* dst = wt + i * ld;
            for (int64_t o = 0; o < dout; ++o) dst[o] = w[o * din + i];
            for (int64_t o = dout; o < ld; ++o) dst[o] = 0.0f;
        }
    }

    const int64_t blocks = ceil_div(rows, kBlockRows);
    const int team = static_cast<int>(std::min<int64_t>(threads, blocks));
    const int64_t tile = kBlockRows * widest;
    Scratch scratch(2 * tile * team);
    const int64_t d_in = dims[0], d_out = dims[num_layers];

#pragma omp parallel num_threads(team)
    {
        float* ping = scratch.data() + 2 * tile * omp_get_thread_num();
        float* pong = ping + tile;
#pragma omp for schedule(dynamic, 1)
        for (int64_t block = 0; block < blocks; ++block) {
            const int64_t r0 = block * kBlockRows;
            const int64_t nr = std::min(kBlockRows, rows - r0);
            const int64_t pr = round_up(nr, kTileRows);
            const int64_t full = nr / kTileRows * kTileRows;
            float* x = ping;
            float* y = pong;
            // The first layer reads whole row tiles of the input in place; only a
            // last, partial tile is copied (zero-padded) into x.
            for (int64_t r = full; r < pr; ++r) {
                if (r < nr)
                    std::memcpy(x + r * padded[0], inp + (r0 + r) * d_in, sizeof(float) * d_in);
                else
                    std::memset(x + r * padded[0], 0, sizeof(float) * d_in);
            }
            for (int32_t l = 0; l < num_layers; ++l) {
                const int64_t din = dims[l], dout = dims[l + 1], ld = padded[l + 1];
                const float* w = packed.data() + offset[l];
                if (l == 0) {
                    gemm_tiles(full, ld, din, inp + r0 * d_in, d_in, w, ld, y, ld, false, true);
                    if (full < pr)
                        gemm_tiles(pr - full, ld, din, x + full * padded[0], padded[0], w, ld, y + full * ld, ld, false);
                } else {
                    gemm_tiles(pr, ld, din, x, padded[l], w, ld, y, ld, false);
                }
                epilogue(y, ld, nr, dout, biases != nullptr ? biases[l] : nullptr,
                         l + 1 < num_layers ? hidden_activation : output_activation);
                std::swap(x, y);
            }
            for (int64_t r = 0; r < nr; ++r)
                std::memcpy(out + (r0 + r) * d_out, x + r * padded[num_layers], sizeof(float) * d_out);
        }
    }
}

}  // namespace LRM_KERNEL_NS
}  // namespace lrm

#if !defined(LRM_KERNELS_AVX512)
namespace lrm {
namespace {

bool valid_activation(int32_t a) {
    return a == LRM_ACTIVATION_NONE || a == LRM_ACTIVATION_RELU || a == LRM_ACTIVATION_GELU ||
           a == LRM_ACTIVATION_SILU;
}

// act'(z) applied in place: g[i] *= act'(z[i]) over n elements.
void multiply_derivative(float* g, const float* z, int64_t n, int32_t activation) {
    const int threads = num_threads();
    switch (activation) {
        case LRM_ACTIVATION_RELU:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
            for (int64_t i = 0; i < n; ++i) g[i] *= lrm_relu_derivative(z[i]);
            break;
        case LRM_ACTIVATION_GELU:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 16384)
            for (int64_t i = 0; i < n; ++i) g[i] *= gelu_derivative_fast(z[i]);
            break;
        case LRM_ACTIVATION_SILU:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 16384)
            for (int64_t i = 0; i < n; ++i) g[i] *= lrm_silu_derivative(z[i]);
            break;
        default: break;
    }
}

// x[i] = act(z[i]) over n elements; one loop per activation so ReLU's vectorises (a choice inside the
// loop kept it scalar: ~4 % of a CPU training step).
void apply_activation(float* x, const float* z, int64_t n, int32_t activation) {
    const int threads = num_threads();
    switch (activation) {
        case LRM_ACTIVATION_RELU:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
            for (int64_t i = 0; i < n; ++i) x[i] = lrm_relu(z[i]);
            break;
        case LRM_ACTIVATION_GELU:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 16384)
            for (int64_t i = 0; i < n; ++i) x[i] = gelu_fast(z[i]);
            break;
        case LRM_ACTIVATION_SILU:
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 16384)
            for (int64_t i = 0; i < n; ++i) x[i] = lrm_silu(z[i]);
            break;
        default:
            if (x != z) std::memcpy(x, z, sizeof(float) * n);
            break;
    }
}

void mlp_backward(float* dinp, float* const* dweights, float* const* dbiases, const float* dout, const float* inp,
                  const float* const* weights, const float* const* biases, const int64_t* dims, int32_t num_layers,
                  int64_t rows, int32_t hidden_activation, int32_t output_activation) {
    int64_t widths = 0, widest = 0;
    for (int32_t l = 1; l <= num_layers; ++l) {
        widths += dims[l];
        widest = std::max(widest, dims[l]);
    }
    widest = std::max(widest, dims[0]);
    // Rows per chunk: about 4M floats of recomputed activations, at least 256 rows.
    const int64_t chunk = std::min(rows, std::max<int64_t>(256, (int64_t{1} << 22) / (2 * widths + 2 * widest)));
    // z_l (pre-activations, l = 1..L) and x_l = act(z_l) (l = 1..L−1), then two gradient tiles.
    std::vector<int64_t> z_at(num_layers + 1), x_at(num_layers + 1);
    int64_t used = 0;
    for (int32_t l = 1; l <= num_layers; ++l) {
        z_at[l] = used;
        used += chunk * dims[l];
    }
    for (int32_t l = 1; l < num_layers; ++l) {
        x_at[l] = used;
        used += chunk * dims[l];
    }
    Scratch buffer(used + 2 * chunk * widest);
    float* grad = buffer.data() + used;
    float* grad_next = grad + chunk * widest;
    std::vector<double> bias_sum(widest);
    const int threads = num_threads();

    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int nr = static_cast<int>(std::min(chunk, rows - r0));
        auto x_of = [&](int32_t l) -> const float* {
            return l == 0 ? inp + r0 * dims[0] : buffer.data() + x_at[l];
        };
        // Forward again: z_{l+1} = x_l·W_lᵀ + b_l, x_{l+1} = act(z_{l+1}).
        for (int32_t l = 0; l < num_layers; ++l) {
            const int din = static_cast<int>(dims[l]), dout_l = static_cast<int>(dims[l + 1]);
            float* z = buffer.data() + z_at[l + 1];
            const float* bias = biases != nullptr ? biases[l] : nullptr;
            if (bias != nullptr) {
#pragma omp parallel for num_threads(threads) schedule(static) if (int64_t{nr} * dout_l > 65536)
                for (int64_t r = 0; r < nr; ++r) std::memcpy(z + r * dout_l, bias, sizeof(float) * dout_l);
            }
            sgemm(false, true, nr, dout_l, din, x_of(l), din, weights[l], din, bias != nullptr ? 1.0f : 0.0f, z, dout_l);
            if (l + 1 < num_layers) apply_activation(buffer.data() + x_at[l + 1], z, int64_t{nr} * dout_l, hidden_activation);
        }
        // g_L = dout ⊙ act'(z_L)
        const int64_t d_last = dims[num_layers];
        std::memcpy(grad, dout + r0 * d_last, sizeof(float) * nr * d_last);
        multiply_derivative(grad, buffer.data() + z_at[num_layers], int64_t{nr} * d_last, output_activation);
        for (int32_t l = num_layers - 1; l >= 0; --l) {
            const int din = static_cast<int>(dims[l]), dout_l = static_cast<int>(dims[l + 1]);
            if (dweights != nullptr && dweights[l] != nullptr)
                sgemm(true, false, dout_l, din, nr, grad, dout_l, x_of(l), din, 1.0f, dweights[l], din);
            if (dbiases != nullptr && dbiases[l] != nullptr) {
                std::fill(bias_sum.begin(), bias_sum.begin() + dout_l, 0.0);
                for (int64_t r = 0; r < nr; ++r)
                    for (int64_t o = 0; o < dout_l; ++o) bias_sum[o] += grad[r * dout_l + o];
                for (int64_t o = 0; o < dout_l; ++o) dbiases[l][o] += static_cast<float>(bias_sum[o]);
            }
            if (l > 0) {
                sgemm(false, false, nr, din, dout_l, grad, dout_l, weights[l], din, 0.0f, grad_next, din);
                multiply_derivative(grad_next, buffer.data() + z_at[l], int64_t{nr} * din, hidden_activation);
                std::swap(grad, grad_next);
            } else if (dinp != nullptr) {
                sgemm(false, false, nr, din, dout_l, grad, dout_l, weights[0], din, 0.0f, dinp + r0 * din, din);
            }
        }
    }
}

// The checks lrm_mlp_forward and lrm_mlp_backward share; `output` names out or dout,
// (rows x dims[num_layers]) either way. Each entry point adds its own per-layer limits.
void check_mlp_sizes(const Args& args, const float* const* weights, const int64_t* dims, int32_t num_layers,
                     int64_t rows, int32_t hidden_activation, int32_t output_activation, const char* output) {
    if (num_layers < 1) args.fail(LRM_STATUS_INVALID_ARGUMENT, "num_layers must be >= 1, got %d", num_layers);
    args.positive(rows, "rows");
    for (int32_t l = 0; l <= num_layers; ++l)
        if (dims[l] <= 0)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "dims[%d] must be > 0, got %lld", l, static_cast<long long>(dims[l]));
    for (int32_t l = 0; l < num_layers; ++l) {
        if (weights[l] == nullptr) args.fail(LRM_STATUS_INVALID_ARGUMENT, "argument 'weights[%d]' is NULL", l);
        args.elements({dims[l + 1], dims[l]}, "weights (dims[l+1] x dims[l])");
    }
    args.elements({rows, dims[0]}, "inp (rows x dims[0])");
    args.elements({rows, dims[num_layers]}, output);
    if (!valid_activation(hidden_activation))
        args.fail(LRM_STATUS_INVALID_ARGUMENT, "hidden_activation must be an lrm_activation (0..3), got %d",
                  hidden_activation);
    if (!valid_activation(output_activation))
        args.fail(LRM_STATUS_INVALID_ARGUMENT, "output_activation must be an lrm_activation (0..3), got %d",
                  output_activation);
}

}  // namespace
}  // namespace lrm

extern "C" LRM_API lrm_status lrm_mlp_backward(float* dinp, float* const* dweights, float* const* dbiases,
                                               const float* dout, const float* inp, const float* const* weights,
                                               const float* const* biases, const int64_t* dims, int32_t num_layers,
                                               int64_t rows, int32_t hidden_activation, int32_t output_activation) {
    return lrm::guarded("lrm_mlp_backward", [&](const lrm::Args& args) {
        args.not_null(dout, "dout").not_null(inp, "inp").not_null(weights, "weights").not_null(dims, "dims");
        lrm::check_mlp_sizes(args, weights, dims, num_layers, rows, hidden_activation, output_activation,
                             "dout (rows x dims[num_layers])");
        for (int32_t l = 0; l <= num_layers; ++l) args.blas_int(dims[l], "dims[l]");
        lrm::mlp_backward(dinp, dweights, dbiases, dout, inp, weights, biases, dims, num_layers, rows,
                          hidden_activation, output_activation);
    });
}

extern "C" LRM_API lrm_status lrm_mlp_forward(float* out, const float* inp, const float* const* weights,
                                              const float* const* biases, const int64_t* dims, int32_t num_layers,
                                              int64_t rows, int32_t hidden_activation, int32_t output_activation) {
    return lrm::guarded("lrm_mlp_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(inp, "inp").not_null(weights, "weights").not_null(dims, "dims");
        lrm::check_mlp_sizes(args, weights, dims, num_layers, rows, hidden_activation, output_activation,
                             "out (rows x dims[num_layers])");
        // The packed copy pads dims[l+1] to whole tiles (dims are now < 2^59).
        for (int32_t l = 0; l < num_layers; ++l)
            args.elements({dims[l], dims[l + 1] + lrm::kMaxTileCols}, "packed weights");
        lrm::kernels().mlp_forward(out, inp, weights, biases, dims, num_layers, rows, hidden_activation,
                                   output_activation);
    });
}
#endif
