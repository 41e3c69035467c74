/*
 * optimizer.cuh — per-element AdamW update (Loshchilov & Hutter, decoupled weight decay), written once for
 * native/src/optimizer.cpp and the CUDA kernel.
 *
 * One step t (1-based) of torch.optim.AdamW (amsgrad off), with the gradient first multiplied by grad_scale
 * (the global-norm clipping coefficient, 1 when no clipping happens):
 *
 *   g  = grad·grad_scale
 *   p  = p·(1 − lr·wd)                                  decoupled weight decay
 *   m  = m·β1 + g·(1 − β1)
 *   v  = v·β2 + g·g·(1 − β2)
 *   p  = p − (lr/(1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
 *
 * The operation order follows PyTorch 1.13's _single_tensor_adamw so the fp32 results agree to rounding.
 * The per-step scalars are computed once on the host in double and rounded to float (as PyTorch rounds its
 * Python-float scalars when it applies them to float tensors).
 */
#ifndef LRM_OPTIMIZER_CUH
#define LRM_OPTIMIZER_CUH

#include "lrm_common.cuh"

/* Scalars of one AdamW step of one tensor. */
typedef struct lrm_adamw_scalars {
    float decay;            /* 1 − lr·weight_decay */
    float beta1;            /* β1 */
    float one_minus_beta1;  /* 1 − β1 */
    float beta2;            /* β2 */
    float one_minus_beta2;  /* 1 − β2 */
    float step_size;        /* lr / (1 − β1^t) */
    float bias2_sqrt;       /* √(1 − β2^t) */
    float eps;              /* added to the denominator */
    float grad_scale;       /* multiplies the gradient first (clipping) */
} lrm_adamw_scalars;

/* Updates one parameter and its two moments in place. */
LRM_HD void lrm_adamw_update(float* param, float* exp_avg, float* exp_avg_sq, float grad, lrm_adamw_scalars s) {
    const float g = grad * s.grad_scale;
    const float p = *param * s.decay;
    const float m = *exp_avg * s.beta1 + s.one_minus_beta1 * g;
    const float v = *exp_avg_sq * s.beta2 + s.one_minus_beta2 * g * g;
    const float denom = sqrtf(v) / s.bias2_sqrt + s.eps;
    *exp_avg = m;
    *exp_avg_sq = v;
    *param = p - s.step_size * (m / denom);
}

#endif /* LRM_OPTIMIZER_CUH */
