// activation.cpp — point-wise activations and the row softmax.
//
//   gelu  out = 0.5·x·(1 + erf(x/√2))       exact, as nn.GELU() (not approximate='tanh')
//         (on the CPU through fastmath.hpp's vectorisable Φ(x), not glibc's scalar erff)
//   silu  out = x·sigmoid(x)
//   relu  out = max(x, 0), NaN stays NaN
//     out, inp (n)              out may alias inp
//   softmax over the last dimension, stable: e^(x − max) / Σ e^(x − max)
//     out, inp (rows, cols)     out may alias inp
//
// The per-element formulas are kernels/activation.cuh, shared with the GPU. The
// loops are flat OpenMP loops (static schedule) that only go parallel above a size
// where the fork/join pays for itself. Softmax uses libm's expf and a float sum,
// as PyTorch does; it is not on the hot path (attention has its own fused softmax).
//
// Backward (docs/derivations/activation.md, softmax.md), dinp overwritten, may alias dout:
//   gelu/silu  dinp = dout·act'(inp)         relu  dinp = inp ≤ 0 ? 0 : dout
//   softmax    dinp = y·(dout − Σ_j y_j·dout_j) per row, from the saved output y
//              (row dot product in double).
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <cmath>

#include "activation.cuh"
#include "fastmath.hpp"

namespace lrm {
namespace {

constexpr int64_t kParallelThreshold = 1 << 15;

template <class Activation>
void pointwise(float* out, const float* inp, int64_t n, Activation activation) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) out[i] = activation(inp[i]);
}

void softmax_forward(float* out, const float* inp, int64_t rows, int64_t cols) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (rows * cols > kParallelThreshold)
    for (int64_t r = 0; r < rows; ++r) {
        const float* x = inp + r * cols;
        float* y = out + r * cols;
        float max = x[0];
        for (int64_t j = 1; j < cols; ++j) max = x[j] > max ? x[j] : max;
        float sum = 0.0f;
        for (int64_t j = 0; j < cols; ++j) {
            y[j] = expf(x[j] - max);
            sum += y[j];
        }
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < cols; ++j) y[j] *= inv;
    }
}

// dinp[i] = grad(dout[i], inp[i]).
template <class Gradient>
void pointwise_backward(float* dinp, const float* dout, const float* inp, int64_t n, Gradient gradient) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) dinp[i] = gradient(dout[i], inp[i]);
}

void softmax_backward(float* dinp, const float* dout, const float* out, int64_t rows, int64_t cols) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (rows * cols > kParallelThreshold)
    for (int64_t r = 0; r < rows; ++r) {
        const float* y = out + r * cols;
        const float* dy = dout + r * cols;
        float* dx = dinp + r * cols;
        double dot = 0.0;
        for (int64_t j = 0; j < cols; ++j) dot += static_cast<double>(y[j]) * dy[j];
        const float dot_f = static_cast<float>(dot);
        for (int64_t j = 0; j < cols; ++j) dx[j] = lrm_softmax_gradient(y[j], dy[j], dot_f);
    }
}

template <class Gradient>
lrm_status activation_backward_entry(const char* op, float* dinp, const float* dout, const float* inp, int64_t n,
                                     Gradient gradient) {
    return guarded(op, [&](const Args& args) {
        args.not_null(dinp, "dinp").not_null(dout, "dout").not_null(inp, "inp").positive(n, "n");
        args.elements({n}, "inp");
        pointwise_backward(dinp, dout, inp, n, gradient);
    });
}

template <class Activation>
lrm_status activation_entry(const char* op, float* out, const float* inp, int64_t n, Activation activation) {
    return guarded(op, [&](const Args& args) {
        args.not_null(out, "out").not_null(inp, "inp").positive(n, "n");
        args.elements({n}, "inp");
        pointwise(out, inp, n, activation);
    });
}

}  // namespace
}  // namespace lrm

extern "C" {

LRM_API lrm_status lrm_gelu_forward(float* out, const float* inp, int64_t n) {
    return lrm::activation_entry("lrm_gelu_forward", out, inp, n, [](float x) { return lrm::gelu_fast(x); });
}

LRM_API lrm_status lrm_silu_forward(float* out, const float* inp, int64_t n) {
    return lrm::activation_entry("lrm_silu_forward", out, inp, n, [](float x) { return lrm_silu(x); });
}

LRM_API lrm_status lrm_relu_forward(float* out, const float* inp, int64_t n) {
    return lrm::activation_entry("lrm_relu_forward", out, inp, n, [](float x) { return lrm_relu(x); });
}

LRM_API lrm_status lrm_softmax_forward(float* out, const float* inp, int64_t rows, int64_t cols) {
    return lrm::guarded("lrm_softmax_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(inp, "inp").positive(rows, "rows").positive(cols, "cols");
        args.elements({rows, cols}, "inp (rows x cols)");
        lrm::softmax_forward(out, inp, rows, cols);
    });
}

LRM_API lrm_status lrm_gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
    return lrm::activation_backward_entry("lrm_gelu_backward", dinp, dout, inp, n,
                                          [](float dy, float x) { return dy * lrm::gelu_derivative_fast(x); });
}

LRM_API lrm_status lrm_silu_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
    return lrm::activation_backward_entry("lrm_silu_backward", dinp, dout, inp, n,
                                          [](float dy, float x) { return dy * lrm_silu_derivative(x); });
}

LRM_API lrm_status lrm_relu_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
    return lrm::activation_backward_entry("lrm_relu_backward", dinp, dout, inp, n,
                                          [](float dy, float x) { return lrm_relu_gradient(dy, x); });
}

LRM_API lrm_status lrm_softmax_backward(float* dinp, const float* dout, const float* out, int64_t rows, int64_t cols) {
    return lrm::guarded("lrm_softmax_backward", [&](const lrm::Args& args) {
        args.not_null(dinp, "dinp").not_null(dout, "dout").not_null(out, "out");
        args.positive(rows, "rows").positive(cols, "cols");
        args.elements({rows, cols}, "out (rows x cols)");
        lrm::softmax_backward(dinp, dout, out, rows, cols);
    });
}

}  // extern "C"
