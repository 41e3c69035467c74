// conv.cpp — the two convolutions of LRM, both with kernel = stride (no overlap).
//
// Patch embedding, Conv2d(Cin, O, kernel = stride = P) + bias, written token-major:
//   out[b, gy·Gw + gx, o] = bias[o] + Σ_{c,py,px} image[b, c, gy·P + py, gx·P + px]·w[o, c, py, px]
//   out (B, Gh·Gw, O), image (B, Cin, H, W), w (O, Cin, P, P), Gh = ⌊H/P⌋, Gw = ⌊W/P⌋
//   Patches do not overlap, so im2col is a pure gather (each pixel copied at most
//   once) into cols (Gh·Gw, Cin·P·P), and out = cols·wᵀ per image.
//   Pixels beyond the last full patch are ignored, as PyTorch does.
//
// De-convolution, ConvTranspose2d(Cin, O, kernel = stride = K, no padding) + bias:
//   out[b, o, y·K + ky, x·K + kx] = bias[o] + Σ_c inp[b, c, y, x]·w[c, o, ky, kx]
//   out (B, O, H·K, W·K), inp (B, Cin, H, W), w (Cin, O, K, K)
//   Every output pixel receives exactly one input pixel, so the op is one sgemm
//   cols (O·K·K, H·W) = wᵀ·inp[b] per image followed by a scatter (col2im
//   without the overlap-add).
//
// Backward (docs/derivations/patch_embed.md, deconvolution.md): the same gemms
// transposed, with the gather and the scatter swapping roles. Input gradients are
// overwritten, weight and bias gradients accumulate (+=) over the batch and over calls.
//   patch embed:  dW (O, Cin·P·P) += doutᵀ·cols,  dcols = dout·W,  dimage = col2im(dcols)
//                 (pixels beyond the last full patch get 0),  dbias += Σ_{b,t} dout
//   deconv:       dcols (O·K·K, H·W) = im2col(dout[b]),  dinp[b] = W·dcols,
//                 dW (Cin, O·K·K) += inp[b]·dcolsᵀ,  dbias[o] += Σ dout[b, o, :, :]
// Nothing is saved by the forward: cols (patch embed) is gathered again from the image.
//
// The patch embedding's forward and weight gradient are packed products on the register-tiled
// microkernel (microkernel.hpp), built twice (cpu_dispatch.hpp: AVX-512 8×32 tiles, baseline AVX2
// 6×16): the operands are packed once per call straight from the image, the weight and dout (no
// im2col matrix), each output element one fused multiply-add chain in depth order from the bias (or
// from the accumulated gradient), so both builds give bit-identical results and the result does not
// depend on the thread count. Weight packing is a transpose (16×16 blocks in registers on AVX-512).
// Threads split the output rows (tokens; output channels for dW), one barrier after the shared pack.
// Measured (Zen 5, 2 threads, busy shared machine, best of 300 calls, inputs from memory), forward
// 224²/14→256×384, 336²/14→576×768, 448²/14→1024×768, 512²/16→1024×768: OpenBLAS (Haswell kernels,
// the machine's OPENBLAS_CORETYPE) after an im2col 0.60/2.51/4.53/5.84 ms; packed AVX-512 0.33/1.30/
// 2.34/3.05 ms (~370 GFLOP/s at 336²); PyTorch 1.13 (oneDNN) 0.44/1.79/4.20/5.44 ms. Weight gradient
// + bias gradient: 0.62/2.77/5.32/6.56 → 0.35/1.40/2.60/3.65 ms. Packing is ~10% of a call: the weight
// transpose went 400 → 130 µs (single thread, 336²) with 16×16 register transposes, the patch gather
// 190 → 150 µs walked in image order. The AVX2 build is on par with OpenBLAS' Haswell kernels.
// The rest (image gradient, de-convolution) goes through lrm::sgemm (gemm.hpp), outside any OpenMP
// region, with OpenMP gathers/scatters; the bias gradient is bias_backward (gemm.hpp: RowPartials sums).
#include "common.hpp"
#include "cpu_dispatch.hpp"
#include "errors.hpp"
#include "gemm.hpp"
#include "lrm_native.h"
#include "microkernel.hpp"
#include "reduce.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>

