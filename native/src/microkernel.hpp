// microkernel.hpp — the register-tiled inner product used where BLAS cannot be:
// inside OpenMP regions (attention's Sᵀ = K·Q̃ᵀ and O += P·V tiles, the fused
// MLP), where a multi-threaded sgemm would fight our own threads.
//
//   C[m×n] (+)= A[m×k] · B[k×n], B and C row-major with leading dimensions; A
//   row-major too (a[r·lda + p]), or stored transposed (A_T: a[p·lda + r], for
//   attention's P, which it holds as Pᵀ).
//
// Each MR×NR tile of C lives in registers for the whole k loop: per step one row
// of B (NR floats, contiguous) is loaded and each of the MR A values broadcast, so
// MR·NR fused multiply-adds cost NR/W + MR loads (W floats per vector register).
// Every C element is one chain of fused multiply-adds in k order, whatever the
// tile shape, so both builds below give bit-identical products. Written as plain
// loops with constant trip counts over GCC's vector extension (plain scalar loops
// were not kept in registers by GCC 12: 8 GFLOP/s instead of ~45 per core on Zen
// 4, AVX2); always_inline, since a tile left out of line was ~8% slower in the MLP
// (GCC added register copies to the k loop).
//
// Compiled once per instruction set (cpu_dispatch.hpp); the shape follows the
// registers the translation unit is compiled for:
//   AVX2 (16 ymm):    W = 8,  6×16 tile, 12 accumulators (OpenBLAS' Haswell shape;
//                     4×16 was ~8% slower).
//   AVX-512 (32 zmm): W = 16, 8×32 tile, 16 accumulators. On Zen 5, attention
//                     3072² (2 threads) was within noise (±3%) for 6×32, 8×32,
//                     10×32, 12×32, 4×64, and for query blocks of 64-192 and key
//                     blocks of 64-256; 8×32 keeps the padding of small heads and
//                     MLP layers low.
// Everything here is in an unnamed namespace: each translation unit gets its own
// copy, so the linker can never hand the AVX-512 build of a function to baseline
// code (which would then fault on a CPU without AVX-512).
#pragma once

#include <cstdint>

