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
// Backward (to come): recompute P from q, k and the saved lse, FlashAttention-2 style.
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

}  // namespace LRM_KERNEL_NS
}  // namespace lrm

#if !defined(LRM_KERNELS_AVX512)
extern "C" LRM_API lrm_status lrm_attention_forward(float* out, float* lse, const float* q, const float* k,
                                                    const float* v, int64_t batch, int64_t heads, int64_t q_len,
                                                    int64_t kv_len, int64_t head_dim, int64_t q_row_stride,
                                                    int64_t kv_row_stride, float scale) {
    return lrm::guarded("lrm_attention_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(q, "q").not_null(k, "k").not_null(v, "v");
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
        lrm::kernels().attention_forward(out, lse, q, k, v,
                                         {batch, heads, q_len, kv_len, head_dim, q_row_stride, kv_row_stride, scale});
    });
}
#endif
