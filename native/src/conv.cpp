// conv.cpp — the two convolutions of LRM, both with kernel = stride (no overlap).
//
// Patch embedding, Conv2d(Cin, O, kernel = stride = P) + bias, written token-major:
//   out[b, gy·Gw + gx, o] = bias[o] + Σ_{c,py,px} image[b, c, gy·P + py, gx·P + px]·w[o, c, py, px]
//   out (B, Gh·Gw, O), image (B, Cin, H, W), w (O, Cin, P, P), Gh = ⌊H/P⌋, Gw = ⌊W/P⌋
//   Patches do not overlap, so im2col is a pure gather (each pixel copied at most
//   once) into cols (Gh·Gw, Cin·P·P), followed by one sgemm out = cols·wᵀ per image.
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
// The gemms go through lrm::sgemm (gemm.hpp), outside any OpenMP region; the
// gathers/scatters are OpenMP loops.
#include "common.hpp"
#include "errors.hpp"
#include "gemm.hpp"
#include "lrm_native.h"

#include <cstring>

namespace lrm {
namespace {

// Gathers and scatters below this many floats run on one thread: a fork/join costs more.
constexpr int64_t kParallelElements = 32768;

void patch_embed_forward(float* out, const float* image, const float* weight, const float* bias, int64_t batch,
                         int64_t channels, int64_t height, int64_t width, int64_t out_channels, int64_t patch,
                         int gemm_m, int gemm_n, int gemm_k) {
    const int64_t grid_w = width / patch;
    const int64_t tokens = static_cast<int64_t>(gemm_m);
    const int64_t depth = static_cast<int64_t>(gemm_k);  // Cin·P·P
    Scratch cols(tokens * depth);
    const int threads = num_threads();
    for (int64_t b = 0; b < batch; ++b) {
        const float* img = image + b * channels * height * width;
        float* dst = out + b * tokens * out_channels;
#pragma omp parallel for num_threads(threads) schedule(static) if (tokens * depth > kParallelElements)
        for (int64_t t = 0; t < tokens; ++t) {
            const int64_t gy = t / grid_w, gx = t % grid_w;
            float* row = cols.data() + t * depth;
            for (int64_t c = 0; c < channels; ++c)
                for (int64_t py = 0; py < patch; ++py)
                    std::memcpy(row + (c * patch + py) * patch,
                                img + (c * height + gy * patch + py) * width + gx * patch, sizeof(float) * patch);
            if (bias != nullptr) std::memcpy(dst + t * out_channels, bias, sizeof(float) * out_channels);
        }
        sgemm(false, true, gemm_m, gemm_n, gemm_k, cols.data(), gemm_k, weight, gemm_k, bias != nullptr ? 1.0f : 0.0f,
              dst, gemm_n);
    }
}

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

// im2col of one image: cols (tokens, Cin·P·P), row t = the patch of token t, (c, py, px) order.
void gather_patches(float* cols, const float* img, int64_t channels, int64_t height, int64_t width, int64_t patch,
                    int64_t tokens, int threads) {
    const int64_t grid_w = width / patch, depth = channels * patch * patch;
#pragma omp parallel for num_threads(threads) schedule(static) if (tokens * depth > kParallelElements)
    for (int64_t t = 0; t < tokens; ++t) {
        const int64_t gy = t / grid_w, gx = t % grid_w;
        float* row = cols + t * depth;
        for (int64_t c = 0; c < channels; ++c)
            for (int64_t py = 0; py < patch; ++py)
                std::memcpy(row + (c * patch + py) * patch, img + (c * height + gy * patch + py) * width + gx * patch,
                            sizeof(float) * patch);
    }
}

void patch_embed_backward(float* dimage, float* dweight, float* dbias, const float* dout, const float* image,
                          const float* weight, int64_t batch, int64_t channels, int64_t height, int64_t width,
                          int64_t out_channels, int64_t patch, int gemm_m, int gemm_n, int gemm_k) {
    const int64_t grid_h = height / patch, grid_w = width / patch;
    const int64_t tokens = static_cast<int64_t>(gemm_m);
    const int64_t depth = static_cast<int64_t>(gemm_k);  // Cin·P·P
    Scratch cols(tokens * depth);
    const int threads = num_threads();
    for (int64_t b = 0; b < batch; ++b) {
        const float* g = dout + b * tokens * out_channels;
        if (dweight != nullptr) {
            gather_patches(cols.data(), image + b * channels * height * width, channels, height, width, patch, tokens,
                           threads);
            // dW (O, D) += gᵀ (O, T) · cols (T, D)
            sgemm(true, false, gemm_n, gemm_k, gemm_m, g, gemm_n, cols.data(), gemm_k, 1.0f, dweight, gemm_k);
        }
        if (dimage != nullptr) {
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
    if (dbias != nullptr) {
        // Column sums over every (image, token), in a fixed order; double keeps long sums exact to fp32.
#pragma omp parallel for num_threads(threads) schedule(static) if (out_channels * batch * tokens > 65536)
        for (int64_t o = 0; o < out_channels; ++o) {
            double sum = 0.0;
            for (int64_t r = 0; r < batch * tokens; ++r) sum += dout[r * out_channels + o];
            dbias[o] += static_cast<float>(sum);
        }
    }
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

}  // namespace
}  // namespace lrm

extern "C" {

LRM_API lrm_status lrm_patch_embed_forward(float* out, const float* image, const float* weight, const float* bias,
                                           int64_t batch, int64_t in_channels, int64_t height, int64_t width,
                                           int64_t out_channels, int64_t patch) {
    return lrm::guarded("lrm_patch_embed_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(image, "image").not_null(weight, "weight");
        args.positive(batch, "batch").positive(in_channels, "in_channels").positive(height, "height");
        args.positive(width, "width").positive(out_channels, "out_channels").positive(patch, "patch");
        if (patch > height || patch > width)
            args.fail(LRM_STATUS_SHAPE_MISMATCH, "patch (%lld) must be <= height (%lld) and width (%lld)",
                      static_cast<long long>(patch), static_cast<long long>(height), static_cast<long long>(width));
        args.elements({batch, in_channels, height, width}, "image (batch x in_channels x height x width)");
        const int64_t tokens = args.elements({height / patch, width / patch}, "token grid");
        const int64_t depth = args.elements({in_channels, patch, patch}, "weight (in_channels x patch x patch)");
        args.elements({out_channels, depth}, "weight");
        args.elements({batch, tokens, out_channels}, "out");
        args.elements({tokens, depth}, "im2col buffer");
        lrm::patch_embed_forward(out, image, weight, bias, batch, in_channels, height, width, out_channels, patch,
                                 args.blas_int(tokens, "tokens"), args.blas_int(out_channels, "out_channels"),
                                 args.blas_int(depth, "in_channels*patch*patch"));
    });
}

LRM_API lrm_status lrm_deconv_forward(float* out, const float* inp, const float* weight, const float* bias,
                                      int64_t batch, int64_t in_channels, int64_t height, int64_t width,
                                      int64_t out_channels, int64_t kernel) {
    return lrm::guarded("lrm_deconv_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(inp, "inp").not_null(weight, "weight");
        args.positive(batch, "batch").positive(in_channels, "in_channels").positive(height, "height");
        args.positive(width, "width").positive(out_channels, "out_channels").positive(kernel, "kernel");
        args.elements({batch, in_channels, height, width}, "inp (batch x in_channels x height x width)");
        const int64_t taps = args.elements({out_channels, kernel, kernel}, "out_channels x kernel x kernel");
        args.elements({in_channels, taps}, "weight (in_channels x out_channels x kernel x kernel)");
        const int64_t pixels = args.elements({height, width}, "height x width");
        args.elements({batch, taps, pixels}, "out (batch x out_channels x height*kernel x width*kernel)");
        args.elements({taps, pixels}, "column buffer");
        lrm::deconv_forward(out, inp, weight, bias, batch, in_channels, height, width, out_channels, kernel,
                            args.blas_int(taps, "out_channels*kernel*kernel"), args.blas_int(pixels, "height*width"),
                            args.blas_int(in_channels, "in_channels"));
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
        args.positive(batch, "batch").positive(in_channels, "in_channels").positive(height, "height");
        args.positive(width, "width").positive(out_channels, "out_channels").positive(patch, "patch");
        if (patch > height || patch > width)
            args.fail(LRM_STATUS_SHAPE_MISMATCH, "patch (%lld) must be <= height (%lld) and width (%lld)",
                      static_cast<long long>(patch), static_cast<long long>(height), static_cast<long long>(width));
        args.elements({batch, in_channels, height, width}, "image (batch x in_channels x height x width)");
        const int64_t tokens = args.elements({height / patch, width / patch}, "token grid");
        const int64_t depth = args.elements({in_channels, patch, patch}, "weight (in_channels x patch x patch)");
        args.elements({out_channels, depth}, "weight");
        args.elements({batch, tokens, out_channels}, "dout");
        args.elements({tokens, depth}, "im2col buffer");
        lrm::patch_embed_backward(dimage, dweight, dbias, dout, image, weight, batch, in_channels, height, width,
                                  out_channels, patch, args.blas_int(tokens, "tokens"),
                                  args.blas_int(out_channels, "out_channels"),
                                  args.blas_int(depth, "in_channels*patch*patch"));
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
        args.positive(batch, "batch").positive(in_channels, "in_channels").positive(height, "height");
        args.positive(width, "width").positive(out_channels, "out_channels").positive(kernel, "kernel");
        args.elements({batch, in_channels, height, width}, "inp (batch x in_channels x height x width)");
        const int64_t taps = args.elements({out_channels, kernel, kernel}, "out_channels x kernel x kernel");
        args.elements({in_channels, taps}, "weight (in_channels x out_channels x kernel x kernel)");
        const int64_t pixels = args.elements({height, width}, "height x width");
        args.elements({batch, taps, pixels}, "dout (batch x out_channels x height*kernel x width*kernel)");
        args.elements({taps, pixels}, "column buffer");
        lrm::deconv_backward(dinp, dweight, dbias, dout, inp, weight, batch, in_channels, height, width, out_channels,
                             kernel, args.blas_int(taps, "out_channels*kernel*kernel"),
                             args.blas_int(pixels, "height*width"), args.blas_int(in_channels, "in_channels"));
    });
}

}  // extern "C"
