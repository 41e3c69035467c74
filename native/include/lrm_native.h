/*
 * lrm_native.h — the flat C ABI of LrmNative's CPU engine (liblrm_native.so).
 *
 * Conventions (see shared STYLE.md):
 *  - Every function is prefixed `lrm_`, returns an lrm_status, and never lets a
 *    C++ exception cross the boundary. On failure, lrm_last_error() returns a
 *    readable, thread-local message naming the op and the offending argument.
 *  - Argument order: outputs, saved-for-backward, inputs, parameters, sizes.
 *    Shapes are written next to every pointer, row-major, last index fastest.
 *  - All tensors are fp32 unless stated. Optional pointers may be NULL and say so.
 *  - Activation outputs are overwritten. Inputs are never modified unless an
 *    argument is documented as allowed to alias the output.
 *  - Sizes are int64_t; zero or negative sizes are rejected with
 *    LRM_STATUS_INVALID_ARGUMENT (an empty op is a caller bug in this engine).
 *    Sizes that are each valid but cannot go together (a row stride shorter than
 *    the row, a patch larger than the image) give LRM_STATUS_SHAPE_MISMATCH; sizes
 *    whose products overflow are INVALID_ARGUMENT; sizes beyond what a backend can
 *    index (the 32-bit BLAS interface, 2^30-pixel planes) are LRM_STATUS_UNSUPPORTED.
 *    All arguments are validated before any memory is touched.
 *  - Enums are append-only: new values go at the end, old values never change.
 *  - Kernels are OpenMP-parallel and deterministic for a given thread count.
 */
#ifndef LRM_NATIVE_H
#define LRM_NATIVE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define LRM_API __declspec(dllexport)
#else
#define LRM_API __attribute__((visibility("default")))
#endif

typedef enum lrm_status {
    LRM_STATUS_OK = 0,
    LRM_STATUS_INVALID_ARGUMENT = 1, /* null pointer, non-positive size, bad enum value */
    LRM_STATUS_SHAPE_MISMATCH = 2,   /* sizes that cannot go together (e.g. image smaller than a patch) */
    LRM_STATUS_OUT_OF_MEMORY = 3,
    LRM_STATUS_IO_ERROR = 4,         /* file missing, unreadable or corrupt */
    LRM_STATUS_UNSUPPORTED = 5,      /* valid request this build cannot serve */
    LRM_STATUS_INTERNAL = 6          /* a bug: please report */
} lrm_status;

typedef enum lrm_resize_mode {
    LRM_RESIZE_BILINEAR = 0,
    LRM_RESIZE_BICUBIC = 1
} lrm_resize_mode;

typedef enum lrm_activation {
    LRM_ACTIVATION_NONE = 0,
    LRM_ACTIVATION_RELU = 1,
    LRM_ACTIVATION_GELU = 2, /* exact: 0.5·x·(1 + erf(x/√2)) */
    LRM_ACTIVATION_SILU = 3
} lrm_activation;

/* ---- library information and errors ------------------------------------ */

/* Message of the last failed call on this thread ("" if none), ASCII, starting
 * with the function name: "lrm_gemm_forward: argument 'a' is NULL". Successful
 * calls leave it unchanged (read it right after a non-OK status). Valid until the
 * next failing lrm_ call or lrm_clear_error on the same thread. */
LRM_API const char* lrm_last_error(void);
LRM_API void lrm_clear_error(void);
/* Semantic version "MAJOR.MINOR.PATCH". */
LRM_API const char* lrm_version(void);
/* Compiler, build type, flags, OpenMP version. */
LRM_API const char* lrm_build_info(void);
/* The instruction-set extensions the library was compiled for that this CPU (or its OS) lacks, comma-separated
 * in buffer (capacity bytes, NUL-terminated, names left out when it is too small); returns how many (0: the library
 * runs here). Compiled for plain x86-64, so it is safe to call first on any x86-64 CPU; anything else may die with
 * SIGILL where this is not 0. LRM_CPU_PRETEND_MISSING=avx2,fma (tests) pretends the named ones are absent. */
LRM_API int32_t lrm_cpu_missing_features(char* buffer, int32_t capacity);
/* The -march the library was built with ("" for the compiler's default). */
LRM_API const char* lrm_cpu_build_target(void);
/* BLAS vendor and configuration string (e.g. OpenBLAS' own config line). */
LRM_API const char* lrm_blas_info(void);
/* Threads the library's parallel regions use (for calls from any host thread). */
LRM_API int32_t lrm_get_num_threads(void);
/* Set the library's thread count, process-wide; n <= 0 restores the default
 * captured when the library was loaded (OMP_NUM_THREADS or the core count).
 * n > 1024 is INVALID_ARGUMENT. BLAS work is split over these same threads
 * (OpenBLAS itself is set to one thread when the library loads). Results that
 * depend on the thread count (parameter-gradient sums) depend on n only: when
 * OpenMP starts fewer threads (OMP_THREAD_LIMIT, OMP_DYNAMIC, a call from inside
 * a parallel region), the work is still split n ways, with the same bits. */
LRM_API lrm_status lrm_set_num_threads(int32_t n);
/* Lower the default thread count (what lrm_set_num_threads(0) restores, and the count in use unless one was set) to
 * n when n is smaller and at least 1; otherwise nothing. For the loader, which knows a CPU quota (cgroups) that OpenMP
 * does not: on a 64-core host, a container limited to 2 CPUs would otherwise run 64 spinning threads. */
LRM_API void lrm_limit_default_threads(int32_t n);

