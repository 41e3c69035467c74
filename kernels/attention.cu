/*
 * attention.cu — fused multi-head attention, forward and backward (FlashAttention-2 style:
 * recompute P from q, k and the saved lse).
 *
 *   out[b, i, h·D + d] = Σ_j softmax_j(scale · q[b, i, h]·k[b, j, h]) · v[b, j, h·D + d]
 *   lse[b, h, i]       = ln Σ_j exp(scale · q[b, i, h]·k[b, j, h])          (optional)
 *
 *   out (B, Tq, H·D) contiguous · lse (B, H, Tq) · q (B, Tq, ·) rows q_stride elements apart,
 *   k, v (B, Tk, ·) rows kv_stride apart; head h occupies columns [h·D, (h+1)·D) of the slice
 *   (the pointers are already offset to the slice's first column).
 *
 * Online softmax in base 2 (kernels/attention.cuh): scale_log2 = scale·log2(e), so each
 * probability is one exp2. The Tq×Tk scores never exist in memory.
 *
 * Two kernels:
 *  1. attention_forward_kernel — fp32 on CUDA cores, any D ≤ 256: one warp per query row,
 *     keys in blocks of 32 (one key per lane for the scores, then one output dimension per lane
 *     for P·V). Simple and exact: the parity reference for the fast kernel, and the path for
 *     head dims other than 64 and for fp32 precision.
 *  2. attention_forward_mma_kernel — bf16 q, k, v on tensor cores (mma.sync m16n8k16, fp32
 *     accumulation), D = 64: a block of 4 warps owns 64 queries (16 per warp); per block of
 *     64 keys it stages K (row-major) and Vᵀ in shared memory (rows padded to 72 bf16 so the
 *     fragment reads are free of bank conflicts), computes S = Q·Kᵀ into registers, updates
 *     the running max/sum per query row (each row is spread over the 4 threads of a quad),
 *     turns P into bf16 A-fragments in registers (the S accumulator layout is the A layout of
 *     the next mma) and accumulates O += P·V. Variants still to try on the GPU: ldmatrix for
 *     the fragment loads, cp.async double buffering of K/V, 128 queries per block, wgmma.
 *
 * Backward (attention.cuh's formulas; fp32 on CUDA cores, D ≤ 128, 8 warps per block):
 *  attention_backward_delta_kernel  D[b, h, i] = Σ_d dO·O, one warp per query row
 *  attention_backward_dq_kernel     dQ row i = scale·Σ_j dS_ij·k_j, one warp per query row
 *  attention_backward_dkv_kernel    dV row j = Σ_i P_ij·dO_i, dK row j = scale·Σ_i dS_ij·q_i, one warp per key row
 *  Each lane owns dims lane, lane + 32, … (4 registers); the dot products are warp sums. Nothing is
 *  atomic, so the result does not depend on scheduling. Still to come: tiles on tensor cores.
 */
#include "lrm_prelude.cuh"
#include "attention.cuh"
#include "bf16.cuh"

#define LRM_ATTN_MAX_DIM 256
#define LRM_ATTN_WARPS 4

