/*
 * activation.cuh — point-wise activations, forward and their derivatives side by side. Exact definitions, as in PyTorch:
 *   gelu(x) = 0.5·x·(1 + erf(x/√2))          (not the tanh approximation)
 *   silu(x) = x·sigmoid(x) = x / (1 + e^(−x))
 *   relu(x) = max(x, 0), NaN propagates (as torch.relu)
 */
#ifndef LRM_ACTIVATION_CUH
#define LRM_ACTIVATION_CUH

#include "lrm_common.cuh"

#define LRM_SQRT1_2 0.707106781186547524401f /* 1/√2 */

LRM_HD float lrm_gelu(float x) { return 0.5f * x * (1.0f + erff(x * LRM_SQRT1_2)); }

LRM_HD float lrm_silu(float x) { return x / (1.0f + expf(-x)); }

/* `x < 0 ? 0 : x` rather than fmaxf(x, 0): fmaxf would turn NaN into 0. */
LRM_HD float lrm_relu(float x) { return x < 0.0f ? 0.0f : x; }

/* Derivatives act'(x) for the backward ops (dinp = dout·act'(x), x the pre-activation).
 * relu'(0) = 0, as PyTorch (threshold_backward passes the gradient only where x > 0). */
LRM_HD float lrm_relu_derivative(float x) { return x > 0.0f ? 1.0f : 0.0f; }

/* gelu'(x) = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π). */
LRM_HD float lrm_gelu_derivative(float x) {
    const float cdf = 0.5f * (1.0f + erff(x * LRM_SQRT1_2));
    const float pdf = expf(-0.5f * x * x) * 0.398942280401432677940f; /* 1/√(2π) */
    return cdf + x * pdf;
}

/* silu'(x) = s·(1 + x·(1 − s)), s = sigmoid(x). */
LRM_HD float lrm_silu_derivative(float x) {
    const float s = 1.0f / (1.0f + expf(-x));
    return s * (1.0f + x * (1.0f - s));
}

#endif /* LRM_ACTIVATION_CUH */