/* ---- GEMM --------------------------------------------------------------- */

/* out = op(a) · op(b) + bias + residual, through OpenBLAS sgemm.
 *   out      (m, n)
 *   a        (m, k), or (k, m) stored when transpose_a != 0
 *   b        (k, n), or (n, k) stored when transpose_b != 0  (nn.Linear weight: transpose_b = 1)
 *   bias     (n)     optional, broadcast over rows
 *   residual (m, n)  optional; may be exactly out (in-place residual add), must not
 *                    otherwise overlap it
 * m, n, k must fit the 32-bit BLAS interface (else LRM_STATUS_UNSUPPORTED).
 */
LRM_API lrm_status lrm_gemm_forward(float* out, const float* a, const float* b, const float* bias,
                                    const float* residual, int64_t m, int64_t n, int64_t k,
                                    int32_t transpose_a, int32_t transpose_b);

/* Backward of lrm_gemm_forward (docs/derivations/gemm.md). With A = op(a), B = op(b):
 *   da    (m, k), or (k, m) when transpose_a   = dout·Bᵀ in a's layout     optional, overwritten
 *   db    (k, n), or (n, k) when transpose_b   = Aᵀ·dout in b's layout     optional, overwritten
 *   dbias (n)                                  += Σ_rows dout              optional, accumulated
 *   dout  (m, n)
 *   a, b  as in the forward (a is needed for db, b for da; the other may be NULL)
 * The residual's gradient is dout itself. At least one gradient must be requested. */
LRM_API lrm_status lrm_gemm_backward(float* da, float* db, float* dbias, const float* dout, const float* a,
                                     const float* b, int64_t m, int64_t n, int64_t k, int32_t transpose_a,
                                     int32_t transpose_b);

/* ---- normalisation ------------------------------------------------------ */

/* LayerNorm over the last dimension, biased variance, statistics in fp32.
 *   out  (rows, channels)
 *   mean (rows) optional, saved for backward
 *   rstd (rows) optional, saved for backward: 1/sqrt(var + eps)
 *   inp  (rows, channels)
 *   weight, bias (channels) optional (absent = 1 and 0)
 * eps must be finite and >= 0.
 */
LRM_API lrm_status lrm_layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                         const float* weight, const float* bias, int64_t rows,
                                         int64_t channels, float eps);

/* ModLN (LRM §3.2): out = LN(inp)·(1 + scale[b]) + shift[b], per-sample modulation.
 *   out  (batch, tokens, channels)
 *   mean, rstd (batch, tokens) optional, saved for backward
 *   inp  (batch, tokens, channels)
 *   weight, bias (channels) optional LN affine
 *   shift, scale (batch, channels)
 */
LRM_API lrm_status lrm_modln_forward(float* out, float* mean, float* rstd, const float* inp,
                                     const float* weight, const float* bias, const float* shift,
                                     const float* scale, int64_t batch, int64_t tokens,
                                     int64_t channels, float eps);

/* Backward of lrm_layernorm_forward (docs/derivations/layernorm.md), from the saved
 * statistics. With x̂ = (inp − mean)·rstd and g = dout·weight:
 *   dinp    (rows, channels) = rstd·(g − mean_c(g) − x̂·mean_c(g·x̂))   optional, overwritten;
 *                              may alias dout
 *   dweight (channels)      += Σ_rows dout·x̂                          optional, accumulated
 *   dbias   (channels)      += Σ_rows dout                             optional, accumulated
 *   dout, inp (rows, channels); mean, rstd (rows) as the forward saved them
 *   weight  (channels) optional (absent = 1)
 * At least one gradient must be requested. */
LRM_API lrm_status lrm_layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                          const float* mean, const float* rstd, const float* inp,
                                          const float* weight, int64_t rows, int64_t channels);

/* Backward of lrm_modln_forward (docs/derivations/modln.md). With y = LN(inp) (affine
 * included) and dy = dout·(1 + scale[b]):
 *   dinp    (batch, tokens, channels)  LayerNorm backward of dy          optional, overwritten;
 *                                      may alias dout
 *   dweight, dbias (channels)          += Σ dy·x̂, += Σ dy               optional, accumulated
 *   dshift  (batch, channels)          = Σ_tokens dout                   optional, overwritten
 *   dscale  (batch, channels)          = Σ_tokens dout·y                 optional, overwritten
 *   dout, inp (batch, tokens, channels); mean, rstd (batch, tokens) as saved
 *   weight, bias (channels) optional LN affine; scale (batch, channels)
 * shift/scale are activations (the modulation MLP's output), so their gradients
 * overwrite. At least one gradient must be requested. */
LRM_API lrm_status lrm_modln_backward(float* dinp, float* dweight, float* dbias, float* dshift, float* dscale,
                                      const float* dout, const float* mean, const float* rstd,
                                      const float* inp, const float* weight, const float* bias,
                                      const float* scale, int64_t batch, int64_t tokens, int64_t channels);

/* ---- attention ---------------------------------------------------------- */

/* Multi-head scaled dot-product attention, no mask, no biases, tiled over keys
 * with an online softmax (the score matrix is never materialised).
 *   out (batch, q_len, heads·head_dim), contiguous
 *   lse (batch, heads, q_len) optional, saved for backward: log Σ_j exp(s_ij)
 *   q   (batch, q_len,  heads·head_dim) with rows q_row_stride elements apart
 *   k   (batch, kv_len, heads·head_dim) with rows kv_row_stride elements apart
 *   v   (batch, kv_len, heads·head_dim) with rows kv_row_stride elements apart
 * Row strides let packed projections be used in place, e.g. qkv (B,T,3C):
 * q = qkv, k = qkv + C, v = qkv + 2C, both strides 3C. Strides must be >= heads·head_dim
 * (else LRM_STATUS_SHAPE_MISMATCH). q, k, v may overlap each other; out must not
 * overlap them.
 * scale: multiplies q·k (usually 1/sqrt(head_dim)); must be finite.
 */