/* grid (⌈Tq/4⌉, H, B), block 128. */
extern "C" __global__ void __launch_bounds__(128) attention_forward_kernel(
    float* out,        // (B, Tq, H·D)
    float* lse,        // (B, H, Tq) or null
    const float* q,    // (B, Tq, ·)
    const float* k,    // (B, Tk, ·)
    const float* v,    // (B, Tk, ·)
    int heads, int q_len, int kv_len, int head_dim, long long q_stride, long long kv_stride, float scale_log2) {
    __shared__ float q_rows[LRM_ATTN_WARPS][LRM_ATTN_MAX_DIM];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int h = blockIdx.y, b = blockIdx.z;
    const int row = blockIdx.x * LRM_ATTN_WARPS + warp;
    if (row >= q_len) return; /* whole warps leave together: no block-wide barrier below */
    const float* q_row = q + ((long long)b * q_len + row) * q_stride + (long long)h * head_dim;
    for (int d = lane; d < head_dim; d += 32) q_rows[warp][d] = q_row[d];
    __syncwarp();
    const float* k_head = k + (long long)b * kv_len * kv_stride + (long long)h * head_dim;
    const float* v_head = v + (long long)b * kv_len * kv_stride + (long long)h * head_dim;

    float acc[LRM_ATTN_MAX_DIM / 32];
#pragma unroll
    for (int i = 0; i < LRM_ATTN_MAX_DIM / 32; ++i) acc[i] = 0.0f;
    lrm_softmax_state state = lrm_softmax_state_init();
    for (int base = 0; base < kv_len; base += 32) {
        const int j = base + lane;
        float score = LRM_NEG_INF;
        if (j < kv_len) {
            const float* k_row = k_head + (long long)j * kv_stride;
            float dot = 0.0f;
            for (int d = 0; d < head_dim; ++d) dot += q_rows[warp][d] * k_row[d];
            score = dot * scale_log2;
        }
        const float alpha = lrm_softmax_state_rescale(&state, lrm_warp_max(score));
        const float p = exp2f(score - state.max);
        state.sum += lrm_warp_sum(p);
#pragma unroll
        for (int i = 0; i < LRM_ATTN_MAX_DIM / 32; ++i) acc[i] *= alpha;
        const int count = kv_len - base < 32 ? kv_len - base : 32;
        for (int jj = 0; jj < count; ++jj) {
            const float pj = __shfl_sync(LRM_FULL_MASK, p, jj);
            const float* v_row = v_head + (long long)(base + jj) * kv_stride;
#pragma unroll
            for (int i = 0; i < LRM_ATTN_MAX_DIM / 32; ++i) {
                const int d = lane + 32 * i;
                if (d < head_dim) acc[i] += pj * v_row[d];
            }
        }
    }
    const float inv = 1.0f / state.sum;
    float* out_row = out + (((long long)b * q_len + row) * heads + h) * head_dim;
#pragma unroll
    for (int i = 0; i < LRM_ATTN_MAX_DIM / 32; ++i) {
        const int d = lane + 32 * i;
        if (d < head_dim) out_row[d] = acc[i] * inv;
    }
    if (lse != nullptr && lane == 0) lse[((long long)b * heads + h) * q_len + row] = lrm_softmax_state_lse(state);
}

/* ---- tensor-core kernel ------------------------------------------------------------------ */

#define LRM_MMA_D 64
#define LRM_MMA_BLOCK_Q 64
#define LRM_MMA_BLOCK_K 64
#define LRM_MMA_PITCH 72 /* bf16 per shared row: 144 bytes, 36 words; 36·g + t hits 32 distinct banks */
#define LRM_MMA_PITCH_WORDS (LRM_MMA_PITCH / 2)

/* D = A·B + D, A 16×16 bf16 (row), B 16×8 bf16 (col), D 16×8 fp32. Fragment layout (PTX ISA,
 * mma.m16n8k16): g = lane/4, t = lane%4;
 *   a0 (g, 2t..2t+1) a1 (g+8, 2t..) a2 (g, 2t+8..) a3 (g+8, 2t+8..)
 *   b0 (k = 2t..2t+1, n = g) b1 (k = 2t+8.., n = g)
 *   d0 d1 (g, 2t..2t+1)  d2 d3 (g+8, 2t..2t+1)
 * Each 32-bit register holds two bf16, the lower column (or k) in the low half. */
static __device__ __forceinline__ void lrm_mma_bf16_16816(float* d, const unsigned int* a, unsigned int b0,
                                                          unsigned int b1) {
#if defined(LRM_EMULATE) /* tests/cuda-emulator: the same fragment layout, computed on the CPU */
    lrm_emu::mma_bf16_16816(d, a, b0, b1);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

static __device__ __forceinline__ unsigned int lrm_pack_bf16x2(float low, float high) {
    return (unsigned int)lrm_bf16_from_bits(__float_as_uint(low)) |
           ((unsigned int)lrm_bf16_from_bits(__float_as_uint(high)) << 16);
}

static __device__ __forceinline__ unsigned int lrm_load_bf16x2(const unsigned short* p) {
    return (unsigned int)p[0] | ((unsigned int)p[1] << 16);
}

/* The A fragments of Q for a warp's 16 query rows row0 … row0 + 15 (rows past q_len are zero), all 4 k-steps
 * of D = 64: loaded once per block and kept in registers (layout of lrm_mma_bf16_16816's a). */
static __device__ __forceinline__ void lrm_mma_load_q(unsigned int qa[4][4], const unsigned short* q, int b, int q_len,
                                                      long long q_stride, long long head_col, int row0, int g, int t) {
    const int rows[2] = {row0 + g, row0 + g + 8};
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int qrow = rows[r & 1];
            const int col = 16 * kk + 2 * t + (r >= 2 ? 8 : 0);
            qa[kk][r] = qrow < q_len ? lrm_load_bf16x2(q + ((long long)b * q_len + qrow) * q_stride + head_col + col) : 0u;
        }
}

