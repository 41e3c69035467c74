/*
 * conv.cu — the gathers and scatters around the GEMMs of LRM's two convolutions (kernel =
 * stride, no overlap; native/src/conv.cpp has the derivation).
 *
 *   patch_im2col_kernel    cols (B·Gh·Gw, Cin·P·P) from image (B, Cin, H, W); then
 *                          out (B·T, O) = cols·wᵀ + bias (one GEMM)
 *   deconv_scatter_kernel  out (B, O, H·K, W·K) from cols (B, O·K·K, H·W) + bias (O); cols per
 *                          image = wᵀ·inp[b] (one GEMM per image)
 *
 * One thread per element written, indices in 64 bits; writes are coalesced.
 */
#include "lrm_prelude.cuh"

extern "C" __global__ void patch_im2col_kernel(float* cols,         // (B·Gh·Gw, Cin·P·P)
                                               const float* image,  // (B, Cin, H, W)
                                               int batch, int channels, int height, int width, int patch) {
    const int grid_h = height / patch, grid_w = width / patch;
    const long long tokens = (long long)grid_h * grid_w;
    const long long depth = (long long)channels * patch * patch;
    LRM_GRID_STRIDE(i, (long long)batch * tokens * depth) {
        const long long row = i / depth, column = i % depth;
        const long long b = row / tokens, token = row % tokens;
        const int gy = (int)(token / grid_w), gx = (int)(token % grid_w);
        const int c = (int)(column / (patch * patch));
        const int py = (int)(column / patch % patch), px = (int)(column % patch);
        cols[i] = image[((b * channels + c) * height + (long long)gy * patch + py) * width + (long long)gx * patch + px];
    }
}

extern "C" __global__ void deconv_scatter_kernel(float* out,         // (B, O, H·K, W·K)
                                                 const float* cols,  // (B, O·K·K, H·W)
                                                 const float* bias,  // (O) or null
                                                 int batch, int out_channels, int height, int width, int kernel) {
    const long long out_h = (long long)height * kernel, out_w = (long long)width * kernel;
    const long long pixels = (long long)height * width;
    LRM_GRID_STRIDE(i, (long long)batch * out_channels * out_h * out_w) {
        const long long ox = i % out_w, oy = i / out_w % out_h;
        const long long o = i / (out_w * out_h) % out_channels, b = i / (out_w * out_h * out_channels);
        const long long x = ox / kernel, kx = ox % kernel, y = oy / kernel, ky = oy % kernel;
        const long long tap = (o * kernel + ky) * kernel + kx;
        const float value = cols[(b * out_channels * kernel * kernel + tap) * pixels + y * width + x];
        out[i] = value + (bias != nullptr ? bias[o] : 0.0f);
    }
}