// ---- patch embedding products (compiled once per kernel build, cpu_dispatch.hpp) ----
namespace lrm {
namespace LRM_KERNEL_NS {
namespace {

// Blocking of both products: C's row tiles are swept in groups of kGroupTiles, the depth
// (sum) in blocks of kDepthBlock; one packed B micro-panel (kDepthBlock × kTileCols floats:
// 32 KB in the AVX-512 build) stays in L1 while a group's A tiles (128 KB) come from L2.
// Partial sums of C between depth blocks go through C itself, exactly (each element is one
// chain of fused multiply-adds in depth order whatever the blocking).
constexpr int64_t kDepthBlock = 256;
constexpr int64_t kGroupTiles = 16;

// Below this many FLOPs one thread does the product: a fork/join costs more.
constexpr double kParallelFlops = 4e6;

#if defined(__AVX512F__) && defined(__GNUC__)
// dst[i·ldd + j] = src[j·lds + i] for a 16 × 16 block, in registers: pairs of rows interleaved by
// 1, 2, then 4 and 8 elements (the unpack / 128-bit-lane shuffle rounds of an AVX-512 transpose,
// written as GCC vector shuffles; GCC 12's intrinsics for them trip -Wuninitialized).
typedef int veci __attribute__((vector_size(64)));
inline void transpose16(const float* src, int64_t lds, float* dst, int64_t ldd) {
    static_assert(kVecWidth == 16, "transpose16 needs 16-float vectors");
    vecf r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = *reinterpret_cast<const vecf*>(src + i * lds);
    for (int i = 0; i < 8; ++i) {  // 32-bit interleave within 128-bit lanes
        t[2 * i] = __builtin_shuffle(r[2 * i], r[2 * i + 1], veci{0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29});
        t[2 * i + 1] =
            __builtin_shuffle(r[2 * i], r[2 * i + 1], veci{2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31});
    }
    for (int i = 0; i < 4; ++i) {  // 64-bit interleave within 128-bit lanes
        const veci lo{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29};
        const veci hi{2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31};
        r[4 * i] = __builtin_shuffle(t[4 * i], t[4 * i + 2], lo);
        r[4 * i + 1] = __builtin_shuffle(t[4 * i], t[4 * i + 2], hi);
        r[4 * i + 2] = __builtin_shuffle(t[4 * i + 1], t[4 * i + 3], lo);
        r[4 * i + 3] = __builtin_shuffle(t[4 * i + 1], t[4 * i + 3], hi);
    }
    const veci even{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};   // 128-bit lanes 0, 2 of each
    const veci odd{4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};  // lanes 1, 3 of each
    for (int i = 0; i < 2; ++i)
        for (int k = 0; k < 4; ++k) {
            t[8 * i + k] = __builtin_shuffle(r[8 * i + k], r[8 * i + 4 + k], even);
            t[8 * i + 4 + k] = __builtin_shuffle(r[8 * i + k], r[8 * i + 4 + k], odd);
        }
    for (int k = 0; k < 8; ++k) {
        r[k] = __builtin_shuffle(t[k], t[8 + k], even);
        r[8 + k] = __builtin_shuffle(t[k], t[8 + k], odd);
    }
    for (int i = 0; i < 16; ++i) *reinterpret_cast<vecf*>(dst + i * ldd) = r[i];
}
#endif

// A tile of C whose rows or columns run past C's edge: computed whole in a tile on the
// stack, then its rows × cols corner copied out. start and ld_start as gemm_tile_from's.
template <bool A_T>
void edge_tile(int64_t rows, int64_t cols, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
               float* c, int64_t ldc, const float* start, int64_t ld_start) {
    alignas(64) float tile[kTileRows * kTileCols];
    alignas(64) float from[kTileRows * kTileCols];
    if (start != nullptr)
        for (int64_t r = 0; r < kTileRows; ++r)
            for (int64_t j = 0; j < kTileCols; ++j)
                from[r * kTileCols + j] = r < rows && j < cols ? start[r * ld_start + j] : 0.0f;
    gemm_tile_from<kTileRows, kTileCols, A_T>(k, a, lda, b, ldb, tile, kTileCols, start != nullptr ? from : nullptr,
                                              kTileCols);
    for (int64_t r = 0; r < rows; ++r) std::memcpy(c + r * ldc, tile + r * kTileCols, sizeof(float) * cols);
}

// C (rows × cols, ldc) = start + A·B over `depth`, for the row tiles first_tile .. last_tile − 1 of C.
// A is stored transposed by tiles: element (row i0 + r, depth p) of tile ti = i0 / kTileRows at
// a[ti·a_tile + p·lda + r] (packed: a_tile = kTileRows·depth, lda = kTileRows; or a matrix (depth, ≥ rows)
// read in place: a_tile = kTileRows, lda = its row length). B is packed in column panels
// [panel][depth][kTileCols]. At depth 0 each sum starts from `start` (ld_start 0: one row under every
// row, the bias; nullptr: zero; c itself with ld_start = ldc: accumulate); later depth blocks continue
// from C.
void packed_product(float* c, int64_t ldc, const float* a, int64_t a_tile, int64_t lda, const float* b_packed,
                    const float* start, int64_t ld_start, int64_t rows, int64_t cols, int64_t depth, int64_t first_tile,
                    int64_t last_tile) {
    const int64_t panels = ceil_div(cols, kTileCols);
    for (int64_t g0 = first_tile; g0 < last_tile; g0 += kGroupTiles) {
        const int64_t g1 = std::min(last_tile, g0 + kGroupTiles);
        for (int64_t k0 = 0; k0 < depth; k0 += kDepthBlock) {
            const int64_t kc = std::min(kDepthBlock, depth - k0);
            for (int64_t pj = 0; pj < panels; ++pj) {
                const int64_t j0 = pj * kTileCols, nc = std::min<int64_t>(kTileCols, cols - j0);
                const float* b = b_packed + pj * kTileCols * depth + k0 * kTileCols;
                for (int64_t ti = g0; ti < g1; ++ti) {
                    const int64_t i0 = ti * kTileRows, nr = std::min<int64_t>(kTileRows, rows - i0);
                    const float* at = a + ti * a_tile + k0 * lda;
                    float* ct = c + i0 * ldc + j0;
                    const float* from = k0 > 0 ? ct : start == nullptr ? nullptr : start + i0 * ld_start + j0;
                    const int64_t ld_from = k0 > 0 ? ldc : ld_start;
                    if (nr == kTileRows && nc == kTileCols)
                        gemm_tile_from<kTileRows, kTileCols, true>(kc, at, lda, b, kTileCols, ct, ldc, from, ld_from);
                    else
                        edge_tile<true>(nr, nc, kc, at, lda, b, kTileCols, ct, ldc, from, ld_from);
                }
            }
        }
    }
}

// Columns o0 .. o0 + kTileCols − 1 of Wᵀ (W: rows × depth, row-major) as one packed panel [depth][kTileCols],
// zero past the last row. 16 × 16 blocks are transposed in registers in the AVX-512 build (the
// element-wise copy with kTileCols-strided stores was ~3× slower, weights coming from memory).
void pack_transposed_panel(float* dst, const float* w, int64_t o0, int64_t rows, int64_t depth) {
    int64_t p0 = 0;
#if defined(__AVX512F__) && defined(__GNUC__)
    if (o0 + kTileCols <= rows) {
        for (; p0 + 16 <= depth; p0 += 16)
            for (int64_t j0 = 0; j0 < kTileCols; j0 += 16)
                transpose16(w + (o0 + j0) * depth + p0, depth, dst + p0 * kTileCols + j0, kTileCols);
    }
#endif
    // Blocks of 16 depths keep the strided stores in a few cache lines.
    for (; p0 < depth; p0 += 16) {
        const int64_t p1 = std::min<int64_t>(depth, p0 + 16);
        for (int64_t j = 0; j < kTileCols; ++j) {
            if (o0 + j >= rows) {
                for (int64_t p = p0; p < p1; ++p) dst[p * kTileCols + j] = 0.0f;
                continue;
            }
            const float* src = w + (o0 + j) * depth;
            for (int64_t p = p0; p < p1; ++p) dst[p * kTileCols + j] = src[p];
        }
    }
}

// The patches of row tiles first_tile .. last_tile − 1 (kTileRows tokens each) packed as
// [tile][depth][kTileRows], depth index (c·P + py)·P + px; tokens past the last are zero. Walked in
// image order (grid row, channel, pixel row, then the tokens along it) so that the image is read
// one contiguous row at a time (~20% faster than token by token, the image coming from memory).
void gather_patch_tiles(float* packed, const float* img, int64_t channels, int64_t height, int64_t width,
                        int64_t patch, int64_t tokens, int64_t first_tile, int64_t last_tile) {
    const int64_t grid_w = width / patch, depth = channels * patch * patch;
    const int64_t t0 = first_tile * kTileRows, t1 = std::min(tokens, last_tile * kTileRows);
    for (int64_t gy = t0 / grid_w; gy * grid_w < t1; ++gy) {
        const int64_t gx0 = std::max<int64_t>(0, t0 - gy * grid_w), gx1 = std::min(grid_w, t1 - gy * grid_w);
        for (int64_t c = 0; c < channels; ++c)
            for (int64_t py = 0; py < patch; ++py) {
                const float* row = img + (c * height + gy * patch + py) * width;
                for (int64_t gx = gx0; gx < gx1; ++gx) {
                    const int64_t t = gy * grid_w + gx;
                    float* dst = packed + (t / kTileRows * depth + (c * patch + py) * patch) * kTileRows + t % kTileRows;
                    const float* src = row + gx * patch;
                    for (int64_t px = 0; px < patch; ++px) dst[px * kTileRows] = src[px];
                }
            }
    }
    for (int64_t t = std::max(t0, tokens); t < last_tile * kTileRows; ++t) {
        float* dst = packed + t / kTileRows * depth * kTileRows + t % kTileRows;
        for (int64_t p = 0; p < depth; ++p) dst[p * kTileRows] = 0.0f;
    }
}

}  // namespace

// out[b] (T, O) = bias + cols[b] · Wᵀ (conv.cpp's header). Wᵀ is packed once per call into
// column panels; each thread gathers the patches of its own row tiles straight into the
// packed A layout (no im2col matrix) and computes those rows of out.
void patch_embed_forward(float* out, const float* image, const float* weight, const float* bias, int64_t batch,
                         int64_t channels, int64_t height, int64_t width, int64_t out_channels, int64_t patch) {
    const int64_t grid_w = width / patch, tokens = (height / patch) * grid_w;
    const int64_t depth = channels * patch * patch;
    const int64_t row_tiles = ceil_div(tokens, kTileRows), panels = ceil_div(out_channels, kTileCols);
    Scratch packed_w(panels * kTileCols * depth);
    Scratch packed_x(row_tiles * kTileRows * depth);
    const double flops = 2.0 * static_cast<double>(tokens) * static_cast<double>(out_channels) * depth;
    const int team = flops < kParallelFlops ? 1 : static_cast<int>(std::min<int64_t>(num_threads(), row_tiles));
#pragma omp parallel num_threads(team)
    {
        const int id = omp_get_thread_num(), size = omp_get_num_threads();
        const int64_t first = row_tiles * id / size, last = row_tiles * (id + 1) / size;
        gather_patch_tiles(packed_x.data(), image, channels, height, width, patch, tokens, first, last);
#pragma omp for schedule(static)
        for (int64_t pj = 0; pj < panels; ++pj)
            pack_transposed_panel(packed_w.data() + pj * kTileCols * depth, weight, pj * kTileCols, out_channels, depth);
        // (implicit barrier: every panel is packed before any product)
        for (int64_t b = 0; b < batch; ++b) {
            if (b > 0)
                gather_patch_tiles(packed_x.data(), image + b * channels * height * width, channels, height, width,
                                   patch, tokens, first, last);
            packed_product(out + b * tokens * out_channels, out_channels, packed_x.data(), kTileRows * depth, kTileRows,
                           packed_w.data(), bias, 0, tokens, out_channels, depth, first, last);
        }
    }
}

// dweight (O, D) += Σ_b dout[b]ᵀ · cols[b]. The rows of C are output channels and the sums run over
// tokens: A = dout[b]ᵀ is read in place (kTileRows channels of each token row; a last partial tile of
// channels from a zero-padded copy), B = cols[b] is gathered from the image straight into column
// panels of the depth, in image order. Threads split the output channels.
void patch_embed_weight_grad(float* dweight, const float* dout, const float* image, int64_t batch, int64_t channels,
                             int64_t height, int64_t width, int64_t out_channels, int64_t patch) {
    const int64_t grid_h = height / patch, grid_w = width / patch, tokens = grid_h * grid_w;
    const int64_t depth = channels * patch * patch;
    const int64_t full_tiles = out_channels / kTileRows, row_tiles = ceil_div(out_channels, kTileRows);
    const int64_t panels = ceil_div(depth, kTileCols);
    Scratch packed_cols(panels * kTileCols * tokens);
    Scratch last_tile(full_tiles < row_tiles ? kTileRows * tokens : 0);
    const double flops = 2.0 * static_cast<double>(tokens) * static_cast<double>(out_channels) * depth;
    const int team = flops < kParallelFlops ? 1 : static_cast<int>(std::min<int64_t>(num_threads(), row_tiles));
#pragma omp parallel num_threads(team)
    {
        const int id = omp_get_thread_num(), size = omp_get_num_threads();
        const int64_t first = row_tiles * id / size, last = row_tiles * (id + 1) / size;
        for (int64_t b = 0; b < batch; ++b) {
            const float* img = image + b * channels * height * width;
            const float* g = dout + b * tokens * out_channels;
            // cols[t, p] to panel p / NR, row t, column p % NR; p = (c·P + py)·P + px.
#pragma omp for schedule(static)
            for (int64_t gy = 0; gy < grid_h; ++gy) {
                for (int64_t c = 0; c < channels; ++c)
                    for (int64_t py = 0; py < patch; ++py) {
                        const float* row = img + (c * height + gy * patch + py) * width;
                        const int64_t p0 = (c * patch + py) * patch;
                        for (int64_t gx = 0; gx < grid_w; ++gx) {
                            float* dst = packed_cols.data() + (gy * grid_w + gx) * kTileCols;
                            const float* src = row + gx * patch;
                            for (int64_t px = 0; px < patch; ++px) {
                                const int64_t p = p0 + px;
                                dst[p / kTileCols * kTileCols * tokens + p % kTileCols] = src[px];
                            }
                        }
                    }
                for (int64_t p = depth; p < panels * kTileCols; ++p)
                    for (int64_t t = gy * grid_w; t < (gy + 1) * grid_w; ++t)
                        packed_cols.data()[(panels - 1) * kTileCols * tokens + t * kTileCols + p % kTileCols] = 0.0f;
            }  // implicit barrier: the panels are complete
            const int64_t full_last = std::min(last, full_tiles);
            if (first < full_last)
                packed_product(dweight, depth, g, kTileRows, out_channels, packed_cols.data(), dweight, depth,
                               out_channels, depth, tokens, first, full_last);
            if (last > full_tiles) {
                // The last channels, fewer than kTileRows: [token][kTileRows] zero-padded.
                const int64_t o0 = full_tiles * kTileRows, nr = out_channels - o0;
                float* tile = last_tile.data();
                for (int64_t t = 0; t < tokens; ++t)
                    for (int64_t r = 0; r < kTileRows; ++r)
                        tile[t * kTileRows + r] = r < nr ? g[t * out_channels + o0 + r] : 0.0f;
                packed_product(dweight + o0 * depth, depth, tile, kTileRows * tokens, kTileRows, packed_cols.data(),
                               dweight + o0 * depth, depth, nr, depth, tokens, 0, 1);
            }
            if (b + 1 < batch) {
#pragma omp barrier
            }  // the panels are gathered again for the next image only once every thread is done with them
        }
    }
}

}  // namespace LRM_KERNEL_NS
}  // namespace lrm