/* One 64-key block of the online softmax, for a thread's share of its warp's 16 query rows (rows g and
 * g + 8; s and o in the D layout of lrm_mma_bf16_16816, 8 tiles × 4): scales the scores S = Q·Kᵀ of keys
 * base … base + 63 into base 2, masks keys at or past kv_len, raises each row's running max to the block's
 * (reduced over the quad), rescales row_sum and o by exp2(old max − new max), and turns s into the
 * probabilities exp2(s − max), adding them to row_sum. */
static __device__ __forceinline__ void lrm_mma_online_softmax(float s[8][4], float o[8][4], float row_max[2], float row_sum[2],
                                                              int base, int t, int kv_len, float scale_log2) {
    float block_max[2] = {LRM_NEG_INF, LRM_NEG_INF};
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const int key = base + 8 * n + 2 * t + (c & 1);
            s[n][c] = key < kv_len ? s[n][c] * scale_log2 : LRM_NEG_INF;
            block_max[c >> 1] = fmaxf(block_max[c >> 1], s[n][c]);
        }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        block_max[r] = fmaxf(block_max[r], __shfl_xor_sync(LRM_FULL_MASK, block_max[r], 1));
        block_max[r] = fmaxf(block_max[r], __shfl_xor_sync(LRM_FULL_MASK, block_max[r], 2));
        const float new_max = fmaxf(row_max[r], block_max[r]);
        alpha[r] = exp2f(row_max[r] - new_max);
        row_max[r] = new_max;
        row_sum[r] *= alpha[r];
    }
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            s[n][c] = exp2f(s[n][c] - row_max[c >> 1]);
            row_sum[c >> 1] += s[n][c];
            o[n][c] *= alpha[c >> 1];
        }
}

/* The end of both tensor-core kernels: each thread holds partial row sums of its quad's two query rows
 * (g and g + 8 of the warp's 16) and the unnormalised output accumulators o (8 tiles of 8 dims, D layout
 * of lrm_mma_bf16_16816). Sums the quad's row sums, writes out = o / sum as float2 pairs, and the
 * log-sum-exp (running max in log2 units) when lse is given. Rows at or past q_len are skipped. */
static __device__ __forceinline__ void lrm_mma_attention_store(float* out, float* lse, float o[8][4], const float row_max[2],
                                                               float row_sum[2], int b, int h, int heads, int q_len,
                                                               int row0, int g, int t) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        row_sum[r] += __shfl_xor_sync(LRM_FULL_MASK, row_sum[r], 1);
        row_sum[r] += __shfl_xor_sync(LRM_FULL_MASK, row_sum[r], 2);
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int qrow = row0 + g + 8 * r;
        if (qrow >= q_len) continue;
        const float inv = 1.0f / row_sum[r];
        float* out_row = out + (((long long)b * q_len + qrow) * heads + h) * LRM_MMA_D;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
            float2 pair;
            pair.x = o[n][2 * r] * inv;
            pair.y = o[n][2 * r + 1] * inv;
            *(float2*)(out_row + 8 * n + 2 * t) = pair;
        }
        if (lse != nullptr && t == 0) {
            lrm_softmax_state state;
            state.max = row_max[r];
            state.sum = row_sum[r];
            lse[((long long)b * heads + h) * q_len + qrow] = lrm_softmax_state_lse(state);
        }
    }
}