LRM_API lrm_status lrm_attention_forward(float* out, float* lse, const float* q, const float* k,
                                         const float* v, int64_t batch, int64_t heads,
                                         int64_t q_len, int64_t kv_len, int64_t head_dim,
                                         int64_t q_row_stride, int64_t kv_row_stride, float scale);

/* Backward of lrm_attention_forward (docs/derivations/attention.md), FlashAttention-2
 * style: the probabilities are recomputed in tiles from q, k and the saved lse, so no
 * q_len × kv_len matrix is ever stored (scratch is O(q_len·head_dim) per thread).
 *   dq  (batch, q_len,  heads·head_dim) rows dq_row_stride apart    overwritten
 *   dk  (batch, kv_len, heads·head_dim) rows dkv_row_stride apart   overwritten
 *   dv  (batch, kv_len, heads·head_dim) rows dkv_row_stride apart   overwritten
 *   dout, out (batch, q_len, heads·head_dim) contiguous; out is the forward's output
 *   lse (batch, heads, q_len) as the forward saved it
 *   q, k, v, strides and scale as in the forward
 * Gradient strides let a packed dqkv (B,T,3C) be written in place: dq = dqkv,
 * dk = dqkv + C, dv = dqkv + 2C, both strides 3C. Only the head columns of each slice
 * are written. The gradients must not overlap any input. */
LRM_API lrm_status lrm_attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                          const float* out, const float* lse, const float* q,
                                          const float* k, const float* v, int64_t batch, int64_t heads,
                                          int64_t q_len, int64_t kv_len, int64_t head_dim,
                                          int64_t q_row_stride, int64_t kv_row_stride,
                                          int64_t dq_row_stride, int64_t dkv_row_stride, float scale);

/* ---- element-wise and row-wise ----------------------------------------- */

/* out = act(inp), n elements; out may alias inp. */
LRM_API lrm_status lrm_gelu_forward(float* out, const float* inp, int64_t n);
LRM_API lrm_status lrm_silu_forward(float* out, const float* inp, int64_t n);
LRM_API lrm_status lrm_relu_forward(float* out, const float* inp, int64_t n);

/* Softmax over the last dimension (numerically stable). out may alias inp.
 *   out, inp (rows, cols) */
LRM_API lrm_status lrm_softmax_forward(float* out, const float* inp, int64_t rows, int64_t cols);

/* Backward of the activations (docs/derivations/activation.md), n elements:
 *   dinp = dout·act'(inp); relu: inp <= 0 ? 0 : dout (0 at the kink, as PyTorch)
 * dinp is overwritten and may alias dout. */
LRM_API lrm_status lrm_gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n);
LRM_API lrm_status lrm_silu_backward(float* dinp, const float* dout, const float* inp, int64_t n);
LRM_API lrm_status lrm_relu_backward(float* dinp, const float* dout, const float* inp, int64_t n);

/* Backward of lrm_softmax_forward from its output (docs/derivations/softmax.md):
 *   dinp = out·(dout − Σ_j out_j·dout_j) per row
 *   dinp, dout, out (rows, cols); dinp is overwritten and may alias dout. */
LRM_API lrm_status lrm_softmax_backward(float* dinp, const float* dout, const float* out, int64_t rows, int64_t cols);

/* ---- convolutions ------------------------------------------------------- */

/* Patch embedding: Conv2d(in_channels, out_channels, kernel = stride = patch), with bias,
 * written token-major (what the transformer consumes). Trailing rows/columns that do
 * not fill a patch are dropped, as PyTorch does.
 *   out    (batch, (height/patch)·(width/patch), out_channels), tokens row-major over the grid
 *   image  (batch, in_channels, height, width)
 *   weight (out_channels, in_channels, patch, patch)   (PyTorch layout)
 *   bias   (out_channels) optional
 */
LRM_API lrm_status lrm_patch_embed_forward(float* out, const float* image, const float* weight,
                                           const float* bias, int64_t batch, int64_t in_channels,
                                           int64_t height, int64_t width, int64_t out_channels,
                                           int64_t patch);

/* Transposed convolution with kernel = stride (2 in LRM's upsampler), no padding:
 * ConvTranspose2d(in_channels, out_channels, kernel, stride = kernel) + bias.
 *   out    (batch, out_channels, height·kernel, width·kernel)
 *   inp    (batch, in_channels, height, width)
 *   weight (in_channels, out_channels, kernel, kernel)  (PyTorch layout)
 *   bias   (out_channels) optional
 */
LRM_API lrm_status lrm_deconv_forward(float* out, const float* inp, const float* weight,
                                      const float* bias, int64_t batch, int64_t in_channels,
                                      int64_t height, int64_t width, int64_t out_channels,
                                      int64_t kernel);

