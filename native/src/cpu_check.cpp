// cpu_check.cpp — can this CPU run the library? The main build uses the extensions of
// -march=${LRM_CPU_ARCH} (x86-64-v3 by default: AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE)
// anywhere, and on a CPU without them the first call that reaches such code dies with
// SIGILL. lrm_cpu_missing_features names what is missing, so the C# loader
// (LibraryResolver) can refuse the library with a clear message before any other call.
//
// This file alone is compiled for plain x86-64 (native/CMakeLists.txt), so it runs on
// any x86-64 CPU. It must stay plain C: no C++ library templates or inline functions,
// whose one linked copy could come from a unit compiled for the newer CPU. The static
// initialisers of the other units (library.cpp) use no vector instructions, so loading
// the library is safe; calling into it is not, until this check says so.
//
// Environment (tests): LRM_CPU_PRETEND_MISSING=avx2,fma treats the named extensions as
// absent, so the refusal can be tested on a CPU that has them.
#include "cpu_check.hpp"
#include "lrm_native.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#ifndef LRM_CPU_ARCH_FLAG
#define LRM_CPU_ARCH_FLAG ""
#endif

namespace {

struct FeatureName {
    uint32_t bit;
    const char* name;
};

// Names as /proc/cpuinfo spells them (LZCNT is "abm" there; we say what the instruction is).
const FeatureName kFeatureNames[] = {
    {lrm::kCpuSse3, "sse3"},         {lrm::kCpuSsse3, "ssse3"},       {lrm::kCpuSse41, "sse4.1"},
    {lrm::kCpuSse42, "sse4.2"},      {lrm::kCpuPopcnt, "popcnt"},     {lrm::kCpuAvx, "avx"},
    {lrm::kCpuAvx2, "avx2"},         {lrm::kCpuFma, "fma"},           {lrm::kCpuF16c, "f16c"},
    {lrm::kCpuBmi1, "bmi1"},         {lrm::kCpuBmi2, "bmi2"},         {lrm::kCpuLzcnt, "lzcnt"},
    {lrm::kCpuMovbe, "movbe"},       {lrm::kCpuAvx512f, "avx512f"},   {lrm::kCpuAvx512bw, "avx512bw"},
    {lrm::kCpuAvx512cd, "avx512cd"}, {lrm::kCpuAvx512dq, "avx512dq"}, {lrm::kCpuAvx512vl, "avx512vl"},
};

#if defined(__x86_64__) || defined(__i386__)
// What the CPU offers and the OS saves on a context switch (ymm for AVX, opmask/zmm for AVX-512).
uint32_t available_features() {
    uint32_t features = 0;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned ecx1 = ecx;
    if (ecx1 & bit_SSE3) features |= lrm::kCpuSse3;
    if (ecx1 & bit_SSSE3) features |= lrm::kCpuSsse3;
    if (ecx1 & bit_SSE4_1) features |= lrm::kCpuSse41;
    if (ecx1 & bit_SSE4_2) features |= lrm::kCpuSse42;
    if (ecx1 & bit_POPCNT) features |= lrm::kCpuPopcnt;
    if (ecx1 & bit_MOVBE) features |= lrm::kCpuMovbe;
    unsigned xcr0 = 0;
    if (ecx1 & bit_OSXSAVE) {
        unsigned xcr0_high = 0;
        // xgetbv with ECX = 0 reads XCR0 (as asm: the intrinsic would need -mxsave).
        __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
        (void)xcr0_high;
    }
    const bool os_saves_ymm = (xcr0 & 0x6u) == 0x6u;
    const bool os_saves_zmm = os_saves_ymm && (xcr0 & 0xe0u) == 0xe0u;
    if (os_saves_ymm) {
        if (ecx1 & bit_AVX) features |= lrm::kCpuAvx;
        if (ecx1 & bit_FMA) features |= lrm::kCpuFma;
        if (ecx1 & bit_F16C) features |= lrm::kCpuF16c;
    }
    unsigned max_leaf = 0;
    __get_cpuid(0, &max_leaf, &ebx, &ecx, &edx);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        if (ebx & bit_BMI) features |= lrm::kCpuBmi1;
        if (ebx & bit_BMI2) features |= lrm::kCpuBmi2;
        if (os_saves_ymm && (ebx & bit_AVX2)) features |= lrm::kCpuAvx2;
        if (os_saves_zmm) {
            if (ebx & bit_AVX512F) features |= lrm::kCpuAvx512f;
            if (ebx & bit_AVX512BW) features |= lrm::kCpuAvx512bw;
            if (ebx & bit_AVX512CD) features |= lrm::kCpuAvx512cd;
            if (ebx & bit_AVX512DQ) features |= lrm::kCpuAvx512dq;
            if (ebx & bit_AVX512VL) features |= lrm::kCpuAvx512vl;
        }
    }
    if (__get_cpuid(0x80000001u, &eax, &ebx, &ecx, &edx) && (ecx & bit_LZCNT)) features |= lrm::kCpuLzcnt;
    return features;
}

// LRM_CPU_PRETEND_MISSING: a comma-separated list of names from kFeatureNames.
uint32_t pretend_missing() {
    const char* list = getenv("LRM_CPU_PRETEND_MISSING");
    if (list == nullptr) return 0;
    uint32_t bits = 0;
    while (*list != '\0') {
        const char* end = strchr(list, ',');
        const size_t length = end != nullptr ? (size_t)(end - list) : strlen(list);
        for (const FeatureName& feature : kFeatureNames)
            if (strlen(feature.name) == length && strncmp(feature.name, list, length) == 0) bits |= feature.bit;
        if (end == nullptr) break;
        list = end + 1;
    }
    return bits;
}
#endif

}  // namespace

extern "C" {

LRM_API int32_t lrm_cpu_missing_features(char* buffer, int32_t capacity) {
#if defined(__x86_64__) || defined(__i386__)
    const uint32_t missing = lrm::kCompiledCpuFeatures & ~(available_features() & ~pretend_missing());
#else
    const uint32_t missing = 0;
#endif
    int32_t count = 0;
    size_t used = 0;
    if (buffer != nullptr && capacity > 0) buffer[0] = '\0';
    for (const FeatureName& feature : kFeatureNames) {
        if ((missing & feature.bit) == 0) continue;
        ++count;
        if (buffer == nullptr || capacity <= 0) continue;
        const size_t length = strlen(feature.name) + (used > 0 ? 2 : 0);
        if (used + length + 1 > (size_t)capacity) continue;
        if (used > 0) {
            memcpy(buffer + used, ", ", 2);
            used += 2;
        }
        memcpy(buffer + used, feature.name, strlen(feature.name) + 1);
        used += strlen(feature.name);
    }
    return count;
}

LRM_API const char* lrm_cpu_build_target(void) { return LRM_CPU_ARCH_FLAG; }

}  // extern "C"