#if !defined(LRM_KERNELS_AVX512)
namespace lrm {
namespace {

// Gathers and scatters below this many floats run on one thread: a fork/join costs more.
constexpr int64_t kParallelElements = 32768;

void deconv_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t batch,
                    int64_t in_channels, int64_t height, int64_t width, int64_t out_channels, int64_t kernel,
                    int gemm_m, int gemm_n, int gemm_k) {
    const int64_t pixels = height * width;
    const int64_t out_width = width * kernel;
    Scratch cols(static_cast<int64_t>(gemm_m) * gemm_n);  // (O·K·K, H·W)
    const int threads = num_threads();
    for (int64_t b = 0; b < batch; ++b) {
        sgemm(true, false, gemm_m, gemm_n, gemm_k, weight, gemm_m, inp + b * in_channels * pixels, gemm_n, 0.0f,
              cols.data(), gemm_n);
        float* dst_b = out + b * out_channels * pixels * kernel * kernel;
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2) if (static_cast<int64_t>(gemm_m) * gemm_n > kParallelElements)
        for (int64_t o = 0; o < out_channels; ++o)
            for (int64_t y = 0; y < height; ++y) {
                const float add = bias != nullptr ? bias[o] : 0.0f;
                for (int64_t ky = 0; ky < kernel; ++ky) {
                    float* dst = dst_b + (o * height * kernel + y * kernel + ky) * out_width;
                    for (int64_t kx = 0; kx < kernel; ++kx) {
                        const float* src = cols.data() + ((o * kernel + ky) * kernel + kx) * pixels + y * width;
                        for (int64_t x = 0; x < width; ++x) dst[x * kernel + kx] = src[x] + add;
                    }
                }
            }
    }
}