/* Backward of lrm_patch_embed_forward (docs/derivations/patch_embed.md). Sizes as the forward.
 *   dimage  (batch, in_channels, height, width)  optional, overwritten; pixels beyond the
 *                                                last full patch get 0
 *   dweight (out_channels, in_channels, patch, patch) optional, accumulated (+=)
 *   dbias   (out_channels)                       optional, accumulated (+=)
 *   dout    (batch, (height/patch)·(width/patch), out_channels)
 *   image   the forward's input, required with dweight (may be NULL otherwise)
 *   weight  the forward's weight, required with dimage (may be NULL otherwise)
 * At least one gradient must be given. */
LRM_API lrm_status lrm_patch_embed_backward(float* dimage, float* dweight, float* dbias,
                                            const float* dout, const float* image,
                                            const float* weight, int64_t batch,
                                            int64_t in_channels, int64_t height, int64_t width,
                                            int64_t out_channels, int64_t patch);

/* Backward of lrm_deconv_forward (docs/derivations/deconvolution.md). Sizes as the forward.
 *   dinp    (batch, in_channels, height, width)        optional, overwritten
 *   dweight (in_channels, out_channels, kernel, kernel) optional, accumulated (+=)
 *   dbias   (out_channels)                              optional, accumulated (+=)
 *   dout    (batch, out_channels, height·kernel, width·kernel)
 *   inp     required with dweight; weight required with dinp
 * At least one gradient must be given. */
LRM_API lrm_status lrm_deconv_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                       const float* inp, const float* weight, int64_t batch,
                                       int64_t in_channels, int64_t height, int64_t width,
                                       int64_t out_channels, int64_t kernel);

/* ---- image resize ------------------------------------------------------- */

/* Resize planes, matching torch.nn.functional.interpolate with align_corners=False.
 *   out (planes, out_height, out_width)
 *   inp (planes, in_height, in_width)
 * mode: bilinear or bicubic; cubic_a is the Keys coefficient (PyTorch: −0.75 without
 * antialias, −0.5 with antialias; any finite value allowed). antialias != 0 widens the
 * filter support by the downscale factor (PIL / torch antialias=True). Border handling
 * differs: without antialias, reads clamp to the border; with antialias, taps outside
 * the image are dropped and the remaining weights renormalised. So antialias changes
 * nothing when upscaling bilinearly, but upscaling bicubic differs near the borders
 * (as in PyTorch).
 * Taps are computed in double: results are ~1e-7 from interpolate() on float64
 * inputs; PyTorch's float32 kernel rounds its coordinates and is itself up to ~2e-5
 * (relative L2) from that for large downscales such as 512 → 224.
 * Source coordinates use scale = in/out, i.e. interpolate(size=...). Callers of
 * interpolate(scale_factor=s) (e.g. DINO's position-embedding resize) get
 * scale = 1/s in PyTorch, which differs slightly unless out = in·s exactly. */
LRM_API lrm_status lrm_resize_forward(float* out, const float* inp, int64_t planes,
                                      int64_t in_height, int64_t in_width, int64_t out_height,
                                      int64_t out_width, int32_t mode, float cubic_a,
                                      int32_t antialias);

/* ---- triplane sampling -------------------------------------------------- */

/* Sample three axis-aligned feature planes at 3-D points, equal to
 * grid_sample(mode=bilinear, padding_mode=zeros, align_corners=False) per plane,
 * features concatenated [plane0 | plane1 | plane2].
 * Point p = (x, y, z) in [−1, 1]³ maps to grid coordinates (u, v):
 *   plane 0: (x, y), plane 1: (x, z), plane 2: (z, y)   (OpenLRM's order)
 * u indexes width, v indexes height; pixel = ((u + 1)·W − 1)/2.
 * Points outside [−1, 1]³ read zeros beyond the border; non-finite coordinates
 * sample zeros. height and width must be < 2^30.
 *   out    (batch, points, 3·channels)
 *   planes (batch, 3, height, width, channels)   channels-last
 *   points (batch, points, 3)
 */
LRM_API lrm_status lrm_triplane_sample_forward(float* out, const float* planes,
                                               const float* points, int64_t batch,
                                               int64_t num_points, int64_t channels,
                                               int64_t height, int64_t width);

/* Backward of lrm_triplane_sample_forward (docs/derivations/triplane_sample.md). Sizes as
 * the forward; both gradients are overwritten, at least one must be given.
 *   dplanes (batch, 3, height, width, channels) optional: Σ over samples of weight·dout
 *   dpoints (batch, points, 3)                  optional: through the bilinear weights
 *                                               (0 for samples that read only zeros)
 *   dout    (batch, points, 3·channels)
 *   planes  required with dpoints (may be NULL otherwise)
 *   points  (batch, points, 3)
 * deterministic != 0: dplanes by binning samples per cell and gathering per texel; the
 * result is bitwise independent of the thread count. deterministic == 0: per-thread
 * partial planes summed in thread order (deterministic for a given thread count only;
 * scratch threads × 3·height·width·channels floats). dpoints is always independent of it. */
LRM_API lrm_status lrm_triplane_sample_backward(float* dplanes, float* dpoints, const float* dout,
                                                const float* planes, const float* points,
                                                int64_t batch, int64_t num_points,
                                                int64_t channels, int64_t height, int64_t width,
                                                int32_t deterministic);

