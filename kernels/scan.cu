/*
 * scan.cu — exclusive prefix sum of int counts, in place, for stream compaction (marching
 * cubes). Three kernels the host chains recursively:
 *
 *   scan_block_kernel  each block of 1024 elements: exclusive scan in place, block total into
 *                      block_sums[blockIdx.x]
 *   (the host scans block_sums the same way, down to a single block)
 *   scan_add_kernel    data[i] += scanned block_sums[i / 1024]
 *
 * The block scan is lrm_block_exclusive_scan (kernels/lrm_prelude.cuh): warp-level inclusive
 * scans with shuffles, then a scan of the 32 warp totals by warp 0.
 * Integer sums are exact, so the result is independent of the decomposition.
 */
#include "lrm_prelude.cuh"

#define LRM_SCAN_BLOCK 1024

extern "C" __global__ void __launch_bounds__(1024) scan_block_kernel(int* data,        // (n), in place
                                                                     int* block_sums,  // (⌈n/1024⌉)
                                                                     long long n) {
    __shared__ int warp_totals[32];
    const long long i = (long long)blockIdx.x * LRM_SCAN_BLOCK + threadIdx.x;
    int total;
    const int exclusive = lrm_block_exclusive_scan(i < n ? data[i] : 0, warp_totals, &total);
    if (i < n) data[i] = exclusive;
    if (threadIdx.x == 0) block_sums[blockIdx.x] = total;
}

extern "C" __global__ void scan_add_kernel(int* data, const int* block_offsets, long long n) {
    LRM_GRID_STRIDE(i, n) data[i] += block_offsets[i / LRM_SCAN_BLOCK];
}
