/*
 * lrm_prelude.cuh — the one prelude every kernels/NAME.cu includes first. It makes the same
 * source compile in two places:
 *
 *  - NVRTC (__CUDACC_RTC__), at run time, for the device's architecture. NVRTC knows the CUDA
 *    language (qualifiers, threadIdx, vector types, math functions, intrinsics) but has no C
 *    or C++ standard library; we need none of it.
 *  - clang's CUDA device-only mode without the CUDA toolkit (CI's compile check,
 *    tests/LrmNative.Tests/CudaCompileTests.cs):
 *      clang-14 -x cuda --cuda-device-only --cuda-gpu-arch=sm_80 -nocudainc -nocudalib -S
 *    There clang knows the qualifiers as attributes and the NVVM builtins, but nothing of the
 *    CUDA headers, so this file spells out what the kernels use: qualifiers, builtin variables,
 *    vector types, the math functions (as libdevice declarations; PTX calls them as externs),
 *    shuffles, atomics, bit casts and barriers. Only a compile check: PTX made this way is
 *    never run.
 *
 * Kernels use standard CUDA spellings (__shfl_xor_sync, atomicAdd, __float_as_uint, expf …);
 * anything added to a kernel that is not below breaks the clang check, which is the point.
 */
#ifndef LRM_PRELUDE_CUH
#define LRM_PRELUDE_CUH

#if defined(__clang__) && !defined(LRM_CLANG_CHECK)
#define LRM_CLANG_CHECK 1
/* The CUDA headers would define __CUDACC__; lrm_common.cuh keys its LRM_HD on it. __CUDACC_RTC__
 * makes the shared headers take the same branches as under NVRTC, so this check covers them. */
#ifndef __CUDACC__
#define __CUDACC__ 1
#endif
#define __CUDACC_RTC__ 1
#define HUGE_VALF __builtin_huge_valf()
#define HUGE_VAL __builtin_huge_val()

#define __host__ __attribute__((host))
#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#define __align__(n) __attribute__((aligned(n)))

typedef unsigned int uint;
struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };
struct __attribute__((aligned(8))) float2 { float x, y; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(8))) int2 { int x, y; };
struct __attribute__((aligned(16))) int4 { int x, y, z, w; };
struct __attribute__((aligned(16))) uint4 { unsigned int x, y, z, w; };
struct __attribute__((aligned(8))) uint2 { unsigned int x, y; };
static __device__ __forceinline__ float4 make_float4(float x, float y, float z, float w) { float4 r = {x, y, z, w}; return r; }
static __device__ __forceinline__ float2 make_float2(float x, float y) { float2 r = {x, y}; return r; }

#define threadIdx (uint3{(unsigned int)__nvvm_read_ptx_sreg_tid_x(), (unsigned int)__nvvm_read_ptx_sreg_tid_y(), (unsigned int)__nvvm_read_ptx_sreg_tid_z()})
#define blockIdx (uint3{(unsigned int)__nvvm_read_ptx_sreg_ctaid_x(), (unsigned int)__nvvm_read_ptx_sreg_ctaid_y(), (unsigned int)__nvvm_read_ptx_sreg_ctaid_z()})
#define blockDim (dim3{(unsigned int)__nvvm_read_ptx_sreg_ntid_x(), (unsigned int)__nvvm_read_ptx_sreg_ntid_y(), (unsigned int)__nvvm_read_ptx_sreg_ntid_z()})
#define gridDim (dim3{(unsigned int)__nvvm_read_ptx_sreg_nctaid_x(), (unsigned int)__nvvm_read_ptx_sreg_nctaid_y(), (unsigned int)__nvvm_read_ptx_sreg_nctaid_z()})
#define warpSize 32