/* The first layer of the triplane NeRF MLP taken through the sampling ("linear first",
 * docs/derivations/triplane_sample.md). With each plane already multiplied by its block of
 * the layer's weight, P_p = plane_p · W_pᵀ (W = [W_0 | W_1 | W_2], channels = the layer's
 * width), one output row is
 *   out[b, n, :] = act(Σ_p grid_sample(P_p, uv_p(points[b, n])) + bias)
 * which equals act(W · [s_0 | s_1 | s_2] + bias) of the concatenated samples s_p of the
 * original planes: bilinear sampling with zero padding is linear. Taps and plane order as
 * lrm_triplane_sample_forward; the 12 weighted corners are added from zero in plane order,
 * then the bias, then the activation.
 *   out    (batch, points, channels)
 *   planes (batch, 3, height, width, channels)   channels-last, projected
 *   points (batch, points, 3)
 *   bias   (channels) optional (NULL)
 *   activation  an lrm_activation */
LRM_API lrm_status lrm_triplane_sample_sum_forward(float* out, const float* planes,
                                                   const float* points, const float* bias,
                                                   int64_t batch, int64_t num_points,
                                                   int64_t channels, int64_t height,
                                                   int64_t width, int32_t activation);

/* ---- small MLP ---------------------------------------------------------- */

/* A stack of nn.Linear layers with `hidden_activation` between them and
 * `output_activation` after the last (LRM's NeRF decoder: ReLU / none).
 *   out      (rows, dims[num_layers])
 *   inp      (rows, dims[0])
 *   weights  num_layers pointers, layer l: (dims[l+1], dims[l])   (nn.Linear layout)
 *   biases   num_layers pointers, layer l: (dims[l+1]), each optional (NULL);
 *            biases itself may be NULL (no biases at all)
 *   dims     num_layers + 1 sizes
 * num_layers >= 1; activations are lrm_activation values.
 * Rows are processed in blocks, so scratch memory stays bounded. */
LRM_API lrm_status lrm_mlp_forward(float* out, const float* inp, const float* const* weights,
                                   const float* const* biases, const int64_t* dims,
                                   int32_t num_layers, int64_t rows, int32_t hidden_activation,
                                   int32_t output_activation);

/* Backward of lrm_mlp_forward (docs/derivations/mlp.md); arguments as the forward's.
 *   dinp     (rows, dims[0])  optional, overwritten
 *   dweights num_layers pointers, each optional (NULL: that layer's weight gradient is not
 *            wanted), accumulated (+=); dweights itself may be NULL
 *   dbiases  num_layers pointers, each optional, accumulated (+=): Σ over rows of the
 *            layer's output gradient (also where the layer has no bias); may be NULL
 *   dout     (rows, dims[num_layers])
 *   inp, weights, biases  the forward's
 * Nothing is saved by the forward: the activations are recomputed in row chunks
 * (memory O(chunk · Σ dims), not O(rows)). relu'(0) = 0, as PyTorch. */
LRM_API lrm_status lrm_mlp_backward(float* dinp, float* const* dweights, float* const* dbiases,
                                    const float* dout, const float* inp,
                                    const float* const* weights, const float* const* biases,
                                    const int64_t* dims, int32_t num_layers, int64_t rows,
                                    int32_t hidden_activation, int32_t output_activation);

/* ---- dtype conversion --------------------------------------------------- */

/* fp32 → bf16 with round-to-nearest-even (NaN stays NaN), and back (exact). */
LRM_API lrm_status lrm_convert_f32_to_bf16(uint16_t* out, const float* inp, int64_t n);
LRM_API lrm_status lrm_convert_bf16_to_f32(float* out, const uint16_t* inp, int64_t n);

/* ---- image resize with explicit scale factors ------------------------- */

/* As lrm_resize_forward, but source coordinates use scale = 1/scale_factor per axis,
 * as torch.nn.functional.interpolate(scale_factor=...) does (PyTorch's
 * area_pixel_compute_scale), instead of in/out. DINOv2 resizes its position table
 * this way: interpolate(table 37×37, scale_factor=(g + offset)/37), output g×g.
 *   out (planes, out_height, out_width)
 *   inp (planes, in_height, in_width)
 * scale_factor_h, scale_factor_w: finite and > 0 (output/input, as given to PyTorch),
 * with out_height/scale_factor_h and out_width/scale_factor_w (the source extent read)
 * at most 2^31; a smaller factor is INVALID_ARGUMENT.
 * The output size is the caller's (PyTorch: ⌊in·scale_factor⌋). */
LRM_API lrm_status lrm_resize_scaled_forward(float* out, const float* inp, int64_t planes,
                                             int64_t in_height, int64_t in_width, int64_t out_height,
                                             int64_t out_width, int32_t mode, float cubic_a,
                                             int32_t antialias, double scale_factor_h,
                                             double scale_factor_w);

/* Backward of lrm_resize_forward / lrm_resize_scaled_forward (docs/derivations/resize.md):
 * the adjoint of the resampling matrix, dinp = A_yᵀ · dout · A_x per plane, with the same
 * float taps as the forward. Arguments as the forward's.
 *   dinp (planes, in_height, in_width)    overwritten
 *   dout (planes, out_height, out_width)
 * Results do not depend on the thread count (both passes are gathers). */
LRM_API lrm_status lrm_resize_backward(float* dinp, const float* dout, int64_t planes,
                                       int64_t in_height, int64_t in_width, int64_t out_height,
                                       int64_t out_width, int32_t mode, float cubic_a,
                                       int32_t antialias);
LRM_API lrm_status lrm_resize_scaled_backward(float* dinp, const float* dout, int64_t planes,
                                              int64_t in_height, int64_t in_width,
                                              int64_t out_height, int64_t out_width, int32_t mode,
                                              float cubic_a, int32_t antialias,
                                              double scale_factor_h, double scale_factor_w);

/* ---- element-wise arithmetic ------------------------------------------- */

