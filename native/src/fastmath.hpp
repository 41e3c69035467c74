// fastmath.hpp — a vectorisable 2^x for the CPU attention softmax, and the normal CDF for GELU.
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
    n_int = shifted_bits - round_bits;  // = n, exactly (for NaN: garbage, replaced below)
    // Assembled in uint32_t: the same bits for n ∈ [−126, 0], and no signed overflow for
    // the garbage n of a NaN input.
    const uint32_t scale_bits = (static_cast<uint32_t>(n_int) + 127u) << 23;
    float scale;
    std::memcpy(&scale, &scale_bits, sizeof scale);
    const float result = p * scale;
    return x < -126.0f ? 0.0f : (x != x ? x : result);
}

// The standard normal CDF Φ(x) for the exact GELU, branch-free so loops over it vectorise
// (glibc's erff is a scalar call, ~10 ns). With z = |x|/√2:
//   erfc(z) = e^(−z²) · t · Q(t),  t = 1/(1 + 0.3·z),  Q a degree-8 polynomial
//   Φ(x) = 1 − ½·erfc(z) for x ≥ 0,  ½·erfc(z) for x < 0 (no cancellation on either side).
// Q is our own weighted least-squares fit of erfcx(z)/t = e^(z²)·erfc(z)/t over z ∈ [0, 10]
// (tools/fit_gelu_cdf.py): relative error of the fit 2.3e−8; in float, Φ and GELU have relative
// error < 1.3e−6 for x > −3 and < 2.5e−6 for x > −5 (the rounding of z² in the exponent grows it
// in the far left tail, 1.7e−5 at x = −11, where Φ < 1e−27), GELU' absolute error < 3e−7; the
// erff form 0.5·x·(1 + erff(x/√2)) is far worse there (1 + erff cancels: 5e−2 at x = −5). e^(−z²) = e^(−x²/2) is returned as
// well: φ(x) = e^(−x²/2)/√(2π) for the derivative. NaN gives NaN; ±∞ gives Φ = 1 / 0.
inline float normal_cdf(float x, float& gauss) {
    const float z = __builtin_fabsf(x) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.3f * z);
    float q = -0.12937916815280914f;
    q = q * t + 0.4848440885543823f;
    q = q * t - 0.5107429027557373f;
    q = q * t + 0.5458968877792358f;
    q = q * t - 0.09333591163158417f;
    q = q * t + 0.21433749794960022f;
    q = q * t + 0.14849859476089478f;
    q = q * t + 0.1706913709640503f;
    q = q * t + 0.16918951272964478f;
    const float e = exp2_nonpositive(-(z * z) * 1.4426950408889634f);
    const float half_erfc = 0.5f * e * (t * q);
    gauss = e;
    return x >= 0.0f ? 1.0f - half_erfc : half_erfc;
}

// Exact GELU x·Φ(x) on the CPU (kernels/activation.cuh's lrm_gelu is the erff form the GPU uses).
inline float gelu_fast(float x) {
    float gauss;
    return x * normal_cdf(x, gauss);
}

// GELU'(x) = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π).
inline float gelu_derivative_fast(float x) {
    float gauss;
    const float cdf = normal_cdf(x, gauss);
    return cdf + x * (gauss * 0.3989422804014327f);
}

}  // namespace
}  // namespace lrm