/* grid (⌈Tq/64⌉, H, B), block 128. q_stride, kv_stride and the slices' column offsets must be
 * even (32-bit loads of bf16 pairs); the host checks and otherwise takes the fp32 kernel. */
extern "C" __global__ void __launch_bounds__(128) attention_forward_mma_kernel(
    float* out,                 // (B, Tq, H·64)
    float* lse,                 // (B, H, Tq) or null
    const unsigned short* q,    // (B, Tq, ·) bf16
    const unsigned short* k,    // (B, Tk, ·) bf16
    const unsigned short* v,    // (B, Tk, ·) bf16
    int heads, int q_len, int kv_len, long long q_stride, long long kv_stride, float scale_log2) {
    __shared__ unsigned int k_tile[LRM_MMA_BLOCK_K * LRM_MMA_PITCH_WORDS]; /* K[key][dim], bf16 pairs */
    __shared__ unsigned int vt_words[LRM_MMA_D * LRM_MMA_PITCH_WORDS];     /* Vᵀ[dim][key], bf16 pairs */
    unsigned short* vt_tile = (unsigned short*)vt_words; /* written per bf16, read per pair (4-byte aligned) */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int h = blockIdx.y, b = blockIdx.z;
    const int row0 = blockIdx.x * LRM_MMA_BLOCK_Q + warp * 16;
    const long long head_col = (long long)h * LRM_MMA_D;

    unsigned int qa[4][4];
    lrm_mma_load_q(qa, q, b, q_len, q_stride, head_col, row0, g, t);

    float o[8][4];
#pragma unroll
    for (int n = 0; n < 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float row_max[2] = {LRM_NEG_INF, LRM_NEG_INF};
    float row_sum[2] = {0.0f, 0.0f}; /* this thread's partial sums; the quad's total at the end */

    const unsigned short* k_batch = k + (long long)b * kv_len * kv_stride + head_col;
    const unsigned short* v_batch = v + (long long)b * kv_len * kv_stride + head_col;
    for (int base = 0; base < kv_len; base += LRM_MMA_BLOCK_K) {
        __syncthreads(); /* the previous block's tiles are no longer read */
        for (int idx = threadIdx.x; idx < LRM_MMA_BLOCK_K * (LRM_MMA_D / 2); idx += blockDim.x) {
            const int key = idx / (LRM_MMA_D / 2), word = idx % (LRM_MMA_D / 2);
            unsigned int kw = 0u, vw = 0u;
            if (base + key < kv_len) {
                const long long offset = (long long)(base + key) * kv_stride + 2 * word;
                kw = lrm_load_bf16x2(k_batch + offset);
                vw = lrm_load_bf16x2(v_batch + offset);
            }
            k_tile[key * LRM_MMA_PITCH_WORDS + word] = kw;
            vt_tile[(2 * word) * LRM_MMA_PITCH + key] = (unsigned short)(vw & 0xffffu);
            vt_tile[(2 * word + 1) * LRM_MMA_PITCH + key] = (unsigned short)(vw >> 16);
        }
        __syncthreads();

        /* S = Q·Kᵀ: 8 tiles of 8 keys. */
        float s[8][4];
#pragma unroll
        for (int n = 0; n < 8; ++n) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < 4; ++kk) {
                const unsigned int* krow = k_tile + (8 * n + g) * LRM_MMA_PITCH_WORDS + 8 * kk + t;
                lrm_mma_bf16_16816(s[n], qa[kk], krow[0], krow[4]);
            }
        }
        lrm_mma_online_softmax(s, o, row_max, row_sum, base, t, kv_len, scale_log2);
        /* O += P·V: P's accumulator layout is the A layout of keys 16·kk … 16·kk + 15. */
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
            unsigned int pa[4];
            pa[0] = lrm_pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = lrm_pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = lrm_pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = lrm_pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int n = 0; n < 8; ++n) {
                const unsigned int* vrow = vt_words + (8 * n + g) * LRM_MMA_PITCH_WORDS + 8 * kk + t;
                lrm_mma_bf16_16816(o[n], pa, vrow[0], vrow[4]);
            }
        }
    }

    lrm_mma_attention_store(out, lse, o, row_max, row_sum, b, h, heads, q_len, row0, g, t);
}

