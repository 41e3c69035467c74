// reduce.hpp — deterministic parallel sums over rows, for the parameter gradients
// of the backward ops (dbias = Σ_rows dout, dweight = Σ_rows dout·x̂, ...).
//
// The rows are cut into one contiguous range per requested thread, a "part" (sizes
// and the requested thread count only: deterministic for a given thread count). Each
// part's rows are added into the part's own vector of doubles; the partials are then
// added in part order. No atomics, and the double accumulators keep the reference
// accurate for long sums (3072 tokens × batch) where a float sum would lose ~1e-6
// relative.
//
// OpenMP may deliver fewer threads than num_threads() asks for (OMP_THREAD_LIMIT,
// OMP_DYNAMIC, a call from inside another parallel region), so a part is not owned by
// the thread of that number: the threads the team really has take the parts round-robin
// (for_each_part). With a full team that is one part per thread, as before; with a
// smaller one every part is still done, and the same parts make the same sums, so the
// result depends on the requested count only, never on the team delivered.
//
//   RowPartials parts(rows, width, threads);       // before the parallel region
//   #pragma omp parallel num_threads(parts.parts())
//   parts.for_each_part([&](int part) {
//     double* acc = parts.partial(part);
//     for (int64_t r = parts.begin(part); r < parts.end(part); ++r) ... acc[c] += ...; });
//   parts.reduce();                                 // parts.total(c) = Σ_part partial_part[c]
#pragma once

#include "common.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace lrm {

class RowPartials {
public:
    // threads is clipped to [1, rows]; min_rows_per_thread keeps small sums in one part.
    RowPartials(int64_t rows, int64_t width, int threads, int64_t min_rows_per_thread = 1)
        : rows_(rows), width_(width) {
        const int64_t useful = std::max<int64_t>(1, rows / std::max<int64_t>(1, min_rows_per_thread));
        parts_ = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, useful)));
        partials_.assign(static_cast<size_t>(parts_) * static_cast<size_t>(width_), 0.0);
    }

    // Number of parts: the team size to ask for (one part per thread when it is granted).
    int parts() const noexcept { return parts_; }
    int64_t begin(int part) const noexcept { return rows_ * part / parts_; }
    int64_t end(int part) const noexcept { return rows_ * (part + 1) / parts_; }
    double* partial(int part) noexcept { return partials_.data() + static_cast<size_t>(part) * width_; }

    // Inside the parallel region: calls body(part) for this thread's share of the parts,
    // whatever the size of the team OpenMP actually started.
    template <class Body>
    void for_each_part(Body&& body) const {
        const int team = omp_get_num_threads();
        for (int part = omp_get_thread_num(); part < parts_; part += team) body(part);
    }

    // Adds every part's partial into part 0's, in part order; total(c) reads the result.
    void reduce() noexcept {
        double* sum = partials_.data();
        for (int part = 1; part < parts_; ++part) {
            const double* p = partial(part);
            for (int64_t c = 0; c < width_; ++c) sum[c] += p[c];
        }
    }
    double total(int64_t c) const noexcept { return partials_[static_cast<size_t>(c)]; }

private:
    int64_t rows_, width_;
    int parts_;
    std::vector<double> partials_;
};

}  // namespace lrm
