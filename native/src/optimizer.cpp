// optimizer.cpp — AdamW and the squared gradient norm (training, LRM appendix B).
//
//   adamw_step    param, exp_avg, exp_avg_sq (n) updated in place from grad (n): one AdamW step t
//                 (kernels/optimizer.cuh has the formula) with the gradient scaled by grad_scale first,
//                 so global-norm clipping costs no extra pass over the gradients.
//   sum_squares   Σ x² over x (n), accumulated in double, and how many elements are NaN or ±inf
//                 (counted only when the sum is not finite). The global gradient norm is the square
//                 root of the sum over all parameter tensors; a non-finite count names the tensor.
//
// Deterministic for any thread count: sum_squares adds fixed 16384-element blocks (each with eight
// interleaved double accumulators) and then the block sums in order, so the result does not depend on
// how OpenMP splits the loop. adamw_step is element-wise (static schedule).
// No backward: these ops end the graph.
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <cmath>
#include <vector>

#include "optimizer.cuh"

namespace lrm {
namespace {

constexpr int64_t kParallelThreshold = 1 << 15;
constexpr int64_t kBlock = 1 << 14;

void adamw_step(float* param, float* exp_avg, float* exp_avg_sq, const float* grad, lrm_adamw_scalars scalars,
                int64_t n) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) lrm_adamw_update(param + i, exp_avg + i, exp_avg_sq + i, grad[i], scalars);
}

double block_sum_squares(const float* x, int64_t n) {
    double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) lanes[k] += static_cast<double>(x[i + k]) * x[i + k];
    for (int k = 0; i < n; ++i, ++k) lanes[k] += static_cast<double>(x[i]) * x[i];
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

void sum_squares(double* sum, int64_t* nonfinite, const float* x, int64_t n) {
    const int64_t blocks = ceil_div(n, kBlock);
    std::vector<double> partial(static_cast<size_t>(blocks));
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (n > kParallelThreshold)
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t start = b * kBlock;
        partial[static_cast<size_t>(b)] = block_sum_squares(x + start, n - start < kBlock ? n - start : kBlock);
    }
    double total = 0;
    for (double value : partial) total += value;
    int64_t bad = 0;
    if (!std::isfinite(total)) {
        for (int64_t i = 0; i < n; ++i) bad += std::isfinite(x[i]) ? 0 : 1;
        // Finite values whose squares overflow double cannot happen (float max² < double max).
    }
    *sum = total;
    if (nonfinite != nullptr) *nonfinite = bad;
}

}  // namespace
}  // namespace lrm

extern "C" {

LRM_API lrm_status lrm_adamw_step(float* param, float* exp_avg, float* exp_avg_sq, const float* grad, float lr,
                                  float beta1, float beta2, float eps, float weight_decay, float grad_scale,
                                  int64_t step, int64_t n) {
    return lrm::guarded("lrm_adamw_step", [&](const lrm::Args& args) {
        args.not_null(param, "param").not_null(exp_avg, "exp_avg").not_null(exp_avg_sq, "exp_avg_sq");
        args.not_null(grad, "grad").positive(n, "n").positive(step, "step");
        args.elements({n}, "param");
        args.finite(lr, "lr").finite(eps, "eps").finite(weight_decay, "weight_decay").finite(grad_scale, "grad_scale");
        if (!(lr >= 0.0f)) args.fail(LRM_STATUS_INVALID_ARGUMENT, "lr must be >= 0, got %g", static_cast<double>(lr));
        if (!(beta1 >= 0.0f && beta1 < 1.0f))
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "beta1 must be in [0, 1), got %g", static_cast<double>(beta1));
        if (!(beta2 >= 0.0f && beta2 < 1.0f))
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "beta2 must be in [0, 1), got %g", static_cast<double>(beta2));
        if (!(eps > 0.0f)) args.fail(LRM_STATUS_INVALID_ARGUMENT, "eps must be > 0, got %g", static_cast<double>(eps));
        if (!(weight_decay >= 0.0f))
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "weight_decay must be >= 0, got %g", static_cast<double>(weight_decay));
        if (!(grad_scale >= 0.0f))
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "grad_scale must be >= 0, got %g", static_cast<double>(grad_scale));
        // The step's scalars as PyTorch forms them: Python floats (double), rounded when applied to fp32.
        const double lr_d = lr, b1 = beta1, b2 = beta2, t = static_cast<double>(step);
        lrm_adamw_scalars scalars;
        scalars.decay = static_cast<float>(1.0 - lr_d * static_cast<double>(weight_decay));
        scalars.beta1 = beta1;
        scalars.one_minus_beta1 = static_cast<float>(1.0 - b1);
        scalars.beta2 = beta2;
        scalars.one_minus_beta2 = static_cast<float>(1.0 - b2);
        scalars.step_size = static_cast<float>(lr_d / (1.0 - std::pow(b1, t)));
        scalars.bias2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(b2, t)));
        scalars.eps = eps;
        scalars.grad_scale = grad_scale;
        lrm::adamw_step(param, exp_avg, exp_avg_sq, grad, scalars, n);
    });
}

LRM_API lrm_status lrm_sum_squares(double* sum, int64_t* nonfinite, const float* x, int64_t n) {
    return lrm::guarded("lrm_sum_squares", [&](const lrm::Args& args) {
        args.not_null(sum, "sum").not_null(x, "x").positive(n, "n");
        args.elements({n}, "x");
        lrm::sum_squares(sum, nonfinite, x, n);
    });
}

}  // extern "C"