void patch_embed_backward(float* dimage, float* dweight, float* dbias, const float* dout, const float* image,
                          const float* weight, int64_t batch, int64_t channels, int64_t height, int64_t width,
                          int64_t out_channels, int64_t patch, int gemm_m, int gemm_n, int gemm_k) {
    const int64_t grid_h = height / patch, grid_w = width / patch;
    const int64_t tokens = static_cast<int64_t>(gemm_m);
    const int64_t depth = static_cast<int64_t>(gemm_k);  // Cin·P·P
    const int threads = num_threads();
    if (dweight != nullptr)
        kernels().patch_embed_weight_grad(dweight, dout, image, batch, channels, height, width, out_channels, patch);
    if (dimage != nullptr) {
        Scratch cols(tokens * depth);
        for (int64_t b = 0; b < batch; ++b) {
            const float* g = dout + b * tokens * out_channels;
            // dcols (T, D) = g (T, O) · W (O, D), then scattered back (patches do not overlap).
            sgemm(false, false, gemm_m, gemm_k, gemm_n, g, gemm_n, weight, gemm_k, 0.0f, cols.data(), gemm_k);
            float* dimg = dimage + b * channels * height * width;
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2) if (channels * height * width > kParallelElements)
            for (int64_t c = 0; c < channels; ++c)
                for (int64_t y = 0; y < height; ++y) {
                    float* dst = dimg + (c * height + y) * width;
                    const int64_t gy = y / patch, py = y % patch;
                    if (gy >= grid_h) {
                        std::memset(dst, 0, sizeof(float) * width);
                        continue;
                    }
                    for (int64_t gx = 0; gx < grid_w; ++gx)
                        std::memcpy(dst + gx * patch, cols.data() + (gy * grid_w + gx) * depth + (c * patch + py) * patch,
                                    sizeof(float) * patch);
                    for (int64_t x = grid_w * patch; x < width; ++x) dst[x] = 0.0f;
                }
        }
    }
    if (dbias != nullptr) bias_backward(dbias, dout, batch * tokens, out_channels);  // sums over every (image, token)
}

