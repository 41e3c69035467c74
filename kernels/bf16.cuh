/*
 * bf16.cuh — fp32 ⇄ bfloat16 bit conversions (bf16 = the upper 16 bits of fp32).
 *   fp32 → bf16: round to nearest, ties to even; NaN stays a (quiet) NaN instead
 *                of rounding up into ±infinity; ±inf and overflow behave as IEEE.
 *   bf16 → fp32: exact (append 16 zero bits).
 */
#ifndef LRM_BF16_CUH
#define LRM_BF16_CUH

#include "lrm_common.cuh"

LRM_HD unsigned short lrm_bf16_from_bits(unsigned int bits) {
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((bits >> 16) | 0x0040u);
    const unsigned int rounding = 0x7fffu + ((bits >> 16) & 1u);
    return (unsigned short)((bits + rounding) >> 16);
}

LRM_HD unsigned int lrm_bf16_to_bits(unsigned short h) { return (unsigned int)h << 16; }

#endif /* LRM_BF16_CUH */