/* ---- tensor-core kernel, pipelined (v2) ------------------------------------------------------
 * The v1 algorithm with the data movement of FlashAttention-2: K and V tiles arrive by cp.async
 * (16-byte copies global → shared, no registers) into two stages, so the next block's copy runs
 * while this block is computed; V stays row-major and its B-fragments come from
 * ldmatrix.trans, K's from ldmatrix, four 8×8 matrices per instruction. Needs 16-byte aligned
 * rows: kv_stride % 8 == 0 and the slices' column offsets % 8 == 0 (the host checks). */

#if defined(LRM_EMULATE)
/* tests/cuda-emulator: a shared-memory address is a host pointer, and the copies and matrix loads
 * are its emulations of the same instructions (queued copies, warp-collective ldmatrix). */
typedef void* lrm_shared_addr;
static __device__ __forceinline__ lrm_shared_addr lrm_shared_address(const void* pointer) { return const_cast<void*>(pointer); }
static __device__ __forceinline__ void lrm_cp_async_16(lrm_shared_addr shared, const void* global, int bytes) {
    lrm_emu::async_copy(shared, global, bytes);
}
static __device__ __forceinline__ void lrm_ldmatrix_x4(unsigned int* r, lrm_shared_addr shared) { lrm_emu::ldmatrix_x4(r, shared, false); }
static __device__ __forceinline__ void lrm_ldmatrix_x4_trans(unsigned int* r, lrm_shared_addr shared) { lrm_emu::ldmatrix_x4(r, shared, true); }
#define LRM_CP_ASYNC_COMMIT() lrm_emu::async_commit()
#define LRM_CP_ASYNC_WAIT(pending) lrm_emu::async_wait(pending)
#else
typedef unsigned int lrm_shared_addr; /* a 32-bit shared-window address */

static __device__ __forceinline__ lrm_shared_addr lrm_shared_address(const void* pointer) {
    unsigned int address;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(pointer));
    return address;
}

/* 16 bytes global → shared; bytes = 0 fills the destination with zeros and reads nothing. */
static __device__ __forceinline__ void lrm_cp_async_16(lrm_shared_addr shared, const void* global, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared), "l"(global), "r"(bytes));
}

static __device__ __forceinline__ void lrm_ldmatrix_x4(unsigned int* r, lrm_shared_addr shared) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared));
}

static __device__ __forceinline__ void lrm_ldmatrix_x4_trans(unsigned int* r, lrm_shared_addr shared) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared));
}
#define LRM_CP_ASYNC_COMMIT() asm volatile("cp.async.commit_group;\n" ::)
/* pending must be a literal: it is an immediate of the instruction. */
#define LRM_CP_ASYNC_WAIT(pending) asm volatile("cp.async.wait_group " #pending ";\n" ::)
#endif

