// elementwise.cpp — element-wise arithmetic the model glues its layers with.
//
//   add         out = a + b                              out, a, b (n)
//   layerscale  out = residual + inp·gamma[c]            out, inp, residual (rows, C), gamma (C)
//               (DINOv2's LayerScale, `x + ls.gamma ⊙ f(x)`; residual optional = 0)
//
// Outputs may alias any input element-for-element (in-place residual updates);
// each element is read before it is written. Flat OpenMP loops, static schedule,
// parallel only above a size where the fork/join pays off: deterministic.
//
// Backward (docs/derivations/layerscale.md):
//   add         da = db = dout: nothing to compute, so no entry point; the caller hands
//               dout on to both branches (a residual stream keeps one buffer).
//   layerscale  dinp = dout·gamma[c] (overwritten), dresidual = dout (overwritten, a copy;
//               skipped when it is dout itself), dgamma += Σ_rows dout·inp (accumulated,
//               double partials per requested thread, added in order: reduce.hpp).
//               dinp may alias dout: each element's dgamma term is taken before dinp is
//               written.
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"
#include "reduce.hpp"

#include <algorithm>
#include <cstring>

namespace lrm {
namespace {

constexpr int64_t kParallelThreshold = 1 << 15;

void add_forward(float* out, const float* a, const float* b, int64_t n) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void layerscale_forward(float* out, const float* inp, const float* gamma, const float* residual, int64_t rows,
                        int64_t channels) {
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(static) if (rows * channels > kParallelThreshold)
    for (int64_t r = 0; r < rows; ++r) {
        const float* x = inp + r * channels;
        float* y = out + r * channels;
        if (residual != nullptr) {
            const float* skip = residual + r * channels;
            for (int64_t c = 0; c < channels; ++c) y[c] = skip[c] + x[c] * gamma[c];
        } else {
            for (int64_t c = 0; c < channels; ++c) y[c] = x[c] * gamma[c];
        }
    }
}

void layerscale_backward(float* dinp, float* dgamma, float* dresidual, const float* dout, const float* inp,
                         const float* gamma, int64_t rows, int64_t channels) {
    const int64_t C = channels;
    RowPartials parts(rows, dgamma != nullptr ? C : 0, num_threads(), std::max<int64_t>(1, kParallelThreshold / C));
#pragma omp parallel num_threads(parts.parts())
    parts.for_each_part([&](int part) {
        double* acc = dgamma != nullptr ? parts.partial(part) : nullptr;
        for (int64_t r = parts.begin(part); r < parts.end(part); ++r) {
            const float* g = dout + r * C;
            const float* x = inp + r * C;
            if (dresidual != nullptr && dresidual != dout) std::memcpy(dresidual + r * C, g, sizeof(float) * C);
            if (acc != nullptr)
                for (int64_t c = 0; c < C; ++c) acc[c] += static_cast<double>(g[c]) * x[c];
            if (dinp != nullptr) {
                float* dx = dinp + r * C;
                for (int64_t c = 0; c < C; ++c) dx[c] = g[c] * gamma[c];
            }
        }
    });
    if (dgamma != nullptr) {
        parts.reduce();
        for (int64_t c = 0; c < C; ++c) dgamma[c] = static_cast<float>(dgamma[c] + parts.total(c));
    }
}

}  // namespace
}  // namespace lrm

extern "C" {

LRM_API lrm_status lrm_add_forward(float* out, const float* a, const float* b, int64_t n) {
    return lrm::guarded("lrm_add_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(a, "a").not_null(b, "b").positive(n, "n");
        args.elements({n}, "out");
        lrm::add_forward(out, a, b, n);
    });
}

LRM_API lrm_status lrm_layerscale_forward(float* out, const float* inp, const float* gamma, const float* residual,
                                          int64_t rows, int64_t channels) {
    return lrm::guarded("lrm_layerscale_forward", [&](const lrm::Args& args) {
        args.not_null(out, "out").not_null(inp, "inp").not_null(gamma, "gamma");
        args.positive(rows, "rows").positive(channels, "channels");
        args.elements({rows, channels}, "inp (rows x channels)");
        lrm::layerscale_forward(out, inp, gamma, residual, rows, channels);
    });
}

LRM_API lrm_status lrm_layerscale_backward(float* dinp, float* dgamma, float* dresidual, const float* dout,
                                           const float* inp, const float* gamma, int64_t rows, int64_t channels) {
    return lrm::guarded("lrm_layerscale_backward", [&](const lrm::Args& args) {
        args.not_null(dout, "dout");
        if (dinp == nullptr && dgamma == nullptr && dresidual == nullptr)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "no gradient requested (dinp, dgamma and dresidual are all NULL)");
        if (dinp != nullptr) args.not_null(gamma, "gamma (needed for dinp)");
        if (dgamma != nullptr) args.not_null(inp, "inp (needed for dgamma)");
        if (dresidual != nullptr && dresidual == dinp)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "dresidual and dinp must be different buffers");
        args.positive(rows, "rows").positive(channels, "channels");
        args.elements({rows, channels}, "dout (rows x channels)");
        lrm::layerscale_backward(dinp, dgamma, dresidual, dout, inp, gamma, rows, channels);
    });
}

}  // extern "C"