/* out = a + b, n elements; out may alias a or b. */
LRM_API lrm_status lrm_add_forward(float* out, const float* a, const float* b, int64_t n);

/* LayerScale with residual (DINOv2 blocks: x + ls.gamma ⊙ f(x)):
 *   out[r, c] = residual[r, c] + inp[r, c]·gamma[c]
 *   out, inp  (rows, channels)
 *   gamma     (channels)
 *   residual  (rows, channels) optional (absent = 0)
 * out may alias inp or residual. */
LRM_API lrm_status lrm_layerscale_forward(float* out, const float* inp, const float* gamma,
                                          const float* residual, int64_t rows, int64_t channels);

/* Backward of lrm_layerscale_forward (docs/derivations/layerscale.md):
 *   dinp      (rows, channels) = dout·gamma      optional, overwritten; may alias dout
 *   dgamma    (channels)      += Σ_rows dout·inp  optional, accumulated
 *   dresidual (rows, channels) = dout            optional, overwritten (a copy; may be dout)
 *   dout, inp (rows, channels); gamma (channels)  (inp needed for dgamma, gamma for dinp)
 * The backward of lrm_add_forward is dout for both inputs: no entry point. */
LRM_API lrm_status lrm_layerscale_backward(float* dinp, float* dgamma, float* dresidual, const float* dout,
                                           const float* inp, const float* gamma, int64_t rows, int64_t channels);

/* ---- layout ------------------------------------------------------------ */

/* Batched transpose of the last two dimensions: out[b, c, r] = inp[b, r, c].
 *   out (batch, cols, rows)
 *   inp (batch, rows, cols)
 * out must not overlap inp. */
LRM_API lrm_status lrm_transpose_forward(float* out, const float* inp, int64_t batch, int64_t rows,
                                         int64_t cols);

/* ---- triplane NeRF output ---------------------------------------------- */

/* Density and colour from the NeRF MLP's raw output (OpenLRM's OSGDecoder):
 *   sigma (rows)     softplus(raw[:, 0] − 1)            optional
 *   rgb   (rows, 3)  sigmoid(raw[:, 1:4])·1.002 − 0.001  optional
 *   raw   (rows, 4)
 * At least one output must be given. */
LRM_API lrm_status lrm_nerf_decode_forward(float* sigma, float* rgb, const float* raw, int64_t rows);

/* Backward of lrm_nerf_decode_forward (docs/derivations/nerf_decode.md).
 *   draw   (rows, 4)  overwritten: [dσ·softplus'(raw₀ − 1), drgb·1.002·s·(1 − s)]
 *   dsigma (rows)     optional (absent: 0)
 *   drgb   (rows, 3)  optional (absent: 0); at least one must be given
 *   raw    (rows, 4) */
LRM_API lrm_status lrm_nerf_decode_backward(float* draw, const float* dsigma, const float* drgb,
                                            const float* raw, int64_t rows);

/* ---- volume rendering (deterministic mode; tests/golden/model/README.md) ---- */

/* Camera rays through pixel centres and their coarse sample depths.
 *   origins, directions (batch, height·width, 3)   directions unit length, pixels row-major
 *   depths      (batch, height·width, samples)     linspace(near, far, samples)
 *   depth_range (batch, 2) optional: min and max of each image's depths (for march)
 *   cameras     (batch, 25)   4×4 camera-to-world (OpenGL convention) row-major, then the 3×3
 *                             intrinsics normalised by the image size, row-major
 * near/far: the ray's intersection with [−1, 1]³; rays that miss it take the image's
 * (min, max) over the near values of the rays that hit (OpenLRM). samples >= 2. */
LRM_API lrm_status lrm_render_rays_forward(float* origins, float* directions, float* depths,
                                           float* depth_range, const float* cameras, int64_t batch,
                                           int64_t height, int64_t width, int64_t samples);

/* Sample positions p = origin + t·direction.
 *   points (batch, rays·samples, 3)   ray-major
 *   origins, directions (batch, rays, 3)
 *   depths (batch, rays, samples) */
LRM_API lrm_status lrm_render_points_forward(float* points, const float* origins,
                                             const float* directions, const float* depths,
                                             int64_t batch, int64_t rays, int64_t samples);

/* Decoded samples for marching: [σ_raw, rgb] with rgb = sigmoid·1.002 − 0.001 inside
 * the box (max|p| ≤ 1 + 1e-5), and [−FLT_MAX/8, 0, 0, 0] outside.
 *   decoded (rows, 4)
 *   raw     (rows, 4)   NeRF MLP output
 *   points  (rows, 3)   sample positions */
LRM_API lrm_status lrm_render_decode_forward(float* decoded, const float* raw, const float* points,
                                             int64_t rows);

/* Backward of lrm_render_decode_forward (docs/derivations/render_decode.md).
 *   draw     (rows, 4)  overwritten: inside the box [dσ_raw, drgb·1.002·s·(1 − s)], else 0
 *   ddecoded (rows, 4)
 *   raw      (rows, 4), points (rows, 3)  the forward's inputs
 * Sample positions get no gradient (the box test is a step; points come from the
 * cameras and fixed depths, see docs/derivations/render_points.md). */
LRM_API lrm_status lrm_render_decode_backward(float* draw, const float* ddecoded, const float* raw,
                                              const float* points, int64_t rows);

