// attention.cpp — multi-head scaled dot-product attention, fused and tiled.
//
//   out[b, i, h·D + d] = Σ_j softmax_j(scale · q[b, i, h]·k[b, j, h]) · v[b, j, h·D + d]
//   lse[b, h, i]       = ln Σ_j exp(scale · q[b, i, h]·k[b, j, h])      (optional)
//
//   out (B, Tq, H·D) contiguous; q (B, Tq, ·) rows q_row_stride apart;
//   k, v (B, Tk, ·) rows kv_row_stride apart; head h occupies columns [h·D, (h+1)·D).
//   No mask, no dropout, no biases (LRM's cross- and self-attention).
//
// Algorithm (FlashAttention, Dao et al. 2022, forward pass on a CPU): one task is
// (batch, head, block of kBlockQueries queries). It walks the keys in blocks of
// kBlockKeys, keeping for each query the running max/sum of the online softmax
// (kernels/attention.cuh) and an unnormalised output row, so the Tq×Tk score
// matrix never exists; memory is O(block) per thread. The scores are computed
// transposed, one key per row and one query per column:
//   once per task: Q̃ᵀ (D × kBlockQueries), Q̃ = q·scale·log2(e) (base-2 scores);
//   per key block:
//   1. Sᵀ = K·Q̃ᵀ, K read in place (its rows are the broadcast operand, so no
//      transposed copy of K is needed; only a last partial tile is copied),
//   2. per query (column): block max → α = 2^(m_old − m_new), O *= α,
//      P = 2^(S − m_new), Σ P; with queries along the vector lanes every step is
//      a vertical vector operation, no per-row horizontal reductions,
//   3. V copied into a contiguous tile, O += P·V reading P from Pᵀ.
// Steps 1 and 3 use the register-tiled microkernel (microkernel.hpp); step 2 a
// vectorised polynomial exp2 (fastmath.hpp). Tasks are spread over OpenMP threads
// with a dynamic schedule; every output element is produced by one thread in a
// fixed order, so results do not depend on the thread count.
//
// Two builds (cpu_dispatch.hpp): the baseline (x86-64-v3: AVX2, 6×16 tiles) and
// AVX-512 (x86-64-v4: 8×32 tiles), chosen at run time. Block sizes are the same in
// both (96 queries, 120 keys: multiples of both tile shapes), so both sum every
// score and output in the same order: on the shapes we tested their results are
// bit-identical.
//
// Measured (AMD EPYC Zen 5 VM, 2 threads, B=1, 16 heads × 64, best of 5):
//                                 self 3072×3072     cross 3072×1025
//   before (Kᵀ packed per task,   ~218 ms  175 GF/s   ~74 ms  175 GF/s
//     S = Q̃·Kᵀ, AVX2 only)
//   baseline build (AVX2)          ~197 ms  195 GF/s   ~67 ms  190 GF/s
//   AVX-512 build                  ~109 ms  355 GF/s   ~38 ms  340 GF/s
// (FMA peak of these 2 cores, measured: ~245 GFLOP/s with ymm, ~490 with zmm.)
// The old layout spent ~15% packing Kᵀ and V and ~4% in horizontal row reductions;
// reading V in place instead of copying it was ~1.4x slower (rows 4 KiB apart
// compete for the same L1 sets). Tile shapes 6×32 to 12×32 and 4×64, query blocks
// of 64-192 and key blocks of 64-256 were all within noise of the choice above;
// exp2 is ~8% of the AVX-512 time (measured by replacing it with a subtraction).
// PyTorch 1.13's softmax(QKᵀ)V with the 16×3072×3072 scores materialised: ~800 ms
// (measured on Zen 4).
//
// Backward (attention_backward below; docs/derivations/attention.md): FlashAttention-2
// on the CPU, P recomputed in tiles from q, k and the saved lse, never stored whole.
// Measured (same Zen 5 VM, but shared with other jobs, load ~18 on its 2 cores, so
// per-core CPU time with 1 thread, B=1, 16 heads × 64, best of 2; GFLOP/s counts the
// forward's 2 and the backward's 5 products of 2·Tq·Tk·D each):
//                        self 3072×3072                cross 3072×1025
//   AVX-512  forward     263 ms  147 GF/s              83 ms  155 GF/s
//            backward    487 ms  198 GF/s (1.85× fwd)  175 ms  184 GF/s (2.1× fwd)
//   AVX2     forward     436 ms   89 GF/s
//            backward    883 ms  109 GF/s (2.0× fwd)
// Peak RSS growth of a backward call: ~3 MB with 1 thread, ~10 MB with 2 (no score matrix).
#include "common.hpp"
#include "cpu_dispatch.hpp"
#include "errors.hpp"
#include "fastmath.hpp"
#include "lrm_native.h"
#include "microkernel.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "attention.cuh"

