// cpu_check.hpp — the instruction-set extensions the library's main build was compiled for,
// as bits, so cpu_check.cpp can compare them with what the CPU and the OS offer.
//
// LRM_CPU_COMPILED_FEATURES expands to the bits of the extensions the including
// translation unit's own compiler flags enable (-march=${LRM_CPU_ARCH}); library.cpp,
// compiled with the library's flags, stores the value in lrm::kCompiledCpuFeatures.
#pragma once

#include <cstdint>

namespace lrm {

enum CpuFeature : uint32_t {
    kCpuSse3 = 1u << 0,
    kCpuSsse3 = 1u << 1,
    kCpuSse41 = 1u << 2,
    kCpuSse42 = 1u << 3,
    kCpuPopcnt = 1u << 4,
    kCpuAvx = 1u << 5,
    kCpuAvx2 = 1u << 6,
    kCpuFma = 1u << 7,
    kCpuF16c = 1u << 8,
    kCpuBmi1 = 1u << 9,
    kCpuBmi2 = 1u << 10,
    kCpuLzcnt = 1u << 11,
    kCpuMovbe = 1u << 12,
    kCpuAvx512f = 1u << 13,
    kCpuAvx512bw = 1u << 14,
    kCpuAvx512cd = 1u << 15,
    kCpuAvx512dq = 1u << 16,
    kCpuAvx512vl = 1u << 17,
};

// The extensions the main build needs (from the including unit's -march).
extern const uint32_t kCompiledCpuFeatures;

}  // namespace lrm

#if defined(__SSE3__)
#define LRM_CF_SSE3 ::lrm::kCpuSse3
#else
#define LRM_CF_SSE3 0u
#endif
#if defined(__SSSE3__)
#define LRM_CF_SSSE3 ::lrm::kCpuSsse3
#else
#define LRM_CF_SSSE3 0u
#endif
#if defined(__SSE4_1__)
#define LRM_CF_SSE41 ::lrm::kCpuSse41
#else
#define LRM_CF_SSE41 0u
#endif
#if defined(__SSE4_2__)
#define LRM_CF_SSE42 ::lrm::kCpuSse42
#else
#define LRM_CF_SSE42 0u
#endif
#if defined(__POPCNT__)
#define LRM_CF_POPCNT ::lrm::kCpuPopcnt
#else
#define LRM_CF_POPCNT 0u
#endif
#if defined(__AVX__)
#define LRM_CF_AVX ::lrm::kCpuAvx
#else
#define LRM_CF_AVX 0u
#endif
#if defined(__AVX2__)
#define LRM_CF_AVX2 ::lrm::kCpuAvx2
#else
#define LRM_CF_AVX2 0u
#endif
#if defined(__FMA__)
#define LRM_CF_FMA ::lrm::kCpuFma
#else
#define LRM_CF_FMA 0u
#endif
#if defined(__F16C__)
#define LRM_CF_F16C ::lrm::kCpuF16c
#else
#define LRM_CF_F16C 0u
#endif
#if defined(__BMI__)
#define LRM_CF_BMI1 ::lrm::kCpuBmi1
#else
#define LRM_CF_BMI1 0u
#endif
#if defined(__BMI2__)
#define LRM_CF_BMI2 ::lrm::kCpuBmi2
#else
#define LRM_CF_BMI2 0u
#endif
#if defined(__LZCNT__)
#define LRM_CF_LZCNT ::lrm::kCpuLzcnt
#else
#define LRM_CF_LZCNT 0u
#endif
#if defined(__MOVBE__)
#define LRM_CF_MOVBE ::lrm::kCpuMovbe
#else
#define LRM_CF_MOVBE 0u
#endif
#if defined(__AVX512F__)
#define LRM_CF_AVX512F ::lrm::kCpuAvx512f
#else
#define LRM_CF_AVX512F 0u
#endif
#if defined(__AVX512BW__)
#define LRM_CF_AVX512BW ::lrm::kCpuAvx512bw
#else
#define LRM_CF_AVX512BW 0u
#endif
#if defined(__AVX512CD__)
#define LRM_CF_AVX512CD ::lrm::kCpuAvx512cd
#else
#define LRM_CF_AVX512CD 0u
#endif
#if defined(__AVX512DQ__)
#define LRM_CF_AVX512DQ ::lrm::kCpuAvx512dq
#else
#define LRM_CF_AVX512DQ 0u
#endif
#if defined(__AVX512VL__)
#define LRM_CF_AVX512VL ::lrm::kCpuAvx512vl
#else
#define LRM_CF_AVX512VL 0u
#endif
#define LRM_CF_AVX512 (LRM_CF_AVX512F | LRM_CF_AVX512BW | LRM_CF_AVX512CD | LRM_CF_AVX512DQ | LRM_CF_AVX512VL)

#define LRM_CPU_COMPILED_FEATURES                                                                                  \
    (LRM_CF_SSE3 | LRM_CF_SSSE3 | LRM_CF_SSE41 | LRM_CF_SSE42 | LRM_CF_POPCNT | LRM_CF_AVX | LRM_CF_AVX2 |           \
     LRM_CF_FMA | LRM_CF_F16C | LRM_CF_BMI1 | LRM_CF_BMI2 | LRM_CF_LZCNT | LRM_CF_MOVBE | LRM_CF_AVX512)