/* Importance sample depths by a deterministic inverse CDF of the smoothed coarse
 * weights over the coarse interval midpoints (EG3D's sample_pdf with det=True).
 *   fine_depths    (batch, rays, fine_samples)       non-decreasing per ray
 *   coarse_depths  (batch, rays, coarse_samples)     sorted per ray
 *   coarse_weights (batch, rays, coarse_samples − 1) from lrm_render_march_forward
 * coarse_samples >= 4. */
LRM_API lrm_status lrm_render_importance_forward(float* fine_depths, const float* coarse_depths,
                                                 const float* coarse_weights, int64_t batch,
                                                 int64_t rays, int64_t coarse_samples,
                                                 int64_t fine_samples);

/* Volume rendering of decoded samples (midpoint rule, MipRayMarcher2). Per ray, the
 * samples are the merge by depth of set a and set b (each sorted; b may be empty).
 *   rgb      (batch, rays, 3)   optional: Σ w·c_mid + background·(1 − Σ w)
 *   depth    (batch, rays)      optional: Σ w·t_mid / Σ w (NaN → +∞), clamped to depth_range
 *   opacity  (batch, rays)      optional: Σ w
 *   weights  (batch, rays, samples_a + samples_b − 1)  optional
 *   depths_a (batch, rays, samples_a), decoded_a (batch, rays·samples_a, 4)
 *   depths_b (batch, rays, samples_b), decoded_b (batch, rays·samples_b, 4)  NULL if samples_b = 0
 *   background  (3)        colour composited behind (1, 1, 1 = white)
 *   depth_range (batch, 2) [min, max] per image (lrm_render_rays_forward); required with depth
 * samples_a >= 1, samples_b >= 0, samples_a + samples_b >= 2. */
LRM_API lrm_status lrm_render_march_forward(float* rgb, float* depth, float* opacity, float* weights,
                                            const float* depths_a, const float* decoded_a,
                                            int64_t samples_a, const float* depths_b,
                                            const float* decoded_b, int64_t samples_b,
                                            const float* background, const float* depth_range,
                                            int64_t batch, int64_t rays);

/* Backward of lrm_render_march_forward (docs/derivations/render_march.md): the gradients of
 * rgb, depth and opacity with respect to the decoded samples [σ_raw, rgb] of both sets.
 * Depths, background and depth_range are constants (no gradient); the weights output is not
 * differentiated (it only feeds importance sampling).
 *   ddecoded_a (batch, rays·samples_a, 4)  overwritten
 *   ddecoded_b (batch, rays·samples_b, 4)  overwritten; required when samples_b > 0
 *   drgb     (batch, rays, 3)  optional
 *   ddepth   (batch, rays)     optional; no gradient where the forward clamped the depth
 *                              (outside [lo, hi]) or no weight was left (Σw = 0)
 *   dopacity (batch, rays)     optional; at least one of the three must be given
 *   depths_a ... depth_range   the forward's inputs; depth_range required with ddepth
 * Nothing per sample is kept from the forward: each ray is replayed into a per-thread
 * scratch of 2·(samples_a + samples_b) floats and as many ints, then walked back to front
 * (suffix sum normalised by the transmittance, exact for saturated intervals). Rays are
 * independent, so results do not depend on the thread count. */
LRM_API lrm_status lrm_render_march_backward(float* ddecoded_a, float* ddecoded_b, const float* drgb,
                                             const float* ddepth, const float* dopacity,
                                             const float* depths_a, const float* decoded_a,
                                             int64_t samples_a, const float* depths_b,
                                             const float* decoded_b, int64_t samples_b,
                                             const float* background, const float* depth_range,
                                             int64_t batch, int64_t rays);

/* ---- image codecs ------------------------------------------------------- */

/* Image file formats lrm_image_probe recognises (by their signature bytes). */
typedef enum lrm_image_format {
    LRM_IMAGE_FORMAT_UNKNOWN = 0,
    LRM_IMAGE_FORMAT_PNG = 1,
    LRM_IMAGE_FORMAT_JPEG = 2
} lrm_image_format;

/* Default decoding limits: 16384 pixels per side, 64 Mpx (8192 x 8192) in all. */
#define LRM_IMAGE_DEFAULT_MAX_SIDE 16384
#define LRM_IMAGE_DEFAULT_MAX_PIXELS 67108864

/* Reads an encoded PNG or JPEG file's header from memory: its size, whether it
 * carries alpha (an alpha channel or a PNG tRNS chunk) and its format.
 *   height, width  out
 *   has_alpha      out, optional (1 or 0)
 *   format         out, optional (lrm_image_format)
 *   data           (size) the whole file
 *   name           optional: the file's name, put in every message ("<memory>" if NULL)
 * Images wider or taller than max_side, or with more than max_pixels pixels, are
 * refused from the header alone (decompression bombs), as are corrupt or truncated
 * headers and other formats: LRM_STATUS_IO_ERROR, the message naming the file. */
LRM_API lrm_status lrm_image_probe(int64_t* height, int64_t* width, int32_t* has_alpha, int32_t* format,
                                   const uint8_t* data, int64_t size, const char* name, int64_t max_side,
                                   int64_t max_pixels);

/* Decodes a PNG (1/2/4/8/16-bit grey, grey+alpha, RGB, RGBA, palette, tRNS, interlaced)
 * or JPEG (baseline, progressive, greyscale, CMYK/YCCK converted to RGB) to RGBA fp32.
 *   pixels    (height, width, 4)  RGBA in [0, 1]: 8-bit v/255, 16-bit v/65535; grey is
 *             replicated; alpha = 1 where the file has none. No colour management.
 *   has_alpha out, optional, as lrm_image_probe
 *   data, name, max_side, max_pixels  as lrm_image_probe
 *   height, width  the size lrm_image_probe returned (else LRM_STATUS_SHAPE_MISMATCH)
 * Corrupt or truncated data (including a JPEG that ends early or has damaged entropy
 * data, which libjpeg alone would grey-fill with a warning) is LRM_STATUS_IO_ERROR with
 * one message naming the file; nothing is printed. pixels may be partly written then. */