namespace lrm {
namespace LRM_KERNEL_NS {
namespace {

constexpr int64_t gcd(int64_t a, int64_t b) { return b == 0 ? a : gcd(b, a % b); }
// Queries are padded to whole tiles in both products, where they are the columns
// (Sᵀ) and then the rows (O): to a multiple of both tile sides (48 or 32).
constexpr int64_t kQueryQuantum = kTileRows / gcd(kTileRows, kTileCols) * kTileCols;
// Both builds use the same blocks (so the same softmax steps and sums).
constexpr int64_t kBlockQueries = 96;  // queries per task
constexpr int64_t kBlockKeys = 120;    // keys per inner block (multiple of 6 and 8)
static_assert(kBlockQueries % kQueryQuantum == 0, "query block must hold whole tiles");
static_assert(kBlockKeys % kTileRows == 0, "key block must hold whole tiles");

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const AttentionShape& s) {
    const int64_t D = s.head_dim;
    const int64_t Dp = round_up(D, kVecWidth);  // O row width: whole vectors
    const int64_t width = s.heads * D;
    const int64_t q_blocks = ceil_div(s.q_len, kBlockQueries);
    const int64_t tasks = s.batch * s.heads * q_blocks;
    const int threads = static_cast<int>(std::min<int64_t>(num_threads(), tasks));

    // Per-thread scratch, each piece a multiple of 16 floats (64 bytes).
    const int64_t q_pack = round_up(D * kBlockQueries, 16);
    const int64_t k_tail = round_up(kTileRows * D, 16);
    const int64_t v_pack = kBlockKeys * Dp;
    const int64_t scores = kBlockKeys * kBlockQueries;
    const int64_t acc = kBlockQueries * Dp;
    const int64_t per_thread = q_pack + k_tail + v_pack + scores + acc;
    Scratch scratch(per_thread * threads);

    const float score_scale = s.scale * LRM_LOG2E;

#pragma omp parallel num_threads(threads)
    {
        float* qt = scratch.data() + per_thread * omp_get_thread_num();  // Q̃ᵀ (D, kBlockQueries)
        float* kp = qt + q_pack;                                          // last keys (kTileRows, D)
        float* vp = kp + k_tail;                                          // V (kBlockKeys, Dp)
        float* st = vp + v_pack;                                          // Sᵀ, then Pᵀ (kBlockKeys, kBlockQueries)
        float* op = st + scores;                                          // O (kBlockQueries, Dp)
        lrm_softmax_state state[kBlockQueries];
        float block_max[kBlockQueries], block_sum[kBlockQueries], shift[kBlockQueries];
        // Columns D..Dp of the V tile stay zero for the whole run.
        std::memset(vp, 0, sizeof(float) * v_pack);

#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t block = task % q_blocks;
            const int64_t h = (task / q_blocks) % s.heads;
            const int64_t b = task / (q_blocks * s.heads);
            const int64_t q0 = block * kBlockQueries;
            const int64_t nq = std::min(kBlockQueries, s.q_len - q0);
            const int64_t nqp = round_up(nq, kQueryQuantum);  // queries computed (zero-padded)

            for (int64_t i = 0; i < nqp; ++i) {
                if (i < nq) {
                    const float* src = q + (b * s.q_len + q0 + i) * s.q_row_stride + h * D;
                    for (int64_t d = 0; d < D; ++d) qt[d * kBlockQueries + i] = src[d] * score_scale;
                } else {
                    for (int64_t d = 0; d < D; ++d) qt[d * kBlockQueries + i] = 0.0f;
                }
                state[i] = lrm_softmax_state_init();
            }
            std::memset(op, 0, sizeof(float) * nqp * Dp);

            for (int64_t k0 = 0; k0 < s.kv_len; k0 += kBlockKeys) {
                const int64_t nk = std::min(kBlockKeys, s.kv_len - k0);
                const float* kb = k + (b * s.kv_len + k0) * s.kv_row_stride + h * D;
                const float* vb = v + (b * s.kv_len + k0) * s.kv_row_stride + h * D;

                // Sᵀ = K·Q̃ᵀ (nk × nqp), K read in place; a last tile of fewer than
                // kTileRows keys is copied, zero-padded, so no row past kv_len is read.
                const int64_t full = nk / kTileRows * kTileRows;
                if (full < nk) {
                    for (int64_t j = 0; j < kTileRows; ++j)
                        for (int64_t d = 0; d < D; ++d)
                            kp[j * D + d] = full + j < nk ? kb[(full + j) * s.kv_row_stride + d] : 0.0f;
                }
                for (int64_t i = 0; i < nqp; i += kTileCols) {
                    for (int64_t j = 0; j < full; j += kTileRows)
                        gemm_tile<kTileRows, kTileCols, false>(D, kb + j * s.kv_row_stride, s.kv_row_stride, qt + i,
                                                               kBlockQueries, st + j * kBlockQueries + i,
                                                               kBlockQueries, false);
                    if (full < nk)
                        gemm_tile<kTileRows, kTileCols, false>(D, kp, D, qt + i, kBlockQueries,
                                                               st + full * kBlockQueries + i, kBlockQueries, false);
                }

                // Online softmax, one query per column: every step is a vertical
                // (vectorised) operation over the queries. NaN scores are skipped by
                // the max and then propagate through the exp.
                for (int64_t i = 0; i < nqp; ++i) block_max[i] = LRM_NEG_INF;
                for (int64_t j = 0; j < nk; ++j) {
                    const float* srow = st + j * kBlockQueries;
                    for (int64_t i = 0; i < nqp; ++i) block_max[i] = srow[i] > block_max[i] ? srow[i] : block_max[i];
                }
                for (int64_t i = 0; i < nqp; ++i) {
                    const float alpha = lrm_softmax_state_rescale(&state[i], block_max[i]);
                    if (alpha != 1.0f) {
                        float* orow = op + i * Dp;
                        for (int64_t d = 0; d < Dp; ++d) orow[d] *= alpha;
                    }
                    shift[i] = state[i].max;
                    block_sum[i] = 0.0f;
                }
                for (int64_t j = 0; j < nk; ++j) {
                    float* srow = st + j * kBlockQueries;
                    for (int64_t i = 0; i < nqp; ++i) {
                        const float p = exp2_nonpositive(srow[i] - shift[i]);
                        srow[i] = p;
                        block_sum[i] += p;
                    }
                }
                for (int64_t i = 0; i < nqp; ++i) state[i].sum += block_sum[i];

                // O += P·V, P read from Pᵀ. V is copied into a contiguous tile (its
                // rows, typically 4 KiB apart in the input, would fight over the
                // same L1 sets: read in place it was ~1.4x slower).
                for (int64_t j = 0; j < nk; ++j)
                    for (int64_t d = 0; d < D; ++d) vp[j * Dp + d] = vb[j * s.kv_row_stride + d];
                gemm_tiles<true>(nqp, Dp, nk, st, kBlockQueries, vp, Dp, op, Dp, true);
            }

            for (int64_t i = 0; i < nq; ++i) {
                const float inv = 1.0f / state[i].sum;
                const float* orow = op + i * Dp;
                float* dst = out + (b * s.q_len + q0 + i) * width + h * D;
                for (int64_t d = 0; d < D; ++d) dst[d] = orow[d] * inv;
                if (lse != nullptr) lse[(b * s.heads + h) * s.q_len + q0 + i] = lrm_softmax_state_lse(state[i]);
            }
        }
    }
}

namespace {

// Backward blocks (same in both builds, so both do the same sums in the same order).
// Keys are the rows of the dK/dV tiles (whole kTileRows) and the columns of S and dP
// (whole vectors): padded to a multiple of both.
constexpr int64_t kKeyQuantum = kTileRows / gcd(kTileRows, kVecWidth) * kVecWidth;
constexpr int64_t kBackwardKeys = 96;     // keys per block (multiple of 24 and 16)
constexpr int64_t kBackwardQueries = 96;  // queries per block (multiple of 6 and 8)
static_assert(kBackwardKeys % kKeyQuantum == 0, "key block must hold whole tiles");
static_assert(kBackwardQueries % kTileRows == 0, "query block must hold whole tiles");

// Softmax probability from a base-2 score and the row's base-2 lse. The argument is ≤ 0
// up to rounding; larger values (a wrong lse) are clamped so exp2 stays defined, NaN passes.
inline float recompute_probability(float score, float lse2) {
    const float x = score - lse2;
    return exp2_nonpositive(x > 0.0f ? 0.0f : x);
}

}  // namespace

// FlashAttention-2 backward on the CPU. A task is (batch, head, group of key blocks):
//  - once per task: Q, dO of the head packed (Tq × Dp, zero-padded), the base-2 lse
//    and D_i = Σ dO·O per query, and a zeroed dQ accumulator (Tq × Dp);
//  - per key block (kBackwardKeys keys): K packed as rows (for dQ), Kᵀ scaled by
//    scale·log2 e (for S), Vᵀ (for dP); zeroed dK, dV tiles;
//  - per query block (kBackwardQueries queries), five tile products:
//      S = Q·Kᵀ, dP = dO·Vᵀ, then P = 2^(S − lse₂), dS = P·(dP − D) in place,
//      dV += Pᵀ·dO, dK += dSᵀ·Q (P and dS read transposed), dQ += dS·K;
//  - dK·scale and dV written out after the key block; dQ·scale after the task.
// Memory is O(Tq·D) per thread plus fixed tiles: no Tq × Tk matrix anywhere. When
// batch·heads < threads the keys are split into G groups, each task keeps its own dQ
// partial and the partials are added in group order afterwards (G depends only on the
// sizes and the thread count: deterministic for a thread count).
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                        const float* q, const float* k, const float* v, const AttentionShape& s,
                        int64_t dq_row_stride, int64_t dkv_row_stride) {
    const int64_t D = s.head_dim;
    const int64_t Dp = round_up(D, kVecWidth);
    const int64_t width = s.heads * D;
    const int64_t heads_total = s.batch * s.heads;
    const int64_t kv_blocks = ceil_div(s.kv_len, kBackwardKeys);
    const int64_t groups = std::min<int64_t>(kv_blocks, std::max<int64_t>(1, ceil_div(num_threads(), heads_total)));
    const int64_t tasks = heads_total * groups;
    const int threads = static_cast<int>(std::min<int64_t>(num_threads(), tasks));
    const int64_t q_padded = round_up(s.q_len, kBackwardQueries);

    const int64_t head_pack = q_padded * Dp;  // Q, dO, dQ of one head
    const int64_t key_tile = kBackwardKeys * Dp;
    const int64_t score_tile = kBackwardQueries * kBackwardKeys;
    const int64_t per_thread = 3 * head_pack + 2 * round_up(q_padded, 16) + 5 * key_tile + 2 * score_tile;
    Scratch scratch(per_thread * threads);
    // dQ partials of every (batch, head, group) when the keys are split.
    Scratch partials(groups > 1 ? tasks * s.q_len * D : 0);

    const float score_scale = s.scale * LRM_LOG2E;

#pragma omp parallel num_threads(threads)
    {
        float* qh = scratch.data() + per_thread * omp_get_thread_num();  // Q (q_padded, Dp)
        float* doh = qh + head_pack;                                      // dO (q_padded, Dp)
        float* dqh = doh + head_pack;                                     // dQ accumulator (q_padded, Dp)
        float* lse2 = dqh + head_pack;                                    // base-2 lse (q_padded)
        float* delta = lse2 + round_up(q_padded, 16);                     // D_i (q_padded)
        float* kp = delta + round_up(q_padded, 16);                       // K (kBackwardKeys, Dp)
        float* kt = kp + key_tile;                                        // Kᵀ·scale·log2e (D, kBackwardKeys)
        float* vt = kt + key_tile;                                        // Vᵀ (D, kBackwardKeys)
        float* dkb = vt + key_tile;                                       // dK tile (kBackwardKeys, Dp)
        float* dvb = dkb + key_tile;                                      // dV tile (kBackwardKeys, Dp)
        float* pb = dvb + key_tile;                                       // S, then P (kBackwardQueries, kBackwardKeys)
        float* dsb = pb + score_tile;                                     // dP, then dS

#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t group = task % groups;
            const int64_t h = (task / groups) % s.heads;
            const int64_t b = task / (groups * s.heads);

            // Per-head packing, zero-padded to whole query blocks and vectors.
            std::memset(qh, 0, sizeof(float) * 3 * head_pack);
            for (int64_t i = 0; i < s.q_len; ++i) {
                const float* qrow = q + (b * s.q_len + i) * s.q_row_stride + h * D;
                const float* grow = dout + (b * s.q_len + i) * width + h * D;
                const float* orow = out + (b * s.q_len + i) * width + h * D;
                double dot = 0.0;
                for (int64_t d = 0; d < D; ++d) {
                    qh[i * Dp + d] = qrow[d];
                    doh[i * Dp + d] = grow[d];
                    dot += static_cast<double>(grow[d]) * orow[d];
                }
                delta[i] = static_cast<float>(dot);
                lse2[i] = lrm_attention_lse_base2(lse[(b * s.heads + h) * s.q_len + i]);
            }
            for (int64_t i = s.q_len; i < q_padded; ++i) delta[i] = lse2[i] = 0.0f;

            const int64_t block_begin = kv_blocks * group / groups, block_end = kv_blocks * (group + 1) / groups;
            for (int64_t kb = block_begin; kb < block_end; ++kb) {
                const int64_t k0 = kb * kBackwardKeys;
                const int64_t nk = std::min(kBackwardKeys, s.kv_len - k0);
                const int64_t nkp = round_up(nk, kKeyQuantum);
                std::memset(kp, 0, sizeof(float) * 5 * key_tile);
                for (int64_t j = 0; j < nk; ++j) {
                    const float* krow = k + (b * s.kv_len + k0 + j) * s.kv_row_stride + h * D;
                    const float* vrow = v + (b * s.kv_len + k0 + j) * s.kv_row_stride + h * D;
                    for (int64_t d = 0; d < D; ++d) {
                        kp[j * Dp + d] = krow[d];
                        kt[d * kBackwardKeys + j] = krow[d] * score_scale;
                        vt[d * kBackwardKeys + j] = vrow[d];
                    }
                }

                for (int64_t q0 = 0; q0 < s.q_len; q0 += kBackwardQueries) {
                    const int64_t nq = std::min(kBackwardQueries, s.q_len - q0);
                    const int64_t nqp = round_up(nq, kTileRows);
                    const float* qi = qh + q0 * Dp;
                    const float* doi = doh + q0 * Dp;
                    // S = Q·(Kᵀ·scale·log2e), dP = dO·Vᵀ   (nqp × nkp)
                    gemm_tiles<false>(nqp, nkp, D, qi, Dp, kt, kBackwardKeys, pb, kBackwardKeys, false);
                    gemm_tiles<false>(nqp, nkp, D, doi, Dp, vt, kBackwardKeys, dsb, kBackwardKeys, false);
                    // P and dS in place; padded keys and queries get 0 so they add nothing.
                    for (int64_t i = 0; i < nqp; ++i) {
                        float* prow = pb + i * kBackwardKeys;
                        float* dsrow = dsb + i * kBackwardKeys;
                        if (i >= nq) {
                            std::memset(prow, 0, sizeof(float) * nkp);
                            std::memset(dsrow, 0, sizeof(float) * nkp);
                            continue;
                        }
                        const float l2 = lse2[q0 + i], di = delta[q0 + i];
                        for (int64_t j = 0; j < nk; ++j) {
                            const float p = recompute_probability(prow[j], l2);
                            prow[j] = p;
                            dsrow[j] = lrm_attention_dscore(p, dsrow[j], di);
                        }
                        for (int64_t j = nk; j < nkp; ++j) prow[j] = dsrow[j] = 0.0f;
                    }
                    // dV += Pᵀ·dO, dK += dSᵀ·Q   (nkp × Dp, over nq queries)
                    gemm_tiles<true>(nkp, Dp, nq, pb, kBackwardKeys, doi, Dp, dvb, Dp, true);
                    gemm_tiles<true>(nkp, Dp, nq, dsb, kBackwardKeys, qi, Dp, dkb, Dp, true);
                    // dQ += dS·K   (nqp × Dp, over nkp keys)
                    gemm_tiles<false>(nqp, Dp, nkp, dsb, kBackwardKeys, kp, Dp, dqh + q0 * Dp, Dp, true);
                }

                for (int64_t j = 0; j < nk; ++j) {
                    float* dkrow = dk + (b * s.kv_len + k0 + j) * dkv_row_stride + h * D;
                    float* dvrow = dv + (b * s.kv_len + k0 + j) * dkv_row_stride + h * D;
                    for (int64_t d = 0; d < D; ++d) {
                        dkrow[d] = dkb[j * Dp + d] * s.scale;
                        dvrow[d] = dvb[j * Dp + d];
                    }
                }
            }

            if (groups == 1) {
                for (int64_t i = 0; i < s.q_len; ++i) {
                    float* dqrow = dq + (b * s.q_len + i) * dq_row_stride + h * D;
                    for (int64_t d = 0; d < D; ++d) dqrow[d] = dqh[i * Dp + d] * s.scale;
                }
            } else {
                float* part = partials.data() + task * s.q_len * D;
                for (int64_t i = 0; i < s.q_len; ++i)
                    for (int64_t d = 0; d < D; ++d) part[i * D + d] = dqh[i * Dp + d];
            }
        }

        if (groups > 1) {
            // dQ = scale·Σ_groups partial, groups in order; one (batch, head, query) row per step.
#pragma omp for schedule(static)
            for (int64_t row = 0; row < heads_total * s.q_len; ++row) {
                const int64_t bh = row / s.q_len, i = row % s.q_len;
                const int64_t b = bh / s.heads, h = bh % s.heads;
                float* dqrow = dq + (b * s.q_len + i) * dq_row_stride + h * D;
                const float* first = partials.data() + (bh * groups) * s.q_len * D + i * D;
                for (int64_t d = 0; d < D; ++d) {
                    float sum = first[d];
                    for (int64_t g = 1; g < groups; ++g) sum += first[g * s.q_len * D + d];
                    dqrow[d] = sum * s.scale;
                }
            }
        }
    }
}

}  // namespace LRM_KERNEL_NS
}  // namespace lrm