namespace lrm {
namespace {

#if defined(__AVX512F__)
constexpr int kVecWidth = 16;  // W, floats per vector register
constexpr int kTileRows = 8;   // MR
constexpr int kTileCols = 32;  // NR
#else
constexpr int kVecWidth = 8;
constexpr int kTileRows = 6;
constexpr int kTileCols = 16;
#endif
static_assert(kTileCols % kVecWidth == 0, "tile width must be a multiple of the vector width");

#if defined(__GNUC__)
#define LRM_TILE_INLINE inline __attribute__((always_inline))
// GCC/Clang vector extension: W floats, one vector register (several SSE
// registers when built without -march). aligned(4) makes dereferences unaligned
// loads/stores.
typedef float vecf __attribute__((vector_size(sizeof(float) * kVecWidth), aligned(4)));

template <int MR, int NR, bool A_T>
LRM_TILE_INLINE void gemm_tile(int64_t k, const float* __restrict a, int64_t lda, const float* __restrict b,
                               int64_t ldb, float* __restrict c, int64_t ldc, bool accumulate) {
    constexpr int V = NR / kVecWidth;
    vecf acc[MR][V];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < V; ++v)
            acc[r][v] = accumulate ? *reinterpret_cast<const vecf*>(c + r * ldc + kVecWidth * v) : vecf{};
    for (int64_t p = 0; p < k; ++p) {
        vecf brow[V];
        for (int v = 0; v < V; ++v) brow[v] = *reinterpret_cast<const vecf*>(b + p * ldb + kVecWidth * v);
        for (int r = 0; r < MR; ++r) {
            const float av = A_T ? a[p * lda + r] : a[r * lda + p];
            for (int v = 0; v < V; ++v) acc[r][v] += av * brow[v];
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < V; ++v) *reinterpret_cast<vecf*>(c + r * ldc + kVecWidth * v) = acc[r][v];
}

// gemm_tile with the start of each sum given: C[r] = start[r·ld_start] + (A·B)[r], row by row
// (kept apart from gemm_tile on purpose: gemm_tile as a call of this one, start = accumulate ? c : nullptr, drops the
// __restrict on C and GCC 12 then emits different, 5-15 % larger gemm_tiles code for the hot GEMM paths; checked by
// disassembly in session 13, not benchmarked)
// (ld_start = ldc and start = c: accumulate into C; ld_start = 0: one row, e.g. a bias,
// under every row; start = nullptr: from zero). The patch embedding's packed products.
template <int MR, int NR, bool A_T>
LRM_TILE_INLINE void gemm_tile_from(int64_t k, const float* __restrict a, int64_t lda, const float* __restrict b,
                                    int64_t ldb, float* c, int64_t ldc, const float* start, int64_t ld_start) {
    constexpr int V = NR / kVecWidth;
    vecf acc[MR][V];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < V; ++v)
            acc[r][v] = start != nullptr ? *reinterpret_cast<const vecf*>(start + r * ld_start + kVecWidth * v) : vecf{};
    for (int64_t p = 0; p < k; ++p) {
        vecf brow[V];
        for (int v = 0; v < V; ++v) brow[v] = *reinterpret_cast<const vecf*>(b + p * ldb + kVecWidth * v);
        for (int r = 0; r < MR; ++r) {
            const float av = A_T ? a[p * lda + r] : a[r * lda + p];
            for (int v = 0; v < V; ++v) acc[r][v] += av * brow[v];
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < V; ++v) *reinterpret_cast<vecf*>(c + r * ldc + kVecWidth * v) = acc[r][v];
}
#else
#define LRM_TILE_INLINE inline
template <int MR, int NR, bool A_T>
LRM_TILE_INLINE void gemm_tile(int64_t k, const float* __restrict a, int64_t lda, const float* __restrict b,
                               int64_t ldb, float* __restrict c, int64_t ldc, bool accumulate) {
    float acc[MR][NR];
    for (int r = 0; r < MR; ++r)
        for (int j = 0; j < NR; ++j) acc[r][j] = accumulate ? c[r * ldc + j] : 0.0f;
    for (int64_t p = 0; p < k; ++p)
        for (int r = 0; r < MR; ++r)
            for (int j = 0; j < NR; ++j) acc[r][j] += (A_T ? a[p * lda + r] : a[r * lda + p]) * b[p * ldb + j];
    for (int r = 0; r < MR; ++r)
        for (int j = 0; j < NR; ++j) c[r * ldc + j] = acc[r][j];
}
template <int MR, int NR, bool A_T>
LRM_TILE_INLINE void gemm_tile_from(int64_t k, const float* __restrict a, int64_t lda, const float* __restrict b,
                                    int64_t ldb, float* c, int64_t ldc, const float* start, int64_t ld_start) {
    float acc[MR][NR];
    for (int r = 0; r < MR; ++r)
        for (int j = 0; j < NR; ++j) acc[r][j] = start != nullptr ? start[r * ld_start + j] : 0.0f;
    for (int64_t p = 0; p < k; ++p)
        for (int r = 0; r < MR; ++r)
            for (int j = 0; j < NR; ++j) acc[r][j] += (A_T ? a[p * lda + r] : a[r * lda + p]) * b[p * ldb + j];
    for (int r = 0; r < MR; ++r)
        for (int j = 0; j < NR; ++j) c[r * ldc + j] = acc[r][j];
}
#endif

// Prefetches rows [first, first + count) of A (k floats each) into the cache.
inline void prefetch_rows(const float* a, int64_t lda, int64_t first, int64_t count, int64_t k) {
#if defined(__GNUC__)
    for (int64_t r = first; r < first + count; ++r) {
        const char* row = reinterpret_cast<const char*>(a + r * lda);
        for (int64_t off = 0; off < k * static_cast<int64_t>(sizeof(float)); off += 64) __builtin_prefetch(row + off);
    }
#else
    (void)a, (void)lda, (void)first, (void)count, (void)k;
#endif
}

// m must be a multiple of kTileRows and n of kVecWidth (callers pad their
// buffers); columns past the last whole kTileCols tile go through tiles one vector
// wide (the NeRF MLP's 4 outputs: one 16-float column in the AVX-512 build, not 32).
// prefetch_a: A is row-major and comes from main memory (the MLP's input); while
// the first column of tiles is computed, the next row tile of A is prefetched
// (the hardware prefetchers did not keep up: MLP 240→64→64→64→4, 2 threads,
// AVX-512: 36.5 → 31 ms).
template <bool A_T = false>
inline void gemm_tiles(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                       float* c, int64_t ldc, bool accumulate, bool prefetch_a = false) {
    int64_t j = 0;
    for (; j + kTileCols <= n; j += kTileCols)
        for (int64_t i = 0; i < m; i += kTileRows) {
            if (!A_T && prefetch_a && j == 0 && i + kTileRows < m)
                prefetch_rows(a, lda, i + kTileRows, m - i - kTileRows < kTileRows ? m - i - kTileRows : kTileRows, k);
            gemm_tile<kTileRows, kTileCols, A_T>(k, a + (A_T ? i : i * lda), lda, b + j, ldb, c + i * ldc + j, ldc,
                                                 accumulate);
        }
    for (; j < n; j += kVecWidth)
        for (int64_t i = 0; i < m; i += kTileRows)
            gemm_tile<kTileRows, kVecWidth, A_T>(k, a + (A_T ? i : i * lda), lda, b + j, ldb, c + i * ldc + j, ldc,
                                                 accumulate);
}

}  // namespace
}  // namespace lrm
