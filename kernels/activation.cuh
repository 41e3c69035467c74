/*
 * activation.cuh — point-wise activations, forward and backward side by side.
 * Exact definitions, as in PyTorch:
 *   gelu(x) = 0.5·x·(1 + erf(x/√2))          (not the tanh approximation)
 *   silu(x) = x·sigmoid(x) = x / (1 + e^(−x))
 *   relu(x) = max(x, 0), NaN propagates (as torch.relu)
 * Derivatives (docs/derivations/activation.md):
 *   gelu'(x) = Φ(x) + x·φ(x),  Φ(x) = 0.5·(1 + erf(x/√2)), φ(x) = e^(−x²/2)/√(2π)
 *   silu'(x) = σ(x)·(1 + x·(1 − σ(x)))
 *   relu:     dx = x ≤ 0 ? 0 : dy   (0 at the kink, dy for NaN x, as torch's threshold_backward)
 * Row softmax backward (docs/derivations/softmax.md): dx = y·(dy − Σ_j y_j·dy_j).
 */
#ifndef LRM_ACTIVATION_CUH
#define LRM_ACTIVATION_CUH

#include "lrm_common.cuh"

#define LRM_SQRT1_2 0.707106781186547524401f /* 1/√2 */

LRM_HD float lrm_gelu(float x) { return 0.5f * x * (1.0f + erff(x * LRM_SQRT1_2)); }

LRM_HD float lrm_silu(float x) { return x / (1.0f + expf(-x)); }

/* `x < 0 ? 0 : x` rather than fmaxf(x, 0): fmaxf would turn NaN into 0. */
LRM_HD float lrm_relu(float x) { return x < 0.0f ? 0.0f : x; }

/* act(x) for an lrm_activation value: 0 identity, 1 ReLU, 2 GELU (exact), 3 SiLU. */
LRM_HD float lrm_activate(float x, int activation) {
    switch (activation) {
        case 1: return lrm_relu(x);
        case 2: return lrm_gelu(x);
        case 3: return lrm_silu(x);
        default: return x;
    }
}

#define LRM_INV_SQRT_2PI 0.398942280401432677940f /* 1/√(2π) */

/* Derivatives act'(x), x the pre-activation: dinp = dout·act'(x). */

/* relu'(x): 0 for x ≤ 0 (0 at the kink), 1 otherwise — also for NaN x, as torch's threshold_backward. */
LRM_HD float lrm_relu_derivative(float x) { return x <= 0.0f ? 0.0f : 1.0f; }

/* gelu'(x) = Φ(x) + x·φ(x). */
LRM_HD float lrm_gelu_derivative(float x) {
    const float cdf = 0.5f * (1.0f + erff(x * LRM_SQRT1_2));
    const float pdf = LRM_INV_SQRT_2PI * expf(-0.5f * x * x);
    return cdf + x * pdf;
}

/* silu'(x) = s·(1 + x·(1 − s)), s = sigmoid(x). */
LRM_HD float lrm_silu_derivative(float x) {
    const float s = 1.0f / (1.0f + expf(-x));
    return s * (1.0f + x * (1.0f - s));
}

/* Gradient through relu, exactly 0 (not dy·0, which is NaN for infinite dy) where x ≤ 0. */
LRM_HD float lrm_relu_gradient(float dy, float x) { return x <= 0.0f ? 0.0f : dy; }

/* Softmax backward, one element: y the softmax output, dot = Σ_j y_j·dy_j over its row. */
LRM_HD float lrm_softmax_gradient(float y, float dy, float dot) { return y * (dy - dot); }

#endif /* LRM_ACTIVATION_CUH */