void deconv_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t batch, int64_t in_channels, int64_t height, int64_t width,
                     int64_t out_channels, int64_t kernel, int gemm_m, int gemm_n, int gemm_k) {
    const int64_t pixels = height * width;
    const int64_t out_width = width * kernel;
    const int64_t out_plane = pixels * kernel * kernel;
    Scratch cols(static_cast<int64_t>(gemm_m) * gemm_n);  // dcols (O·K·K, H·W)
    const int threads = num_threads();
    for (int64_t b = 0; b < batch; ++b) {
        const float* g = dout + b * out_channels * out_plane;
        if (dinp != nullptr || dweight != nullptr) {
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2) if (out_channels * out_plane > kParallelElements)
            for (int64_t o = 0; o < out_channels; ++o)
                for (int64_t y = 0; y < height; ++y)
                    for (int64_t ky = 0; ky < kernel; ++ky) {
                        const float* src = g + (o * height * kernel + y * kernel + ky) * out_width;
                        for (int64_t kx = 0; kx < kernel; ++kx) {
                            float* dst = cols.data() + ((o * kernel + ky) * kernel + kx) * pixels + y * width;
                            for (int64_t x = 0; x < width; ++x) dst[x] = src[x * kernel + kx];
                        }
                    }
        }
        // dinp[b] (Cin, HW) = W (Cin, OKK) · dcols (OKK, HW)
        if (dinp != nullptr)
            sgemm(false, false, gemm_k, gemm_n, gemm_m, weight, gemm_m, cols.data(), gemm_n, 0.0f,
                  dinp + b * in_channels * pixels, gemm_n);
        // dW (Cin, OKK) += inp[b] (Cin, HW) · dcolsᵀ (HW, OKK)
        if (dweight != nullptr)
            sgemm(false, true, gemm_k, gemm_m, gemm_n, inp + b * in_channels * pixels, gemm_n, cols.data(), gemm_n,
                  1.0f, dweight, gemm_m);
    }
    if (dbias != nullptr) {
#pragma omp parallel for num_threads(threads) schedule(static) if (out_channels * batch * out_plane > 65536)
        for (int64_t o = 0; o < out_channels; ++o) {
            double sum = 0.0;
            for (int64_t b = 0; b < batch; ++b) {
                const float* src = dout + (b * out_channels + o) * out_plane;
                for (int64_t i = 0; i < out_plane; ++i) sum += src[i];
            }
            dbias[o] += static_cast<float>(sum);
        }
    }
}

