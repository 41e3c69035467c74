// errors.hpp — how LrmNative reports failures across the C boundary.
//
// Every exported function is a thin shell:
//
//   LRM_API lrm_status lrm_foo_forward(float* out, const float* inp, int64_t n) {
//       return lrm::guarded("lrm_foo_forward", [&](const lrm::Args& args) {
//           args.not_null(out, "out").not_null(inp, "inp").positive(n, "n");
//           foo_forward(out, inp, n);
//       });
//   }
//
// Argument checks throw lrm::Error (status + message); guarded() catches it and
// everything else (std::bad_alloc → OUT_OF_MEMORY, any other exception →
// INTERNAL), stores the message in a thread-local buffer for lrm_last_error() and
// returns the status, so no exception ever crosses the C ABI. Messages start
// with the entry point's name: "lrm_gemm_forward: argument 'a' is NULL".
//
// Exceptions must not escape an OpenMP parallel region (that terminates the
// process), so kernels allocate their scratch before entering one.
#pragma once

#include "lrm_native.h"

#include <cstdint>
#include <exception>
#include <new>
#include <string>

namespace lrm {

class Error : public std::exception {
public:
    Error(lrm_status status, std::string message) : status_(status), message_(std::move(message)) {}
    lrm_status status() const noexcept { return status_; }
    const char* what() const noexcept override { return message_.c_str(); }

private:
    lrm_status status_;
    std::string message_;
};

// Stores "<op>: <detail>" as this thread's last error. Never throws or allocates.
void set_last_error(const char* op, const char* detail) noexcept;

// Argument validation for one entry point; each check throws lrm::Error on failure
// and returns *this so checks chain.
class Args {
public:
    explicit Args(const char* op) noexcept : op_(op) {}
    const char* op() const noexcept { return op_; }

    // Throws Error(status, "<op>: <printf-formatted detail>").
    [[noreturn]] void fail(lrm_status status, const char* format, ...) const
        __attribute__((format(printf, 3, 4)));

    // "argument 'name' is NULL"
    const Args& not_null(const void* pointer, const char* name) const;
    // "name must be > 0, got v"
    const Args& positive(int64_t value, const char* name) const;
    // Rejects NaN and ±inf: "name must be finite, got nan"
    const Args& finite(float value, const char* name) const;
    // Product of sizes that must fit in memory addressing (no int64 wrap-around
    // turning a lying size into a small buffer): "<what> is too large to address".
    // Messages stay ASCII so any host decodes them.
    int64_t elements(std::initializer_list<int64_t> sizes, const char* what) const;
    // A size handed to BLAS, whose interface uses 32-bit ints: UNSUPPORTED beyond.
    int blas_int(int64_t value, const char* name) const;

private:
    const char* op_;
};

template <class Body>
lrm_status guarded(const char* op, Body&& body) noexcept {
    try {
        body(static_cast<const Args&>(Args(op)));
        return LRM_STATUS_OK;
    } catch (const Error& error) {
        set_last_error(nullptr, error.what());
        return error.status();
    } catch (const std::bad_alloc&) {
        set_last_error(op, "out of memory");
        return LRM_STATUS_OUT_OF_MEMORY;
    } catch (const std::exception& error) {
        set_last_error(op, error.what());
        return LRM_STATUS_INTERNAL;
    } catch (...) {
        set_last_error(op, "unknown internal error");
        return LRM_STATUS_INTERNAL;
    }
}

}  // namespace lrm
