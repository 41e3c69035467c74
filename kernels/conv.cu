/*
 * conv.cu — the gathers and scatters around the GEMMs of LRM's two convolutions (kernel =
 * stride, no overlap; native/src/conv.cpp has the derivation).
 *
 *   patch_im2col_kernel    cols (B·Gh·Gw, Cin·P·P) from image (B, Cin, H, W); then
 *                          out (B·T, O) = cols·wᵀ + bias (one GEMM)
 *   deconv_scatter_kernel  out (B, O, H·K, W·K) from cols (B, O·K·K, H·W) + bias (O); cols per
 *                          image = wᵀ·inp[b] (one GEMM per image)
 *   backward: patch_col2im_kernel and deconv_gather_kernel invert the two layouts (the weight and
 *   input gradients are GEMMs, CudaBackend); channel_sum_accumulate_kernel sums the de-convolution's
 *   bias gradient per channel in double with a fixed tree
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

/* Backward of patch_im2col_kernel: image gradient (B, Cin, H, W) from the column gradient; pixels outside every
 * patch (H or W not a multiple of P) get 0. */
extern "C" __global__ void patch_col2im_kernel(float* dimage,       // (B, Cin, H, W)
                                               const float* dcols,  // (B·Gh·Gw, Cin·P·P)
                                               int batch, int channels, int height, int width, int patch) {
    const int grid_h = height / patch, grid_w = width / patch;
    const long long depth = (long long)channels * patch * patch;
    LRM_GRID_STRIDE(i, (long long)batch * channels * height * width) {
        const int x = (int)(i % width), y = (int)(i / width % height);
        const long long c = i / ((long long)width * height) % channels, b = i / ((long long)width * height * channels);
        const int gy = y / patch, gx = x / patch;
        float value = 0.0f;
        if (gy < grid_h && gx < grid_w) {
            const long long row = (b * grid_h + gy) * grid_w + gx;
            value = dcols[row * depth + (c * patch + y % patch) * patch + x % patch];
        }
        dimage[i] = value;
    }
}

/* Backward of deconv_scatter_kernel: dcols (B, O·K·K, H·W) gathered from dout (B, O, H·K, W·K). */
extern "C" __global__ void deconv_gather_kernel(float* dcols,        // (B, O·K·K, H·W)
                                                const float* dout,   // (B, O, H·K, W·K)
                                                int batch, int out_channels, int height, int width, int kernel) {
    const long long pixels = (long long)height * width, taps = (long long)out_channels * kernel * kernel;
    const long long out_h = (long long)height * kernel, out_w = (long long)width * kernel;
    LRM_GRID_STRIDE(i, (long long)batch * taps * pixels) {
        const long long pixel = i % pixels, tap = i / pixels % taps, b = i / (pixels * taps);
        const long long y = pixel / width, x = pixel % width;
        const long long o = tap / (kernel * kernel), ky = tap / kernel % kernel, kx = tap % kernel;
        dcols[i] = dout[((b * out_channels + o) * out_h + y * kernel + ky) * out_w + x * kernel + kx];
    }
}

/* grid (channels), block 256: out[c] += Σ over b and s of x (B, C, S)[b, c, s], in double, a fixed tree. */
extern "C" __global__ void channel_sum_accumulate_kernel(float* out, const float* x, long long batch, int channels, long long spatial) {
    __shared__ double partial[256];
    const int c = blockIdx.x;
    double acc = 0.0;
    for (long long j = threadIdx.x; j < batch * spatial; j += 256) {
        const long long b = j / spatial, s = j % spatial;
        acc += (double)x[(b * channels + c) * spatial + s];
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int stride = 128; stride > 0; stride >>= 1) {
        if ((int)threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[c] = (float)((double)out[c] + partial[0]);
}
