// fastmath.hpp — a vectorisable 2^x for the CPU attention softmax.
//
// glibc's exp2f is a scalar call, and without -ffast-math (which we refuse: it
// would break NaN propagation) GCC will not use the vector libmvec variants. This
// one is branch-free so GCC vectorises loops over it:
//   x = n + r, n = round(x), r ∈ [−½, ½]
//   2^r by its Taylor series e^(r·ln2) to degree 7 (truncation < 6e−9 relative,
//        below float rounding), 2^n assembled in the exponent bits.
// Rounding uses the 1.5·2^23 trick (adding it leaves round-to-nearest(x) in the
// low mantissa bits), which needs IEEE adds (no -ffast-math reassociation).
// Domain: −∞ ≤ x ≤ 0, the shifted scores s − max. x < −126 returns 0 (the true
// value is subnormal or below, negligible next to the row's maximum term 1);
// NaN returns NaN.
// In an unnamed namespace: compiled once per instruction set (cpu_dispatch.hpp),
// each translation unit keeps its own copy.
#pragma once

#include <cstdint>
#include <cstring>

namespace lrm {
namespace {

inline float exp2_nonpositive(float x) {
    const float kRound = 12582912.0f;  // 1.5·2^23
    const float xc = x < -126.0f ? -126.0f : x;
    const float shifted = xc + kRound;
    const float n = shifted - kRound;
    const float r = xc - n;
    // e^(r ln2) = Σ (r ln2)^i / i!, Horner in r with c_i = ln2^i / i!.
    float p = 1.5252733804059841e-05f;   // ln2^7/7!
    p = p * r + 1.5403530393381606e-04f; // ln2^6/6!
    p = p * r + 1.3333558146428443e-03f; // ln2^5/5!
    p = p * r + 9.6181291076284772e-03f; // ln2^4/4!
    p = p * r + 5.5504108664821580e-02f; // ln2^3/3!
    p = p * r + 2.4022650695910071e-01f; // ln2^2/2!
    p = p * r + 6.9314718055994531e-01f; // ln2
    p = p * r + 1.0f;
    int32_t shifted_bits, n_int;
    std::memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
    const float kRoundCopy = kRound;
    int32_t round_bits;
    std::memcpy(&round_bits, &kRoundCopy, sizeof round_bits);
    n_int = shifted_bits - round_bits;  // = n, exactly
    const int32_t scale_bits = (n_int + 127) << 23;
    float scale;
    std::memcpy(&scale, &scale_bits, sizeof scale);
    const float result = p * scale;
    return x < -126.0f ? 0.0f : (x != x ? x : result);
}

}  // namespace
}  // namespace lrm