// GEMM sizes (m, n, k) in BLAS ints, as the forward and backward of one op use them.
struct GemmShape {
    int m, n, k;
};

// The checks lrm_patch_embed_forward and lrm_patch_embed_backward share; `output` names out or
// dout, (batch x tokens x out_channels) either way. Returns (tokens, out_channels, in_channels·patch²).
GemmShape check_patch_embed_sizes(const Args& args, int64_t batch, int64_t in_channels, int64_t height, int64_t width,
                                  int64_t out_channels, int64_t patch, const char* output) {
    args.positive(batch, "batch").positive(in_channels, "in_channels").positive(height, "height");
    args.positive(width, "width").positive(out_channels, "out_channels").positive(patch, "patch");
    if (patch > height || patch > width)
        args.fail(LRM_STATUS_SHAPE_MISMATCH, "patch (%lld) must be <= height (%lld) and width (%lld)",
                  static_cast<long long>(patch), static_cast<long long>(height), static_cast<long long>(width));
    args.elements({batch, in_channels, height, width}, "image (batch x in_channels x height x width)");
    const int64_t tokens = args.elements({height / patch, width / patch}, "token grid");
    const int64_t depth = args.elements({in_channels, patch, patch}, "weight (in_channels x patch x patch)");
    args.elements({out_channels, depth}, "weight");
    args.elements({batch, tokens, out_channels}, output);
    args.elements({tokens, depth}, "im2col buffer");
    return {args.blas_int(tokens, "tokens"), args.blas_int(out_channels, "out_channels"),
            args.blas_int(depth, "in_channels*patch*patch")};
}

