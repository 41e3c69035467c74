// microkernel.hpp — the register-tiled inner product used where BLAS cannot be:
// inside OpenMP regions (attention's Q·Kᵀ and P·V tiles, the fused MLP), where a
// multi-threaded sgemm would fight our own threads.
//
//   C[m×n] (+)= A[m×k] · B[k×n], A, B, C row-major with leading dimensions.
//
// Each MR×NR tile of C lives in registers for the whole k loop: per step one row
// of B (NR floats, contiguous) is loaded and each of the MR A values broadcast, so
// MR·NR fused multiply-adds cost NR/8 + MR loads. 4×16 keeps 8 AVX2 accumulators,
// 6×16 keeps 12 (OpenBLAS' Haswell shape); the callers pad m to MR and n to NR so
// only full tiles exist. Written as plain loops with constant trip counts: GCC
// writes the tile with GCC's vector extension (plain loops were not kept in
// registers by GCC 12: 8 GFLOP/s instead of ~45 per core on Zen 4, AVX2).
#pragma once

#include <cstdint>

namespace lrm {

constexpr int kTileRows = 6;   // MR
constexpr int kTileCols = 16;  // NR

#if defined(__GNUC__)
// GCC/Clang vector extension: 8 floats, one AVX register (two SSE registers when
// built without -march). aligned(4) makes dereferences unaligned loads/stores.
typedef float vec8 __attribute__((vector_size(32), aligned(4)));

template <int MR, int NR>
inline void gemm_tile(int64_t k, const float* __restrict a, int64_t lda, const float* __restrict b, int64_t ldb,
                      float* __restrict c, int64_t ldc, bool accumulate) {
    static_assert(NR % 8 == 0, "tile width must be a multiple of the vector width");
    constexpr int V = NR / 8;
    vec8 acc[MR][V];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < V; ++v)
            acc[r][v] = accumulate ? *reinterpret_cast<const vec8*>(c + r * ldc + 8 * v) : vec8{};
    for (int64_t p = 0; p < k; ++p) {
        vec8 brow[V];
        for (int v = 0; v < V; ++v) brow[v] = *reinterpret_cast<const vec8*>(b + p * ldb + 8 * v);
        for (int r = 0; r < MR; ++r) {
            const float av = a[r * lda + p];
            for (int v = 0; v < V; ++v) acc[r][v] += av * brow[v];
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < V; ++v) *reinterpret_cast<vec8*>(c + r * ldc + 8 * v) = acc[r][v];
}
#else
template <int MR, int NR>
inline void gemm_tile(int64_t k, const float* __restrict a, int64_t lda, const float* __restrict b, int64_t ldb,
                      float* __restrict c, int64_t ldc, bool accumulate) {
    float acc[MR][NR];
    for (int r = 0; r < MR; ++r)
        for (int j = 0; j < NR; ++j) acc[r][j] = accumulate ? c[r * ldc + j] : 0.0f;
    for (int64_t p = 0; p < k; ++p)
        for (int r = 0; r < MR; ++r)
            for (int j = 0; j < NR; ++j) acc[r][j] += a[r * lda + p] * b[p * ldb + j];
    for (int r = 0; r < MR; ++r)
        for (int j = 0; j < NR; ++j) c[r * ldc + j] = acc[r][j];
}
#endif

// m must be a multiple of kTileRows and n of kTileCols (callers pad their buffers).
inline void gemm_tiles(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                       float* c, int64_t ldc, bool accumulate) {
    for (int64_t j = 0; j < n; j += kTileCols)
        for (int64_t i = 0; i < m; i += kTileRows)
            gemm_tile<kTileRows, kTileCols>(k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, accumulate);
}

}  // namespace lrm
