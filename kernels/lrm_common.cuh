/*
 * lrm_common.cuh — prelude shared by the CUDA kernels in kernels/ (NVRTC/NVCC) and native/ (g++).
 *
 * Every header in kernels/ holds per-element math written once and compiled twice:
 *  - by NVRTC/NVCC, where LRM_HD is `__host__ __device__ __forceinline__`;
 *  - by the host C++ compiler for the CPU engine, where LRM_HD is `inline`
 *    (the qualifiers vanish; `inline` keeps header definitions ODR-safe when
 *    several .cpp files include the same header).
 * A build may pre-define LRM_HD to override both.
 *
 * Rules for these headers: no C++ standard library (NVRTC has none), only the C
 * math functions every toolchain provides (expf, exp2f, logf, erff, floorf, fabsf,
 * sqrtf, fmaxf), `long long` instead of int64_t, plain structs, no exceptions.
 */
#ifndef LRM_COMMON_CUH
#define LRM_COMMON_CUH

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#  ifndef LRM_HD
#    define LRM_HD __host__ __device__ __forceinline__
#  endif
#else
#  ifndef LRM_HD
#    define LRM_HD inline
#  endif
#  include <math.h>
#endif

/* −infinity; NVRTC has no <math.h> and so no INFINITY/HUGE_VALF. */
#if defined(__CUDACC_RTC__)
#  define LRM_NEG_INF __int_as_float(0xff800000)
#else
#  define LRM_NEG_INF (-HUGE_VALF)
#endif

#define LRM_LOG2E 1.44269504088896340736f /* log2(e) */
#define LRM_LN2 0.693147180559945309417f  /* ln(2)   */

#endif /* LRM_COMMON_CUH */