// The checks lrm_deconv_forward and lrm_deconv_backward share; `output` names out or dout,
// (batch x out_channels x height*kernel x width*kernel) either way. Returns
// (out_channels·kernel², height·width, in_channels).
GemmShape check_deconv_sizes(const Args& args, int64_t batch, int64_t in_channels, int64_t height, int64_t width,
                             int64_t out_channels, int64_t kernel, const char* output) {
    args.positive(batch, "batch").positive(in_channels, "in_channels").positive(height, "height");
    args.positive(width, "width").positive(out_channels, "out_channels").positive(kernel, "kernel");
    args.elements({batch, in_channels, height, width}, "inp (batch x in_channels x height x width)");
    const int64_t taps = args.elements({out_channels, kernel, kernel}, "out_channels x kernel x kernel");
    args.elements({in_channels, taps}, "weight (in_channels x out_channels x kernel x kernel)");
    const int64_t pixels = args.elements({height, width}, "height x width");
    args.elements({batch, taps, pixels}, output);
    args.elements({taps, pixels}, "column buffer");
    return {args.blas_int(taps, "out_channels*kernel*kernel"), args.blas_int(pixels, "height*width"),
            args.blas_int(in_channels, "in_channels")};
}

}  // namespace
}  // namespace lrm

extern "C" {

LRM_API lrm_status lrm_patch_embed_forward(float* out, const float* image, const float* weight, const float* bias,
                                           int64_t batch, int64_t in_channels, int64_t height, int64_t width,
                                           int64_t out_channels, int64_t patch) {
    return lrm::guarded("lrm_patch_embed_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(image, "image").not_null(weight, "weight");
        const lrm::GemmShape gemm =
            lrm::check_patch_embed_sizes(args, batch, in_channels, height, width, out_channels, patch, "out");
        (void)gemm;  // the sizes are checked; the product indexes with 64-bit sizes
        lrm::kernels().patch_embed_forward(out, image, weight, bias, batch, in_channels, height, width, out_channels,
                                           patch);
    });
}