/* grid (⌈Tq/64⌉, H, B), block 128. */
extern "C" __global__ void __launch_bounds__(128) attention_forward_mma2_kernel(
    float* out,                 // (B, Tq, H·64)
    float* lse,                 // (B, H, Tq) or null
    const unsigned short* q,    // (B, Tq, ·) bf16
    const unsigned short* k,    // (B, Tk, ·) bf16, rows 16-byte aligned
    const unsigned short* v,    // (B, Tk, ·) bf16, rows 16-byte aligned
    int heads, int q_len, int kv_len, long long q_stride, long long kv_stride, float scale_log2) {
    __shared__ __align__(16) unsigned short k_tiles[2][LRM_MMA_BLOCK_K * LRM_MMA_PITCH]; /* K[key][dim] */
    __shared__ __align__(16) unsigned short v_tiles[2][LRM_MMA_BLOCK_K * LRM_MMA_PITCH]; /* V[key][dim] */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int h = blockIdx.y, b = blockIdx.z;
    const int row0 = blockIdx.x * LRM_MMA_BLOCK_Q + warp * 16;
    const long long head_col = (long long)h * LRM_MMA_D;
    const unsigned short* k_batch = k + (long long)b * kv_len * kv_stride + head_col;
    const unsigned short* v_batch = v + (long long)b * kv_len * kv_stride + head_col;

    /* Queue the copies of keys [base, base + 64) into stage `stage`: 64 rows × 8 chunks of 16 bytes each for K and V. */
#define LRM_MMA2_LOAD(stage, base)                                                                              \
    do {                                                                                                         \
        for (int chunk = threadIdx.x; chunk < LRM_MMA_BLOCK_K * 8; chunk += blockDim.x) {                        \
            const int key = chunk >> 3, column = (chunk & 7) * 8;                                               \
            const int source_key = (base) + key < kv_len ? (base) + key : kv_len - 1;                           \
            const int bytes = (base) + key < kv_len ? 16 : 0;                                                   \
            const long long offset = (long long)source_key * kv_stride + column;                                \
            lrm_cp_async_16(lrm_shared_address(&k_tiles[stage][key * LRM_MMA_PITCH + column]), k_batch + offset, bytes); \
            lrm_cp_async_16(lrm_shared_address(&v_tiles[stage][key * LRM_MMA_PITCH + column]), v_batch + offset, bytes); \
        }                                                                                                        \
        LRM_CP_ASYNC_COMMIT();                                                                                   \
    } while (0)

    LRM_MMA2_LOAD(0, 0);

    unsigned int qa[4][4];
    lrm_mma_load_q(qa, q, b, q_len, q_stride, head_col, row0, g, t);
    float o[8][4];
#pragma unroll
    for (int n = 0; n < 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float row_max[2] = {LRM_NEG_INF, LRM_NEG_INF};
    float row_sum[2] = {0.0f, 0.0f};

    /* ldmatrix row addresses: lane L supplies row L % 8 of matrix L / 8. */
    const int matrix = lane >> 3, matrix_row = lane & 7;
    int stage = 0;
    for (int base = 0; base < kv_len; base += LRM_MMA_BLOCK_K, stage ^= 1) {
        if (base + LRM_MMA_BLOCK_K < kv_len) {
            LRM_MMA2_LOAD(stage ^ 1, base + LRM_MMA_BLOCK_K);
            LRM_CP_ASYNC_WAIT(1);
        } else {
            LRM_CP_ASYNC_WAIT(0);
        }
        __syncthreads(); /* this stage's copies, made by all threads, are visible */

        /* S = Q·Kᵀ. For key tile n and k-steps kk, kk+1: matrices K[8n + r][16kk + 8m], m = 0..3, give
         * b0, b1 of step kk and b0, b1 of step kk + 1. */
        float s[8][4];
#pragma unroll
        for (int n = 0; n < 8; ++n) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < 4; kk += 2) {
                unsigned int frag[4];
                lrm_ldmatrix_x4(frag, lrm_shared_address(&k_tiles[stage][(8 * n + matrix_row) * LRM_MMA_PITCH + 16 * kk + 8 * matrix]));
                lrm_mma_bf16_16816(s[n], qa[kk], frag[0], frag[1]);
                lrm_mma_bf16_16816(s[n], qa[kk + 1], frag[2], frag[3]);
            }
        }
        lrm_mma_online_softmax(s, o, row_max, row_sum, base, t, kv_len, scale_log2);
        /* O += P·V. For k-step kk and dim tiles n, n+1: matrices V[16kk + 8(m & 1) + r][8(n + (m >> 1))],
         * transposed, give b0, b1 of tile n and b0, b1 of tile n + 1. */
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
            unsigned int pa[4];
            pa[0] = lrm_pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = lrm_pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = lrm_pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = lrm_pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int n = 0; n < 8; n += 2) {
                unsigned int frag[4];
                const int key = 16 * kk + 8 * (matrix & 1) + matrix_row;
                const int dim = 8 * (n + (matrix >> 1));
                lrm_ldmatrix_x4_trans(frag, lrm_shared_address(&v_tiles[stage][key * LRM_MMA_PITCH + dim]));
                lrm_mma_bf16_16816(o[n], pa, frag[0], frag[1]);
                lrm_mma_bf16_16816(o[n + 1], pa, frag[2], frag[3]);
            }
        }
        __syncthreads(); /* everyone is done with this stage before it is refilled */
    }
