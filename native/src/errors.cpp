// errors.cpp — thread-local last error, argument checks, lrm_last_error/lrm_clear_error.
//
// The message lives in a fixed thread-local buffer rather than a std::string so
// that recording an out-of-memory failure can never itself run out of memory.
// A successful call leaves the previous message in place (errno-style); callers
// read it right after a non-OK status.
#include "errors.hpp"

#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <limits>

namespace lrm {

namespace {
constexpr size_t kMessageCapacity = 1024;
thread_local char t_last_error[kMessageCapacity] = "";
}  // namespace

void set_last_error(const char* op, const char* detail) noexcept {
    if (op != nullptr)
        std::snprintf(t_last_error, kMessageCapacity, "%s: %s", op, detail);
    else
        std::snprintf(t_last_error, kMessageCapacity, "%s", detail);
}

void Args::fail(lrm_status status, const char* format, ...) const {
    char detail[kMessageCapacity];
    va_list list;
    va_start(list, format);
    std::vsnprintf(detail, sizeof detail, format, list);
    va_end(list);
    throw Error(status, std::string(op_) + ": " + detail);
}

const Args& Args::not_null(const void* pointer, const char* name) const {
    if (pointer == nullptr) fail(LRM_STATUS_INVALID_ARGUMENT, "argument '%s' is NULL", name);
    return *this;
}

const Args& Args::positive(int64_t value, const char* name) const {
    if (value <= 0) fail(LRM_STATUS_INVALID_ARGUMENT, "%s must be > 0, got %" PRId64, name, value);
    return *this;
}

const Args& Args::finite(float value, const char* name) const {
    if (!std::isfinite(value))
        fail(LRM_STATUS_INVALID_ARGUMENT, "%s must be finite, got %g", name, static_cast<double>(value));
    return *this;
}

int64_t Args::elements(std::initializer_list<int64_t> sizes, const char* what) const {
    // Bytes must stay addressable too: keep the element count below 2^62 / 4.
    constexpr int64_t kLimit = std::numeric_limits<int64_t>::max() / 16;
    int64_t product = 1;
    for (int64_t size : sizes) {
        if (size <= 0) fail(LRM_STATUS_INVALID_ARGUMENT, "%s has a non-positive size %" PRId64, what, size);
        if (product > kLimit / size) fail(LRM_STATUS_INVALID_ARGUMENT, "%s is too large to address", what);
        product *= size;
    }
    return product;
}

int Args::blas_int(int64_t value, const char* name) const {
    if (value > std::numeric_limits<int>::max())
        fail(LRM_STATUS_UNSUPPORTED, "%s = %" PRId64 " exceeds the 32-bit BLAS interface (max %d)", name, value,
             std::numeric_limits<int>::max());
    return static_cast<int>(value);
}

}  // namespace lrm

extern "C" {

LRM_API const char* lrm_last_error(void) { return lrm::t_last_error; }

LRM_API void lrm_clear_error(void) { lrm::t_last_error[0] = '\0'; }

}  // extern "C"