LRM_API lrm_status lrm_image_decode(float* pixels, int32_t* has_alpha, const uint8_t* data, int64_t size,
                                    const char* name, int64_t height, int64_t width, int64_t max_side,
                                    int64_t max_pixels);

/* Writes an 8-bit RGB (channels = 3) or RGBA (channels = 4) PNG to path (UTF-8),
 * atomically: into a temporary file in the same folder, flushed to disk, then renamed
 * over path; on any failure the temporary file is removed and path is untouched.
 *   pixels (height, width, channels) values clamped to [0, 1], v·255 rounded to nearest
 *          (NaN → 0), so decoding an 8-bit PNG and writing it back is exact.
 * The folder must exist. */
LRM_API lrm_status lrm_image_write_png(const char* path, const float* pixels, int64_t height, int64_t width,
                                       int64_t channels);

/* ---- marching cubes ------------------------------------------------------ */

/* A triangle mesh made by the library; read it with lrm_mesh_size and lrm_mesh_copy,
 * release it with lrm_mesh_free. */
typedef struct lrm_mesh lrm_mesh;

/* Iso-surface of a scalar grid by marching cubes (Lorensen & Cline 1987; tables and edge
 * interpolation in kernels/marching_cubes.cuh).
 *   mesh    out: a new mesh (NULL on failure), free with lrm_mesh_free
 *   field   (depth, height, width)  indexed [z][y][x], x fastest
 *   bounds  (2, 3) optional: [min_x, min_y, min_z, max_x, max_y, max_z]; grid point
 *           (x, y, z) = (0, 0, 0) maps to min and (width−1, height−1, depth−1) to max.
 *           NULL: vertices in grid coordinates (x, y, z) = (column, row, plane).
 * Inside is value > level (NeRF density above the threshold is object; NaN is outside).
 * Vertices (V, 3) as (x, y, z), placed by linear interpolation on the grid edges that cross
 * the level, one per edge, shared by every triangle that uses it. Triangles (T, 3) are int32
 * vertex indices, counter-clockwise seen from outside (normals toward decreasing values).
 * Ambiguous faces are resolved the same way in every cell, so a level set that closes inside
 * the grid gives a watertight, manifold mesh. Output order is fixed (vertices by edge
 * (z, y, x, axis), triangles by cell (z, y, x)) and independent of the thread count.
 * depth, height, width >= 2; level finite; bounds finite with max > min per axis, and a
 * span max − min that float can hold (finite grid step).
 * More than 2^31 − 1 vertices is LRM_STATUS_UNSUPPORTED. An empty result (no crossing) is
 * a valid mesh with V = T = 0. */
LRM_API lrm_status lrm_marching_cubes_forward(lrm_mesh** mesh, const float* field, const float* bounds,
                                              int64_t depth, int64_t height, int64_t width, float level);

/* Number of vertices and triangles of a mesh. */
LRM_API lrm_status lrm_mesh_size(int64_t* vertex_count, int64_t* triangle_count, const lrm_mesh* mesh);

/* Copies a mesh into caller buffers sized by lrm_mesh_size (the counts must match, else
 * LRM_STATUS_SHAPE_MISMATCH; zero counts are allowed here, and their buffer may be NULL).
 *   vertices  (vertex_count, 3)    (x, y, z)
 *   triangles (triangle_count, 3)  int32 */
LRM_API lrm_status lrm_mesh_copy(float* vertices, int32_t* triangles, const lrm_mesh* mesh,
                                 int64_t vertex_count, int64_t triangle_count);

/* Releases a mesh; NULL is a no-op. */
LRM_API void lrm_mesh_free(lrm_mesh* mesh);

/* ---- optimizer (training) ------------------------------------------------- */

/* One AdamW step t >= 1 (torch.optim.AdamW, decoupled weight decay, amsgrad off), in place:
 *   g = grad·grad_scale;  param ·= 1 − lr·weight_decay;  exp_avg = β1·exp_avg + (1 − β1)·g;
 *   exp_avg_sq = β2·exp_avg_sq + (1 − β2)·g²;
 *   param −= lr/(1 − β1^t) · exp_avg / (√exp_avg_sq / √(1 − β2^t) + eps)
 *   param, exp_avg, exp_avg_sq, grad  (n)
 * grad_scale is the global-norm clipping coefficient (1: none). lr, weight_decay, grad_scale >= 0,
 * β in [0, 1), eps > 0, all finite. Math: kernels/optimizer.cuh. */
LRM_API lrm_status lrm_adamw_step(float* param, float* exp_avg, float* exp_avg_sq, const float* grad, float lr,
                                  float beta1, float beta2, float eps, float weight_decay, float grad_scale,
                                  int64_t step, int64_t n);

/* sum = Σ x² in double (fixed blocks: the same value for any thread count); nonfinite (optional) = number
 * of NaN/±inf elements of x (0 when the sum is finite).  x (n) */
LRM_API lrm_status lrm_sum_squares(double* sum, int64_t* nonfinite, const float* x, int64_t n);

#ifdef __cplusplus
}
#endif

#endif /* LRM_NATIVE_H */