#undef LRM_MMA2_LOAD

    lrm_mma_attention_store(out, lse, o, row_max, row_sum, b, h, heads, q_len, row0, g, t);
}

#define LRM_ATTN_BWD_WARPS 8
#define LRM_ATTN_BWD_REGS 4 /* head dim ≤ 32·4 */

/* The row a backward warp owns: warp w of batch·heads·len (rows fastest) is row `row` of head h of sample b, and w
 * indexes the (B, H, len) lse/delta arrays. Returns 0 for warps past the end. */
typedef struct lrm_attention_row { long long w, b, h, row; } lrm_attention_row;
/* A warp's registers of one head row: r[k] = row[lane + 32·k] inside head_dim, 0 beyond. */
static __device__ __forceinline__ void lrm_attention_load_row(float* r, const float* row, int lane, int head_dim) {
    for (int k = 0; k < LRM_ATTN_BWD_REGS; ++k) {
        const int d = lane + 32 * k;
        r[k] = d < head_dim ? row[d] : 0.0f;
    }
}

static __device__ __forceinline__ int lrm_attention_backward_row(int batch, int heads, int len, lrm_attention_row* r) {
    r->w = (long long)blockIdx.x * LRM_ATTN_BWD_WARPS + (threadIdx.x >> 5);
    if (r->w >= (long long)batch * heads * len) return 0;
    r->row = r->w % len;
    r->h = r->w / len % heads;
    r->b = r->w / ((long long)len * heads);
    return 1;
}

extern "C" __global__ void __launch_bounds__(256) attention_backward_delta_kernel(
    float* delta,          // (B, H, Tq)
    const float* dout,     // (B, Tq, H·D)
    const float* out,      // (B, Tq, H·D)
    int batch, int heads, int q_len, int head_dim) {
    const int lane = threadIdx.x & 31;
    lrm_attention_row at;
    if (!lrm_attention_backward_row(batch, heads, q_len, &at)) return;
    const long long w = at.w, i = at.row, h = at.h, b = at.b;
    const long long base = (b * q_len + i) * ((long long)heads * head_dim) + h * head_dim;
    float sum = 0.0f;
    for (int d = lane; d < head_dim; d += 32) sum += dout[base + d] * out[base + d];
    sum = lrm_warp_sum(sum);
    if (lane == 0) delta[w] = sum;
}

extern "C" __global__ void __launch_bounds__(256) attention_backward_dq_kernel(
    float* dq,             // (B, Tq, ·) rows dq_stride apart, offset to the slice
    const float* dout,     // (B, Tq, H·D)
    const float* lse,      // (B, H, Tq)
    const float* delta,    // (B, H, Tq)
    const float* q,        // (B, Tq, ·) rows q_stride apart
    const float* k,        // (B, Tk, ·) rows kv_stride apart
    const float* v,        // (B, Tk, ·) rows kv_stride apart
    int batch, int heads, int q_len, int k_len, int head_dim, long long q_stride, long long kv_stride,
    long long dq_stride, float scale) {
    const int lane = threadIdx.x & 31;
    lrm_attention_row at;
    if (!lrm_attention_backward_row(batch, heads, q_len, &at)) return;
    const long long w = at.w, i = at.row, h = at.h, b = at.b;
    const float* qi = q + (b * q_len + i) * q_stride + h * head_dim;
    const float* doi = dout + (b * q_len + i) * ((long long)heads * head_dim) + h * head_dim;
    float qr[LRM_ATTN_BWD_REGS], dor[LRM_ATTN_BWD_REGS], acc[LRM_ATTN_BWD_REGS] = {};
    lrm_attention_load_row(qr, qi, lane, head_dim);
    lrm_attention_load_row(dor, doi, lane, head_dim);
    const float lse_i = lse[w], delta_i = delta[w];
    for (int j = 0; j < k_len; ++j) {
        const float* kj = k + (b * k_len + j) * kv_stride + h * head_dim;
        const float* vj = v + (b * k_len + j) * kv_stride + h * head_dim;
        float kr[LRM_ATTN_BWD_REGS];
        float s = 0.0f, dp = 0.0f;
        for (int r = 0; r < LRM_ATTN_BWD_REGS; ++r) {
            const int d = lane + 32 * r;
            kr[r] = d < head_dim ? kj[d] : 0.0f;
            s += qr[r] * kr[r];
            dp += d < head_dim ? dor[r] * vj[d] : 0.0f;
        }
        s = lrm_warp_sum(s);
        dp = lrm_warp_sum(dp);
        const float p = expf(scale * s - lse_i);
        const float ds = lrm_attention_dscore(p, dp, delta_i);
        for (int r = 0; r < LRM_ATTN_BWD_REGS; ++r) acc[r] += ds * kr[r];
    }
    float* dqi = dq + (b * q_len + i) * dq_stride + h * head_dim;
    for (int r = 0; r < LRM_ATTN_BWD_REGS; ++r) {
        const int d = lane + 32 * r;
        if (d < head_dim) dqi[d] = scale * acc[r];
    }
}