#if !defined(LRM_KERNELS_AVX512)
namespace {

// The checks lrm_attention_forward and lrm_attention_backward share.
void check_attention_sizes(const lrm::Args& args, int64_t batch, int64_t heads, int64_t q_len, int64_t kv_len,
                           int64_t head_dim, int64_t q_row_stride, int64_t kv_row_stride, float scale) {
    args.positive(batch, "batch").positive(heads, "heads").positive(q_len, "q_len").positive(kv_len, "kv_len");
    args.positive(head_dim, "head_dim").positive(q_row_stride, "q_row_stride");
    args.positive(kv_row_stride, "kv_row_stride");
    const int64_t width = args.elements({heads, head_dim}, "heads x head_dim");
    if (q_row_stride < width)
        args.fail(LRM_STATUS_SHAPE_MISMATCH, "q_row_stride (%lld) must be >= heads*head_dim (%lld)",
                  static_cast<long long>(q_row_stride), static_cast<long long>(width));
    if (kv_row_stride < width)
        args.fail(LRM_STATUS_SHAPE_MISMATCH, "kv_row_stride (%lld) must be >= heads*head_dim (%lld)",
                  static_cast<long long>(kv_row_stride), static_cast<long long>(width));
    args.elements({batch, q_len, q_row_stride}, "q (batch x q_len x q_row_stride)");
    args.elements({batch, kv_len, kv_row_stride}, "k, v (batch x kv_len x kv_row_stride)");
    args.elements({batch, q_len, width}, "out (batch x q_len x heads*head_dim)");
    args.finite(scale, "scale");
}

}  // namespace