/* libdevice, as the CUDA headers declare it. */
#define LRM_LIBDEVICE1(ret, name, type) extern "C" __device__ ret __nv_##name(type); \
    static __device__ __forceinline__ ret name(type x) { return __nv_##name(x); }
#define LRM_LIBDEVICE2(ret, name, type) extern "C" __device__ ret __nv_##name(type, type); \
    static __device__ __forceinline__ ret name(type x, type y) { return __nv_##name(x, y); }
LRM_LIBDEVICE1(float, expf, float)
LRM_LIBDEVICE1(float, exp2f, float)
LRM_LIBDEVICE1(float, logf, float)
LRM_LIBDEVICE1(float, log2f, float)
LRM_LIBDEVICE1(float, log1pf, float)
LRM_LIBDEVICE1(float, erff, float)
LRM_LIBDEVICE1(float, sqrtf, float)
LRM_LIBDEVICE1(float, rsqrtf, float)
LRM_LIBDEVICE1(float, fabsf, float)
LRM_LIBDEVICE1(float, floorf, float)
LRM_LIBDEVICE1(float, ceilf, float)
LRM_LIBDEVICE1(float, tanhf, float)
LRM_LIBDEVICE2(float, fmaxf, float)
LRM_LIBDEVICE2(float, fminf, float)
LRM_LIBDEVICE1(double, sqrt, double)
LRM_LIBDEVICE1(double, fabs, double)
LRM_LIBDEVICE1(double, floor, double)
LRM_LIBDEVICE1(double, exp, double)
extern "C" __device__ float __nv_fast_expf(float);
static __device__ __forceinline__ float __expf(float x) { return __nv_fast_expf(x); }
extern "C" __device__ float __nv_fmaf(float, float, float);
static __device__ __forceinline__ float fmaf(float a, float b, float c) { return __nv_fmaf(a, b, c); }
#undef LRM_LIBDEVICE1
#undef LRM_LIBDEVICE2

/* Bit casts. */
static __device__ __forceinline__ float __int_as_float(int x) { return __builtin_bit_cast(float, x); }
static __device__ __forceinline__ float __uint_as_float(unsigned int x) { return __builtin_bit_cast(float, x); }
static __device__ __forceinline__ int __float_as_int(float x) { return __builtin_bit_cast(int, x); }
static __device__ __forceinline__ unsigned int __float_as_uint(float x) { return __builtin_bit_cast(unsigned int, x); }

/* Barriers, shuffles, atomics. */
static __device__ __forceinline__ void __syncwarp(unsigned int mask = 0xffffffffu) { __nvvm_bar_warp_sync(mask); }
static __device__ __forceinline__ float __shfl_xor_sync(unsigned int mask, float v, int lane_mask, int width = 32) {
    return __nvvm_shfl_sync_bfly_f32(mask, v, lane_mask, ((32 - width) << 8) | 0x1f);
}
static __device__ __forceinline__ int __shfl_xor_sync(unsigned int mask, int v, int lane_mask, int width = 32) {
    return __nvvm_shfl_sync_bfly_i32(mask, v, lane_mask, ((32 - width) << 8) | 0x1f);
}
static __device__ __forceinline__ float __shfl_sync(unsigned int mask, float v, int lane, int width = 32) {
    return __nvvm_shfl_sync_idx_f32(mask, v, lane, ((32 - width) << 8) | 0x1f);
}
static __device__ __forceinline__ int __shfl_sync(unsigned int mask, int v, int lane, int width = 32) {
    return __nvvm_shfl_sync_idx_i32(mask, v, lane, ((32 - width) << 8) | 0x1f);
}
static __device__ __forceinline__ int __shfl_up_sync(unsigned int mask, int v, unsigned int delta, int width = 32) {
    return __nvvm_shfl_sync_up_i32(mask, v, delta, (32 - width) << 8);
}
static __device__ __forceinline__ unsigned int __ballot_sync(unsigned int mask, int predicate) {
    return __nvvm_vote_ballot_sync(mask, predicate);
}
static __device__ __forceinline__ int __popc(unsigned int x) { return __builtin_popcount(x); }
static __device__ __forceinline__ float atomicAdd(float* address, float value) { return __nvvm_atom_add_gen_f(address, value); }
static __device__ __forceinline__ int atomicAdd(int* address, int value) { return __nvvm_atom_add_gen_i(address, value); }
static __device__ __forceinline__ unsigned int atomicAdd(unsigned int* address, unsigned int value) {
    return (unsigned int)__nvvm_atom_add_gen_i((int*)address, (int)value);
}
#endif /* clang compile check */

/* NVRTC (__CUDACC_RTC__ without LRM_CLANG_CHECK): the CUDA language is built in; nothing to declare. */

/* Shared by both compilers. */
#define LRM_FULL_MASK 0xffffffffu

/* Grid-stride loop over [0, n) with 64-bit indices. */
#define LRM_GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)blockDim.x * gridDim.x)

static __device__ __forceinline__ float lrm_warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(LRM_FULL_MASK, v, offset);
    return v;
}

static __device__ __forceinline__ float lrm_warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(LRM_FULL_MASK, v, offset));
    return v;
}

/* Exclusive prefix sum of one int per thread across the block, in thread order; blockDim.x a
 * multiple of 32 (at most 1024). warp_totals: 32 ints of shared memory; *total receives the
 * block's sum. Contains barriers: every thread of the block must call it. */
static __device__ __forceinline__ int lrm_block_exclusive_scan(int value, int* warp_totals, int* total) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    int inclusive = value;
    for (int offset = 1; offset < 32; offset <<= 1) {
        const int other = __shfl_up_sync(LRM_FULL_MASK, inclusive, offset);
        if (lane >= offset) inclusive += other;
    }
    if (lane == 31) warp_totals[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
        int running = lane < warps ? warp_totals[lane] : 0;
        for (int offset = 1; offset < 32; offset <<= 1) {
            const int other = __shfl_up_sync(LRM_FULL_MASK, running, offset);
            if (lane >= offset) running += other;
        }
        warp_totals[lane] = running; /* inclusive over warps; lanes past the last warp hold the total */
    }
    __syncthreads();
    const int before = warp > 0 ? warp_totals[warp - 1] : 0;
    *total = warp_totals[31];
    __syncthreads(); /* warp_totals may be reused by the next call */
    return before + inclusive - value;
}

#endif /* LRM_PRELUDE_CUH */
