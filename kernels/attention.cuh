/*
 * attention.cuh — the online-softmax recurrence of fused attention
 * (Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022, Alg. 1).
 *
 * A query row sees the keys in blocks. After each block the running state is
 *   m ← max(m, max_j s_j)                 (running maximum)
 *   α = 2^(m_old − m)                     (rescale factor for everything summed so far)
 *   l ← l·α + Σ_j 2^(s_j − m)             (running denominator)
 *   o ← o·α + Σ_j 2^(s_j − m)·v_j         (running numerator row)
 * and at the end out = o / l, lse = ln Σ_j e^(s_j) = (m + log2 l)·ln 2.
 *
 * Scores are kept in base 2: the caller folds log2(e) into the softmax scale,
 * s_j = (scale·log2 e)·q·k_j, so that each probability costs one exp2
 * (a single MUFU.EX2 on the GPU, a short polynomial on the CPU).
 * The first block needs no special case: m starts at −∞, so α = 2^(−∞) = 0.
 */
#ifndef LRM_ATTENTION_CUH
#define LRM_ATTENTION_CUH

#include "lrm_common.cuh"

typedef struct lrm_softmax_state {
    float max; /* running maximum of the base-2 scores seen so far */
    float sum; /* Σ 2^(s_j − max) over the scores seen so far */
} lrm_softmax_state;

LRM_HD lrm_softmax_state lrm_softmax_state_init(void) {
    lrm_softmax_state s;
    s.max = LRM_NEG_INF;
    s.sum = 0.0f;
    return s;
}

/* Enter a block whose largest score is block_max: updates the running maximum,
 * rescales the running sum and returns α, the factor the caller must apply to its
 * own accumulators (the output row). Afterwards subtract s->max from the block's
 * scores before exponentiating them. */
LRM_HD float lrm_softmax_state_rescale(lrm_softmax_state* s, float block_max) {
    const float new_max = fmaxf(s->max, block_max);
    const float alpha = exp2f(s->max - new_max);
    s->max = new_max;
    s->sum *= alpha;
    return alpha;
}

/* Natural-log log-sum-exp of the (unscaled by log2 e) scores, saved for backward. */
LRM_HD float lrm_softmax_state_lse(lrm_softmax_state s) { return (s.max + log2f(s.sum)) * LRM_LN2; }

/* ---- backward (docs/derivations/attention.md) ---------------------------------
 * FlashAttention-2 (Dao 2023, Alg. 2): P is recomputed block by block from the saved
 * lse instead of being stored, in the same base-2 scores as the forward:
 *   P_ij  = e^(scale·q_i·k_j − lse_i) = 2^(s_ij − lse_i·log2 e)
 *   D_i   = Σ_d dO_id·O_id            (= Σ_j P_ij·dP_ij, one dot product per query)
 *   dP_ij = dO_i·v_j,  dS_ij = P_ij·(dP_ij − D_i)
 *   dV = Pᵀ·dO,  dQ = scale·dS·K,  dK = scale·dSᵀ·Q
 */

/* The saved natural-log lse moved to the forward's base-2 score scale. */
LRM_HD float lrm_attention_lse_base2(float lse) { return lse * LRM_LOG2E; }

/* Gradient of the (unscaled) score from the probability p, its gradient dp, and D_i. */
LRM_HD float lrm_attention_dscore(float p, float dp, float delta) { return p * (dp - delta); }

#endif /* LRM_ATTENTION_CUH */