extern "C" LRM_API lrm_status lrm_attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                                     const float* out, const float* lse, const float* q,
                                                     const float* k, const float* v, int64_t batch, int64_t heads,
                                                     int64_t q_len, int64_t kv_len, int64_t head_dim,
                                                     int64_t q_row_stride, int64_t kv_row_stride,
                                                     int64_t dq_row_stride, int64_t dkv_row_stride, float scale) {
    return lrm::guarded("lrm_attention_backward", [&](const lrm::Args& args) {
        args.not_null(dq, "dq").not_null(dk, "dk").not_null(dv, "dv").not_null(dout, "dout").not_null(out, "out");
        args.not_null(lse, "lse").not_null(q, "q").not_null(k, "k").not_null(v, "v");
        check_attention_sizes(args, batch, heads, q_len, kv_len, head_dim, q_row_stride, kv_row_stride, scale);
        args.positive(dq_row_stride, "dq_row_stride").positive(dkv_row_stride, "dkv_row_stride");
        const int64_t width = heads * head_dim;
        if (dq_row_stride < width || dkv_row_stride < width)
            args.fail(LRM_STATUS_SHAPE_MISMATCH, "dq_row_stride (%lld) and dkv_row_stride (%lld) must be >= heads*head_dim (%lld)",
                      static_cast<long long>(dq_row_stride), static_cast<long long>(dkv_row_stride),
                      static_cast<long long>(width));
        args.elements({batch, q_len, dq_row_stride}, "dq (batch x q_len x dq_row_stride)");
        args.elements({batch, kv_len, dkv_row_stride}, "dk, dv (batch x kv_len x dkv_row_stride)");
        lrm::kernels().attention_backward(dq, dk, dv, dout, out, lse, q, k, v,
                                          {batch, heads, q_len, kv_len, head_dim, q_row_stride, kv_row_stride, scale},
                                          dq_row_stride, dkv_row_stride);
    });
}

extern "C" LRM_API lrm_status lrm_attention_forward(float* out, float* lse, const float* q, const float* k,
                                                    const float* v, int64_t batch, int64_t heads, int64_t q_len,
                                                    int64_t kv_len, int64_t head_dim, int64_t q_row_stride,
                                                    int64_t kv_row_stride, float scale) {
    return lrm::guarded("lrm_attention_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(q, "q").not_null(k, "k").not_null(v, "v");
        check_attention_sizes(args, batch, heads, q_len, kv_len, head_dim, q_row_stride, kv_row_stride, scale);
        lrm::kernels().attention_forward(out, lse, q, k, v,
                                         {batch, heads, q_len, kv_len, head_dim, q_row_stride, kv_row_stride, scale});
    });
}
#endif