LRM_API lrm_status lrm_deconv_forward(float* out, const float* inp, const float* weight, const float* bias,
                                      int64_t batch, int64_t in_channels, int64_t height, int64_t width,
                                      int64_t out_channels, int64_t kernel) {
    return lrm::guarded("lrm_deconv_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(inp, "inp").not_null(weight, "weight");
        const lrm::GemmShape gemm = lrm::check_deconv_sizes(
            args, batch, in_channels, height, width, out_channels, kernel,
            "out (batch x out_channels x height*kernel x width*kernel)");
        lrm::deconv_forward(out, inp, weight, bias, batch, in_channels, height, width, out_channels, kernel, gemm.m,
                            gemm.n, gemm.k);
    });
}

LRM_API lrm_status lrm_patch_embed_backward(float* dimage, float* dweight, float* dbias, const float* dout,
                                            const float* image, const float* weight, int64_t batch,
                                            int64_t in_channels, int64_t height, int64_t width,
                                            int64_t out_channels, int64_t patch) {
    return lrm::guarded("lrm_patch_embed_backward", [&](const lrm::Args& args) {
        args.not_null(dout, "dout");
        if (dimage == nullptr && dweight == nullptr && dbias == nullptr)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "at least one of 'dimage', 'dweight' and 'dbias' must be given");
        if (dweight != nullptr) args.not_null(image, "image (required with dweight)");
        if (dimage != nullptr) args.not_null(weight, "weight (required with dimage)");
        const lrm::GemmShape gemm =
            lrm::check_patch_embed_sizes(args, batch, in_channels, height, width, out_channels, patch, "dout");
        lrm::patch_embed_backward(dimage, dweight, dbias, dout, image, weight, batch, in_channels, height, width,
                                  out_channels, patch, gemm.m, gemm.n, gemm.k);
    });
}

LRM_API lrm_status lrm_deconv_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                                       const float* weight, int64_t batch, int64_t in_channels, int64_t height,
                                       int64_t width, int64_t out_channels, int64_t kernel) {
    return lrm::guarded("lrm_deconv_backward", [&](const lrm::Args& args) {
        args.not_null(dout, "dout");
        if (dinp == nullptr && dweight == nullptr && dbias == nullptr)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "at least one of 'dinp', 'dweight' and 'dbias' must be given");
        if (dweight != nullptr) args.not_null(inp, "inp (required with dweight)");
        if (dinp != nullptr) args.not_null(weight, "weight (required with dinp)");
        const lrm::GemmShape gemm = lrm::check_deconv_sizes(
            args, batch, in_channels, height, width, out_channels, kernel,
            "dout (batch x out_channels x height*kernel x width*kernel)");
        lrm::deconv_backward(dinp, dweight, dbias, dout, inp, weight, batch, in_channels, height, width, out_channels,
                             kernel, gemm.m, gemm.n, gemm.k);
    });
}

}  // extern "C"
#endif  // !LRM_KERNELS_AVX512
