// conv_avx512.cpp — conv.cpp's patch-embedding products compiled a second time, for AVX-512.
//
// CMakeLists.txt gives this file -march=x86-64-v4 (and 512-bit auto-vectorisation);
// cpu_dispatch.cpp calls lrm::kernels_avx512::patch_embed_forward / patch_embed_weight_grad only on CPUs (and
// OSes) with AVX-512. This unit must not define anything the linker could share
// with baseline code: conv.cpp puts those in namespace LRM_KERNEL_NS
// (kernels_avx512 here) and leaves out the rest (deconvolution, C entry points), the shared headers keep
// their code in unnamed namespaces, and the per-element math from kernels/*.cuh
// gets internal linkage from the LRM_HD definition below (cpu_dispatch.hpp has
// the whole story).
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || !defined(__AVX512VL__)
#error "conv_avx512.cpp must be compiled with -march=x86-64-v4 (see native/CMakeLists.txt)"
#endif

#define LRM_KERNELS_AVX512 1
#define LRM_HD static inline
#include "conv.cpp"
