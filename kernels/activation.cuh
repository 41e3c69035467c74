/*
 * activation.cuh — point-wise activations, forward (backward derivatives later,
 * side by side). Exact definitions, as in PyTorch:
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

#endif /* LRM_ACTIVATION_CUH */
