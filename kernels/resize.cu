/*
 * resize.cu — torch.nn.functional.interpolate(align_corners=False), bilinear and bicubic, with
 * and without antialias, forward (the backward, the adjoint, comes with training).
 *
 *   out (P, OH, OW) from inp (P, IH, IW), P independent planes
 *
 * As on the CPU (native/src/resize.cpp), in PyTorch's order: per axis a tap table (input index
 * and weight per output index and tap, computed in double by kernels/resize.cuh, rounded once),
 * then a horizontal pass tmp (P, IH, OW) and a vertical pass out (P, OH, OW), each summing its
 * taps in float in tap order. So the GPU result equals the CPU one up to fused multiply-adds.
 *
 *   resize_taps_kernel        one thread per output index of one axis; table width ≥ every
 *                             window's tap count (the host bounds it: 2·support·max(scale, 1) + 2)
 *   resize_horizontal_kernel  one thread per tmp element
 *   resize_vertical_kernel    one thread per out element
 */
#include "lrm_prelude.cuh"
#include "resize.cuh"

extern "C" __global__ void resize_taps_kernel(int* count,      // (out)
                                              int* index,      // (out, table_width)
                                              float* weight,   // (out, table_width)
                                              int in_size, int out_size, double scale, int bicubic, float cubic_a,
                                              int antialias, int table_width) {
    const int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= out_size) return;
    int* idx = index + (long long)o * table_width;
    float* w = weight + (long long)o * table_width;
    for (int j = 0; j < table_width; ++j) {
        idx[j] = 0;
        w[j] = 0.0f;
    }
    const double a = (double)cubic_a;
    if (antialias) {
        const lrm_aa_window window = lrm_aa_window_at(scale, bicubic ? 2.0 : 1.0, o, in_size);
        const int n = (int)(window.xsize < table_width ? window.xsize : table_width);
        double total = 0.0;
        for (int j = 0; j < n; ++j) {
            const double x = lrm_aa_tap_position(&window, j);
            total += bicubic ? lrm_cubic_filter(x, a) : lrm_triangle_filter(x);
        }
        const double norm = total != 0.0 ? 1.0 / total : 1.0;
        for (int j = 0; j < n; ++j) {
            const double x = lrm_aa_tap_position(&window, j);
            const double value = bicubic ? lrm_cubic_filter(x, a) : lrm_triangle_filter(x);
            w[j] = (float)(value * norm);
            idx[j] = (int)(window.xmin + j);
        }
        count[o] = n;
    } else if (!bicubic) {
        const double src = lrm_resize_source_index(scale, o, 1);
        /* Clamped in double, so the conversion is in range whatever the scale (as on the CPU). */
        const long long i0 = (long long)(src < (double)(in_size - 1) ? src : (double)(in_size - 1));
        const int offset = i0 < in_size - 1 ? 1 : 0;
        double lambda1 = src - (double)i0;
        lambda1 = lambda1 < 0.0 ? 0.0 : (lambda1 > 1.0 ? 1.0 : lambda1);
        idx[0] = (int)i0;
        idx[1] = (int)i0 + offset;
        w[0] = (float)(1.0 - lambda1);
        w[1] = (float)lambda1;
        count[o] = 2;
    } else {
        const double src = lrm_resize_source_index(scale, o, 0);
        const double floor_src = floor(src);
        /* Beyond [−2, in + 1] every tap clamps to the same border pixel: clamp before converting. */
        const double last = (double)in_size + 1.0;
        const long long i0 = (long long)(floor_src < -2.0 ? -2.0 : (floor_src > last ? last : floor_src));
        lrm_cubic_weights(src - floor_src, a, w);
        for (int j = 0; j < 4; ++j) {
            long long at = i0 - 1 + j;
            at = at < 0 ? 0 : (at > in_size - 1 ? in_size - 1 : at);
            idx[j] = (int)at;
        }
        count[o] = 4;
    }
}

extern "C" __global__ void resize_horizontal_kernel(float* tmp,          // (P, IH, OW)
                                                    const float* inp,    // (P, IH, IW)
                                                    const int* count,    // (OW)
                                                    const int* index,    // (OW, table_width)
                                                    const float* weight, // (OW, table_width)
                                                    long long rows, int in_width, int out_width, int table_width) {
    LRM_GRID_STRIDE(i, rows * out_width) {
        const long long row = i / out_width;
        const int x = (int)(i % out_width);
        const float* src = inp + row * in_width;
        const int* idx = index + (long long)x * table_width;
        const float* w = weight + (long long)x * table_width;
        const int n = count[x];
        float acc = n > 0 ? src[idx[0]] * w[0] : 0.0f;
        for (int j = 1; j < n; ++j) acc += src[idx[j]] * w[j];
        tmp[i] = acc;
    }
}

extern "C" __global__ void resize_vertical_kernel(float* out,           // (P, OH, OW)
                                                  const float* tmp,     // (P, IH, OW)
                                                  const int* count,     // (OH)
                                                  const int* index,     // (OH, table_width)
                                                  const float* weight,  // (OH, table_width)
                                                  int planes, int in_height, int out_height, int out_width,
                                                  int table_width) {
    LRM_GRID_STRIDE(i, (long long)planes * out_height * out_width) {
        const int x = (int)(i % out_width);
        const long long row = i / out_width;
        const int y = (int)(row % out_height);
        const long long p = row / out_height;
        const float* plane = tmp + p * in_height * out_width;
        const int* idx = index + (long long)y * table_width;
        const float* w = weight + (long long)y * table_width;
        const int n = count[y];
        float acc = n > 0 ? plane[(long long)idx[0] * out_width + x] * w[0] : 0.0f;
        for (int j = 1; j < n; ++j) acc += plane[(long long)idx[j] * out_width + x] * w[j];
        out[i] = acc;
    }
}
