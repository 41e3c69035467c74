// common.hpp — small helpers shared by the op files: thread count, aligned scratch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

namespace lrm {

// Threads every parallel region of the library uses (lrm_set_num_threads).
// Kept in the library rather than in OpenMP's per-thread ICV so that a count set
// from one host thread applies to calls made from any other.
int num_threads() noexcept;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Owning, 64-byte aligned, uninitialised float scratch. Allocation failure throws
// std::bad_alloc (turned into LRM_STATUS_OUT_OF_MEMORY at the boundary), so
// create buffers before entering a parallel region.
class Scratch {
public:
    static constexpr size_t kAlignment = 64;

    explicit Scratch(int64_t count) : count_(static_cast<size_t>(count)) {
        if (count < 0 || count_ > SIZE_MAX / sizeof(float)) throw std::bad_alloc();
        // +1 byte: a valid, distinct allocation even for count 0.
        data_ = static_cast<float*>(::operator new(count_ * sizeof(float) + 1, std::align_val_t(kAlignment)));
    }
    ~Scratch() { ::operator delete(data_, std::align_val_t(kAlignment)); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;

    float* data() noexcept { return data_; }
    size_t size() const noexcept { return count_; }
    void zero() noexcept { std::memset(data_, 0, count_ * sizeof(float)); }

private:
    size_t count_;
    float* data_;
};

}  // namespace lrm