extern "C" __global__ void __launch_bounds__(256) attention_backward_dkv_kernel(
    float* dk,             // (B, Tk, ·) rows dkv_stride apart, offset to the slice
    float* dv,             // (B, Tk, ·) rows dkv_stride apart, offset to the slice
    const float* dout,     // (B, Tq, H·D)
    const float* lse,      // (B, H, Tq)
    const float* delta,    // (B, H, Tq)
    const float* q,        // (B, Tq, ·) rows q_stride apart
    const float* k,        // (B, Tk, ·) rows kv_stride apart
    const float* v,        // (B, Tk, ·) rows kv_stride apart
    int batch, int heads, int q_len, int k_len, int head_dim, long long q_stride, long long kv_stride,
    long long dkv_stride, float scale) {
    const int lane = threadIdx.x & 31;
    lrm_attention_row at;
    if (!lrm_attention_backward_row(batch, heads, k_len, &at)) return;
    const long long j = at.row, h = at.h, b = at.b;
    const float* kj = k + (b * k_len + j) * kv_stride + h * head_dim;
    const float* vj = v + (b * k_len + j) * kv_stride + h * head_dim;
    float kr[LRM_ATTN_BWD_REGS], vr[LRM_ATTN_BWD_REGS], acc_k[LRM_ATTN_BWD_REGS] = {}, acc_v[LRM_ATTN_BWD_REGS] = {};
    lrm_attention_load_row(kr, kj, lane, head_dim);
    lrm_attention_load_row(vr, vj, lane, head_dim);
    const long long rows = (b * heads + h) * q_len; /* this (b, h)'s lse and delta */
    for (int i = 0; i < q_len; ++i) {
        const float* qi = q + (b * q_len + i) * q_stride + h * head_dim;
        const float* doi = dout + (b * q_len + i) * ((long long)heads * head_dim) + h * head_dim;
        float qr[LRM_ATTN_BWD_REGS], dor[LRM_ATTN_BWD_REGS];
        float s = 0.0f, dp = 0.0f;
        for (int r = 0; r < LRM_ATTN_BWD_REGS; ++r) {
            const int d = lane + 32 * r;
            qr[r] = d < head_dim ? qi[d] : 0.0f;
            dor[r] = d < head_dim ? doi[d] : 0.0f;
            s += qr[r] * kr[r];
            dp += dor[r] * vr[r];
        }
        s = lrm_warp_sum(s);
        dp = lrm_warp_sum(dp);
        const float p = expf(scale * s - lse[rows + i]);
        const float ds = lrm_attention_dscore(p, dp, delta[rows + i]);
        for (int r = 0; r < LRM_ATTN_BWD_REGS; ++r) {
            acc_v[r] += p * dor[r];
            acc_k[r] += ds * qr[r];
        }
    }
    float* dkj = dk + (b * k_len + j) * dkv_stride + h * head_dim;
    float* dvj = dv + (b * k_len + j) * dkv_stride + h * head_dim;
    for (int r = 0; r < LRM_ATTN_BWD_REGS; ++r) {
        const int d = lane + 32 * r;
        if (d < head_dim) {
            dkj[d] = scale * acc_k[r];
            dvj[d] = acc_v[r];
        }
    }
}
