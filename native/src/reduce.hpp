// reduce.hpp — deterministic parallel sums over rows, for the parameter gradients
// of the backward ops (dbias = Σ_rows dout, dweight = Σ_rows dout·x̂, ...).
//
// The rows are cut into one contiguous range per thread (sizes and thread count
// only: deterministic for a given thread count). Each thread adds its rows into its
// own partial vector of doubles; the partials are then added in thread order. No
// atomics, and the double accumulators keep the reference accurate for long sums
// (3072 tokens × batch) where a float sum would lose ~1e-6 relative.
//
//   RowPartials parts(rows, width, threads);       // before the parallel region
//   #pragma omp parallel num_threads(parts.threads())
//   { const int t = omp_get_thread_num();
//     double* acc = parts.partial(t);
//     for (int64_t r = parts.begin(t); r < parts.end(t); ++r) ... acc[c] += ...; }
//   parts.reduce();                                 // parts.total(c) = Σ_t partial_t[c]
#pragma once

#include "common.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace lrm {

class RowPartials {
public:
    // threads is clipped to [1, rows]; min_rows_per_thread keeps small sums on one thread.
    RowPartials(int64_t rows, int64_t width, int threads, int64_t min_rows_per_thread = 1)
        : rows_(rows), width_(width) {
        const int64_t useful = std::max<int64_t>(1, rows / std::max<int64_t>(1, min_rows_per_thread));
        threads_ = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, useful)));
        partials_.assign(static_cast<size_t>(threads_) * static_cast<size_t>(width_), 0.0);
    }

    int threads() const noexcept { return threads_; }
    int64_t begin(int t) const noexcept { return rows_ * t / threads_; }
    int64_t end(int t) const noexcept { return rows_ * (t + 1) / threads_; }
    double* partial(int t) noexcept { return partials_.data() + static_cast<size_t>(t) * width_; }

    // Adds every thread's partial into thread 0's, in thread order; total(c) reads the result.
    void reduce() noexcept {
        double* sum = partials_.data();
        for (int t = 1; t < threads_; ++t) {
            const double* p = partial(t);
            for (int64_t c = 0; c < width_; ++c) sum[c] += p[c];
        }
    }
    double total(int64_t c) const noexcept { return partials_[static_cast<size_t>(c)]; }

private:
    int64_t rows_, width_;
    int threads_;
    std::vector<double> partials_;
};

}  // namespace lrm
