/*
 * lrm_emulate.h — runs our CUDA kernels on the CPU, for tests on machines without a GPU.
 *
 * The emulator's NVRTC (nvrtc.cpp) compiles a kernels/NAME.cu program with the host C++ compiler,
 * force-including this file first, into a shared library that its driver (driver.cpp) loads as the
 * "CUBIN". The kernel source is unchanged apart from the few spots that are inline PTX
 * (#if defined(LRM_EMULATE) in kernels/attention.cu). It sees the CUDA language that
 * kernels/lrm_prelude.cuh spells out for clang's compile check — qualifiers, builtin variables,
 * vector types, math, shuffles, votes, atomics, barriers — and nothing else, so that prelude and
 * this file describe the same contract.
 *
 * Execution model. A launch runs its blocks one after another on the calling thread. The threads
 * of a block are fibers (our own x86-64 context switch, about 20 ns): each runs the kernel until it
 * ends or reaches a collective — __syncthreads, __syncwarp, a shuffle, a ballot, mma.sync,
 * ldmatrix — and then yields. A block barrier releases when every thread of the block that has not
 * exited has arrived; a warp collective when every lane of its mask that has not exited has
 * arrived, and each lane then computes its own result from all lanes' inputs, as the hardware
 * defines it (PTX ISA fragment layouts for mma.m16n8k16 and ldmatrix). Threads that can never be
 * released (a __syncthreads some threads skip while others wait in a shuffle) are reported as a
 * deadlock naming the kernel and block, instead of hanging. cp.async copies are queued per thread
 * and performed at cp.async.wait_group, so a read before the wait sees stale shared memory, as it
 * may on the GPU. Shared memory, static and dynamic, is filled with 0xFF bytes (NaN) for every block, so reading
 * what no thread wrote shows up, and the threads run first-to-last in one block and last-to-first
 * in the next, so a missing __syncthreads between a shared-memory write and another thread's read
 * shows up in one of the two orders; blocks run in grid order in one launch and in reverse in the
 * next, so a result that depends on the order of blocks changes between launches.
 *
 * What it cannot show: speed, the GPU's rounding of fast-math intrinsics (__expf is expf here), data
 * races between blocks (blocks never overlap), and out-of-bounds accesses that stay inside host
 * memory. A kernel that passes here can still fail on a GPU; one that fails here is wrong.
 */
#ifndef LRM_EMULATE_H
#define LRM_EMULATE_H

#define LRM_EMULATE 1

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

#include <cmath>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>

#if !defined(__x86_64__)
#error "the CUDA emulator's context switch is written for x86-64"
#endif

/* ---- the CUDA language ------------------------------------------------------------------------ */

#define __host__
#define __device__
#define __global__
/* Statics (one launch at a time per module: see g_launch_lock) in a section of their own, so that
 * every block can start with them filled with 0xFF (lrm_emu_launch), as the dynamic part is. */
#define __shared__ static __attribute__((section("lrm_shared")))
extern "C" unsigned char __start_lrm_shared[] __attribute__((weak, visibility("hidden")));
extern "C" unsigned char __stop_lrm_shared[] __attribute__((weak, visibility("hidden")));
#define __constant__ static const
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };
struct __attribute__((aligned(8))) float2 { float x, y; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(8))) int2 { int x, y; };
struct __attribute__((aligned(16))) int4 { int x, y, z, w; };
struct __attribute__((aligned(16))) uint4 { unsigned int x, y, z, w; };
struct __attribute__((aligned(8))) uint2 { unsigned int x, y; };
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline float2 make_float2(float x, float y) { return float2{x, y}; }

static inline float lrm_emu_expf(float x) { return expf(x); }
#define __expf lrm_emu_expf /* glibc declares its own __expf */
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }

static inline float __int_as_float(int x) { float r; memcpy(&r, &x, 4); return r; }
static inline float __uint_as_float(unsigned int x) { float r; memcpy(&r, &x, 4); return r; }
static inline int __float_as_int(float x) { int r; memcpy(&r, &x, 4); return r; }
static inline unsigned int __float_as_uint(float x) { unsigned int r; memcpy(&r, &x, 4); return r; }
static inline int __popc(unsigned int x) { return __builtin_popcount(x); }

static inline float atomicAdd(float* address, float value) {
    float old, desired;
    __atomic_load(address, &old, __ATOMIC_RELAXED);
    do {
        desired = old + value;
    } while (!__atomic_compare_exchange(address, &old, &desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}
static inline int atomicAdd(int* address, int value) { return __atomic_fetch_add(address, value, __ATOMIC_RELAXED); }
static inline unsigned int atomicAdd(unsigned int* address, unsigned int value) {
    return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}

/* ---- fibers ----------------------------------------------------------------------------------- */

extern "C" void lrm_emu_switch(void** save_sp, void* load_sp);
extern "C" void lrm_emu_fiber_start();
/* Saves the callee-saved registers on the current stack, stores the stack pointer in *save_sp, and
 * resumes the stack load_sp (kernels never change MXCSR or the x87 control word, so they stay). A new fiber's stack is laid out as
 * if it had switched away just before calling lrm_emu_fiber_start, which calls r13(r12). */
asm(R"(
    .text
    .globl lrm_emu_switch
    .hidden lrm_emu_switch
    .type lrm_emu_switch, @function
lrm_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size lrm_emu_switch, .-lrm_emu_switch

    .globl lrm_emu_fiber_start
    .hidden lrm_emu_fiber_start
    .type lrm_emu_fiber_start, @function
lrm_emu_fiber_start:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size lrm_emu_fiber_start, .-lrm_emu_fiber_start
)");

namespace lrm_emu {

enum FiberState { Runnable, AtBarrier, AtWarp, Done };

/* One queued cp.async: 16 bytes, or zeros when source_bytes is 0. */
struct AsyncCopy {
    void* destination;
    const void* source;
    int source_bytes;
};

struct Fiber {
    void* sp = nullptr;
    unsigned char* stack = nullptr;
    uint3 thread_idx{};
    int linear = 0, warp = 0, lane = 0;
    FiberState state = Done;
    /* cp.async groups: committed groups are [group_begin[i], group_begin[i + 1]) of copies; the
     * copies after the last commit form the open group. */
    AsyncCopy* copies = nullptr;
    int copy_count = 0, copy_capacity = 0;
    int group_ends[64];
    int group_count = 0;
};

/* Up to 64 bytes per lane travel through a warp collective. */
struct WarpSlot {
    alignas(16) unsigned char bytes[64];
};

struct Warp {
    int arrived = 0;
    unsigned int mask = 0;          /* the mask of the collective being gathered */
    unsigned int exited = 0;        /* lanes that have ended */
    unsigned int existing = 0;      /* lanes that exist (a partial last warp has fewer) */
    void (*complete)(WarpSlot*) = nullptr; /* runs over the gathered inputs when the last lane arrives */
    size_t bytes = 0;               /* per lane, of the collective being gathered */
    WarpSlot gathered[32];          /* inputs of the collective being gathered */
    WarpSlot published[32];         /* inputs of the last completed collective */
};

constexpr size_t StackBytes = 256 * 1024;
constexpr int MaxThreads = 1024;

struct Block {
    uint3 block_idx{};
    dim3 block_dim{}, grid_dim{};
    int threads = 0, live = 0, barrier_arrived = 0;
    Fiber fibers[MaxThreads];
    Warp warps[MaxThreads / 32];
    unsigned char* dynamic_shared = nullptr;
    void (*invoke)(void**) = nullptr;
    void** arguments = nullptr;
    void* scheduler_sp = nullptr;
    const char* error = nullptr; /* set by a collective that detects misuse */
    char error_text[256];
};

/* The running block and thread. Plain globals, not thread-locals (a dlopen'ed library reaches those
 * through __tls_get_addr on every threadIdx): a module runs one launch at a time (g_launch_lock). */
inline Block* t_block = nullptr;
inline Fiber* t_fiber = nullptr;
inline std::mutex g_launch_lock;

inline void yield() { lrm_emu_switch(&t_fiber->sp, t_block->scheduler_sp); }

/* Stops the whole block: records the message and never returns to the kernel. */
[[noreturn]] inline void fail(const char* format, int a = 0, int b = 0) {
    snprintf(t_block->error_text, sizeof t_block->error_text, format, a, b);
    t_block->error = t_block->error_text;
    for (;;) {
        t_fiber->state = AtBarrier; /* never released: the scheduler sees the error and stops */
        yield();
    }
}

inline void release_barrier_if_complete(Block& block) {
    if (block.barrier_arrived > 0 && block.barrier_arrived == block.live) {
        for (int i = 0; i < block.threads; ++i) {
            if (block.fibers[i].state == AtBarrier) block.fibers[i].state = Runnable;
        }
        block.barrier_arrived = 0;
    }
}

inline void syncthreads() {
    Block& block = *t_block;
    t_fiber->state = AtBarrier;
    block.barrier_arrived++;
    release_barrier_if_complete(block);
    if (t_fiber->state != Runnable) yield();
}

/* The lanes a collective with `mask` waits for: those in the mask that exist and have not ended. */
inline unsigned int expected_lanes(const Warp& warp, unsigned int mask) { return mask & warp.existing & ~warp.exited; }

inline void release_warp_if_complete(Block& block, int warp_index) {
    Warp& warp = block.warps[warp_index];
    if (warp.arrived == 0) return;
    const unsigned int expected = expected_lanes(warp, warp.mask);
    if (warp.arrived != __builtin_popcount(expected)) return;
    if (warp.complete) warp.complete(warp.gathered);
    warp.complete = nullptr;
    for (int lane = 0; lane < 32; ++lane) memcpy(warp.published[lane].bytes, warp.gathered[lane].bytes, warp.bytes);
    for (int lane = 0; lane < 32; ++lane) {
        if (expected & (1u << lane)) {
            Fiber& fiber = block.fibers[warp_index * 32 + lane];
            if (fiber.state == AtWarp) fiber.state = Runnable;
        }
    }
    warp.arrived = 0;
}

/* Deposits this lane's `bytes` and waits until every lane of the mask has; returns all lanes' inputs.
 * `complete`, when given, runs once, in the last lane to arrive, over all lanes' inputs (slots of
 * lanes outside the mask are stale) before any lane continues. */
inline const WarpSlot* warp_gather(unsigned int mask, const void* input, size_t bytes, void (*complete)(WarpSlot*) = nullptr) {
    Block& block = *t_block;
    Fiber& fiber = *t_fiber;
    Warp& warp = block.warps[fiber.warp];
    if (!(mask & (1u << fiber.lane))) fail("a warp collective was called by lane %d outside its mask", fiber.lane);
    if (warp.arrived > 0 && (warp.mask != mask || warp.complete != complete)) {
        fail("lanes of warp %d reached different warp collectives, or one with different masks (lane %d)", fiber.warp, fiber.lane);
    }
    warp.mask = mask;
    warp.complete = complete;
    warp.bytes = bytes;
    memcpy(warp.gathered[fiber.lane].bytes, input, bytes);
    warp.arrived++;
    fiber.state = AtWarp;
    release_warp_if_complete(block, fiber.warp);
    if (fiber.state != Runnable) yield();
    return warp.published;
}

template <class T>
inline T slot_value(const WarpSlot& slot) {
    T value;
    memcpy(&value, slot.bytes, sizeof(T));
    return value;
}

/* ---- cp.async --------------------------------------------------------------------------------- */

inline void async_copy(void* destination, const void* source, int source_bytes) {
    Fiber& fiber = *t_fiber;
    if (fiber.copy_count == fiber.copy_capacity) {
        fiber.copy_capacity = fiber.copy_capacity ? 2 * fiber.copy_capacity : 64;
        fiber.copies = static_cast<AsyncCopy*>(realloc(fiber.copies, sizeof(AsyncCopy) * fiber.copy_capacity));
        if (!fiber.copies) abort();
    }
    fiber.copies[fiber.copy_count++] = AsyncCopy{destination, source, source_bytes};
}

inline void async_commit() {
    Fiber& fiber = *t_fiber;
    if (fiber.group_count == 64) fail("more than 64 cp.async groups outstanding in thread %d", fiber.linear);
    fiber.group_ends[fiber.group_count++] = fiber.copy_count;
}

inline void perform_copy(const AsyncCopy& copy) {
    unsigned char staged[16] = {0};
    if (copy.source_bytes > 0) memcpy(staged, copy.source, (size_t)copy.source_bytes);
    memcpy(copy.destination, staged, 16);
}

/* Completes every committed group except the `pending` most recent ones. */
inline void async_wait(int pending) {
    Fiber& fiber = *t_fiber;
    const int complete = fiber.group_count - pending;
    if (complete <= 0) return;
    const int done = fiber.group_ends[complete - 1];
    for (int i = 0; i < done; ++i) perform_copy(fiber.copies[i]);
    memmove(fiber.copies, fiber.copies + done, sizeof(AsyncCopy) * (size_t)(fiber.copy_count - done));
    fiber.copy_count -= done;
    for (int g = complete; g < fiber.group_count; ++g) fiber.group_ends[g - complete] = fiber.group_ends[g] - done;
    fiber.group_count -= complete;
}

/* ---- tensor-core and ldmatrix collectives ------------------------------------------------------ */

inline float bf16_low(unsigned int pair) { return __uint_as_float(pair << 16); }
inline float bf16_high(unsigned int pair) { return __uint_as_float(pair & 0xffff0000u); }
inline float bf16_half(unsigned int pair, int high) { return high ? bf16_high(pair) : bf16_low(pair); }

/* mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, D = A·B + D. Fragments (PTX ISA), g = lane/4, t = lane%4:
 * A (16×16, row): a[0] = A[g][2t, 2t+1], a[1] = A[g+8][2t, 2t+1], a[2] = A[g][2t+8, 2t+9], a[3] = A[g+8][2t+8, 2t+9];
 * B (16×8, col): b0 = B[2t, 2t+1][g], b1 = B[2t+8, 2t+9][g]; D: d[0], d[1] = D[g][2t, 2t+1], d[2], d[3] = D[g+8][2t, 2t+1].
 * Each 32-bit register holds two bf16, the lower column (or k) in the low half. */
struct MmaInputs {
    unsigned int a[4], b[2];
    float* d; /* the lane's accumulators, on its (suspended) fiber's stack */
};

/* The whole warp's product at once, in the last lane to arrive: each lane's D fragment is updated
 * through its pointer, so the 16×16×8 product is formed once instead of once per lane. */
inline void mma_bf16_16816_complete(WarpSlot* all) {
    float A[16][16], B[16][8];
    MmaInputs in[32];
    for (int lane = 0; lane < 32; ++lane) {
        in[lane] = slot_value<MmaInputs>(all[lane]);
        const int g = lane >> 2, t = lane & 3;
        for (int half = 0; half < 2; ++half) {
            A[g][2 * t + half] = bf16_half(in[lane].a[0], half);
            A[g + 8][2 * t + half] = bf16_half(in[lane].a[1], half);
            A[g][2 * t + 8 + half] = bf16_half(in[lane].a[2], half);
            A[g + 8][2 * t + 8 + half] = bf16_half(in[lane].a[3], half);
            B[2 * t + half][g] = bf16_half(in[lane].b[0], half);
            B[2 * t + 8 + half][g] = bf16_half(in[lane].b[1], half);
        }
    }
    for (int lane = 0; lane < 32; ++lane) {
        const int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < 4; ++i) {
            const int row = g + (i >= 2 ? 8 : 0), column = 2 * t + (i & 1);
            float sum = 0.0f;
            for (int k = 0; k < 16; ++k) sum += A[row][k] * B[k][column];
            in[lane].d[i] += sum;
        }
    }
}

inline void mma_bf16_16816(float* d, const unsigned int* a, unsigned int b0, unsigned int b1) {
    const MmaInputs mine{{a[0], a[1], a[2], a[3]}, {b0, b1}, d};
    static_assert(sizeof(MmaInputs) <= sizeof(WarpSlot), "mma inputs fit a warp slot");
    warp_gather(0xffffffffu, &mine, sizeof mine, &mma_bf16_16816_complete);
}

/* ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lane L gives the address of row L%8 of matrix
 * L/8 (8 b16 each). Without .trans, register m of lane (g, t) receives M_m[g][2t, 2t+1]; with
 * .trans, M_m[2t][g] (low half) and M_m[2t+1][g]. */
inline void ldmatrix_x4(unsigned int* r, const void* row_address, bool transpose) {
    const WarpSlot* all = warp_gather(0xffffffffu, &row_address, sizeof row_address);
    const int g = t_fiber->lane >> 2, t = t_fiber->lane & 3;
    for (int m = 0; m < 4; ++m) {
        unsigned short low, high;
        if (!transpose) {
            const unsigned short* row = slot_value<const unsigned short*>(all[8 * m + g]);
            low = row[2 * t];
            high = row[2 * t + 1];
        } else {
            low = slot_value<const unsigned short*>(all[8 * m + 2 * t])[g];
            high = slot_value<const unsigned short*>(all[8 * m + 2 * t + 1])[g];
        }
        r[m] = (unsigned int)low | ((unsigned int)high << 16);
    }
}

/* ---- launch ----------------------------------------------------------------------------------- */

/* The stacks of MaxThreads fibers, mapped once per module (and reused). */
inline unsigned char* stacks() {
    static unsigned char* memory = nullptr;
    if (!memory) {
        void* mapped = mmap(nullptr, StackBytes * MaxThreads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mapped == MAP_FAILED) return nullptr;
        memory = static_cast<unsigned char*>(mapped);
    }
    return memory;
}

inline void on_exit(Block& block, Fiber& fiber) {
    async_wait(0);
    if (fiber.copy_count > 0) { /* copies never committed: the hardware still performs them */
        for (int i = 0; i < fiber.copy_count; ++i) perform_copy(fiber.copies[i]);
        fiber.copy_count = 0;
    }
    fiber.state = Done;
    block.live--;
    block.warps[fiber.warp].exited |= 1u << fiber.lane;
    release_barrier_if_complete(block);
    release_warp_if_complete(block, fiber.warp);
}

extern "C" inline void fiber_main(void* argument) {
    Fiber& fiber = *static_cast<Fiber*>(argument);
    Block& block = *t_block;
    block.invoke(block.arguments);
    on_exit(block, fiber);
    void* dead;
    lrm_emu_switch(&dead, block.scheduler_sp);
    __builtin_unreachable();
}

inline void start_fiber(Fiber& fiber) {
    /* Stack top 16-byte aligned; the return slot at top − 8 so that lrm_emu_fiber_start's call
     * happens with a 16-byte aligned stack, as the ABI wants. */
    uint64_t* top = reinterpret_cast<uint64_t*>(fiber.stack + StackBytes);
    uint64_t* sp = top - 8;
    sp[0] = 0;                                                      /* unused: keeps the return slot at top − 8 */
    sp[1] = 0;                                                      /* r15 */
    sp[2] = 0;                                                      /* r14 */
    sp[3] = reinterpret_cast<uint64_t>(&fiber_main);                /* r13: entry */
    sp[4] = reinterpret_cast<uint64_t>(&fiber);                     /* r12: its argument */
    sp[5] = 0;                                                      /* rbx */
    sp[6] = 0;                                                      /* rbp */
    sp[7] = reinterpret_cast<uint64_t>(&lrm_emu_fiber_start);       /* return address */
    fiber.sp = sp + 1;
    fiber.state = Runnable;
    fiber.copy_count = 0;
    fiber.group_count = 0;
}

/* Runs one block to completion. Returns null, or why it could not finish. `reverse` runs the
 * threads from the last to the first between collectives: a kernel that reads shared memory another
 * thread writes without a barrier in between gets a wrong answer in one of the two orders. */
inline const char* run_block(Block& block, bool reverse) {
    const int threads = block.threads;
    unsigned char* stack_memory = stacks();
    if (!stack_memory) return "could not map fiber stacks";
    for (int w = 0; w < (threads + 31) / 32; ++w) {
        Warp& warp = block.warps[w];
        warp.arrived = 0;
        warp.exited = 0;
        warp.complete = nullptr;
        const int lanes = threads - 32 * w < 32 ? threads - 32 * w : 32;
        warp.existing = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
    }
    for (int i = 0; i < threads; ++i) {
        Fiber& fiber = block.fibers[i];
        fiber.stack = stack_memory + (size_t)i * StackBytes;
        fiber.linear = i;
        fiber.warp = i / 32;
        fiber.lane = i % 32;
        fiber.thread_idx = uint3{i % block.block_dim.x, (i / block.block_dim.x) % block.block_dim.y,
                                 i / (block.block_dim.x * block.block_dim.y)};
        start_fiber(fiber);
    }
    block.live = threads;
    block.barrier_arrived = 0;
    block.error = nullptr;
    while (block.live > 0) {
        bool ran = false;
        for (int k = 0; k < threads; ++k) {
            Fiber& fiber = block.fibers[reverse ? threads - 1 - k : k];
            if (fiber.state != Runnable) continue;
            t_fiber = &fiber;
            lrm_emu_switch(&block.scheduler_sp, fiber.sp);
            ran = true;
            if (block.error) return block.error;
        }
        if (!ran) {
            int at_barrier = 0, at_warp = 0;
            for (int i = 0; i < threads; ++i) {
                at_barrier += block.fibers[i].state == AtBarrier;
                at_warp += block.fibers[i].state == AtWarp;
            }
            snprintf(block.error_text, sizeof block.error_text,
                     "deadlock: %d threads wait at __syncthreads and %d in warp collectives whose other lanes never arrive "
                     "(%d threads have exited)",
                     at_barrier, at_warp, threads - block.live);
            return block.error_text;
        }
    }
    return nullptr;
}

/* ---- faults ------------------------------------------------------------------------------------
 * A kernel that touches memory it may not (a bad pointer, past the end of host memory) raises SIGSEGV
 * or SIGBUS on the launching thread. While a launch runs, our handler turns that into a failed
 * launch ("illegal memory access", CUDA_ERROR_ILLEGAL_ADDRESS) by jumping back to lrm_emu_launch;
 * a signal on any other thread, or outside a launch, goes to the handler that was there before
 * (the .NET runtime's, which turns managed null dereferences into exceptions). */

inline sigjmp_buf g_fault_jump;
inline volatile sig_atomic_t g_in_kernel = 0;
inline pthread_t g_kernel_thread;
inline struct sigaction g_previous_segv, g_previous_bus;
inline void* volatile g_fault_address = nullptr;

inline void fault_handler(int signal_number, siginfo_t* info, void* context) {
    if (g_in_kernel && pthread_equal(pthread_self(), g_kernel_thread)) {
        g_in_kernel = 0;
        g_fault_address = info->si_addr;
        siglongjmp(g_fault_jump, signal_number);
    }
    const struct sigaction& previous = signal_number == SIGSEGV ? g_previous_segv : g_previous_bus;
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(signal_number, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(signal_number);
    } else {
        signal(signal_number, SIG_DFL);
        raise(signal_number);
    }
}

/* ---- the kernel table ------------------------------------------------------------------------- */

struct KernelInfo {
    const char* name;
    void (*invoke)(void**);
    int max_threads; /* __launch_bounds__, else 1024 */
    int parameter_count;
    size_t sizes[32];
    size_t offsets[32];
};

inline KernelInfo g_kernels[64];
inline int g_kernel_count = 0;

template <class... A, size_t... I>
inline void call(void (*kernel)(A...), void** arguments, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(arguments[I])...);
}

template <class... A>
inline void invoke_with(void (*kernel)(A...), void** arguments) {
    call(kernel, arguments, std::index_sequence_for<A...>{});
}

template <class... A>
struct Registrar {
    Registrar(const char* name, void (*invoke)(void**), void (*)(A...), int max_threads) {
        KernelInfo& info = g_kernels[g_kernel_count++];
        info.name = name;
        info.max_threads = max_threads;
        info.invoke = invoke;
        info.parameter_count = (int)sizeof...(A);
        const size_t sizes[] = {sizeof(A)..., 0};
        const size_t alignments[] = {alignof(A)..., 1};
        size_t offset = 0;
        for (size_t i = 0; i < sizeof...(A); ++i) {
            offset = (offset + alignments[i] - 1) / alignments[i] * alignments[i];
            info.sizes[i] = sizes[i];
            info.offsets[i] = offset;
            offset += sizes[i];
        }
    }
};

inline unsigned char* dynamic_shared() { return t_block->dynamic_shared; }

} // namespace lrm_emu

#define threadIdx (::lrm_emu::t_fiber->thread_idx)
#define blockIdx (::lrm_emu::t_block->block_idx)
#define blockDim (::lrm_emu::t_block->block_dim)
#define gridDim (::lrm_emu::t_block->grid_dim)
#define warpSize 32

static inline void __syncthreads() { ::lrm_emu::syncthreads(); }
static inline void __syncwarp(unsigned int mask = 0xffffffffu) {
    const char nothing = 0;
    ::lrm_emu::warp_gather(mask, &nothing, 1);
}

template <class T>
static inline T lrm_emu_shuffle(unsigned int mask, T value, int source, int width, int mode) {
    const ::lrm_emu::WarpSlot* all = ::lrm_emu::warp_gather(mask, &value, sizeof value);
    const int lane = ::lrm_emu::t_fiber->lane, base = lane & ~(width - 1);
    int from;
    switch (mode) {
    case 0: from = base + (source & (width - 1)); break;      /* idx */
    case 1: from = lane ^ source; break;                      /* bfly */
    default: from = lane - source; break;                     /* up */
    }
    if (from < base || from >= base + width || !(mask & (1u << from))) return value;
    return ::lrm_emu::slot_value<T>(all[from]);
}

static inline float __shfl_xor_sync(unsigned int mask, float v, int lane_mask, int width = 32) { return lrm_emu_shuffle(mask, v, lane_mask, width, 1); }
static inline int __shfl_xor_sync(unsigned int mask, int v, int lane_mask, int width = 32) { return lrm_emu_shuffle(mask, v, lane_mask, width, 1); }
static inline float __shfl_sync(unsigned int mask, float v, int lane, int width = 32) { return lrm_emu_shuffle(mask, v, lane, width, 0); }
static inline int __shfl_sync(unsigned int mask, int v, int lane, int width = 32) { return lrm_emu_shuffle(mask, v, lane, width, 0); }
static inline int __shfl_up_sync(unsigned int mask, int v, unsigned int delta, int width = 32) { return lrm_emu_shuffle(mask, v, (int)delta, width, 2); }
static inline unsigned int __ballot_sync(unsigned int mask, int predicate) {
    const int mine = predicate != 0;
    const ::lrm_emu::WarpSlot* all = ::lrm_emu::warp_gather(mask, &mine, sizeof mine);
    unsigned int bits = 0;
    for (int lane = 0; lane < 32; ++lane) {
        if ((mask & (1u << lane)) && ::lrm_emu::slot_value<int>(all[lane])) bits |= 1u << lane;
    }
    return bits;
}

/* Every kernel the emulator's NVRTC found in the program is registered by one of these, appended
 * to the source: LRM_EMU_KERNEL(name, its __launch_bounds__ or 1024). */
#define LRM_EMU_KERNEL(name, max_threads)                                                                     \
    static ::lrm_emu::Registrar lrm_emu_registrar_##name(                                                     \
        #name, [](void** arguments) { ::lrm_emu::invoke_with(name, arguments); }, name, (max_threads));

/* ---- what the emulator's driver calls (the only exported symbols of a module) ------------------ */

#define LRM_EMU_EXPORT extern "C" __attribute__((visibility("default")))

LRM_EMU_EXPORT int lrm_emu_kernel_count() { return ::lrm_emu::g_kernel_count; }

LRM_EMU_EXPORT int lrm_emu_kernel_max_threads(int kernel) {
    return kernel >= 0 && kernel < ::lrm_emu::g_kernel_count ? ::lrm_emu::g_kernels[kernel].max_threads : 0;
}

LRM_EMU_EXPORT const char* lrm_emu_kernel_name(int kernel) {
    return kernel >= 0 && kernel < ::lrm_emu::g_kernel_count ? ::lrm_emu::g_kernels[kernel].name : nullptr;
}

/* 0 and the parameter's offset and size, or −1 past the last parameter. */
LRM_EMU_EXPORT int lrm_emu_kernel_parameter(int kernel, int index, size_t* offset, size_t* size) {
    if (kernel < 0 || kernel >= ::lrm_emu::g_kernel_count) return -1;
    const ::lrm_emu::KernelInfo& info = ::lrm_emu::g_kernels[kernel];
    if (index < 0 || index >= info.parameter_count) return -1;
    *offset = info.offsets[index];
    *size = info.sizes[index];
    return 0;
}

/* Runs the whole grid on the calling thread. Returns null, or why a block could not finish. */
LRM_EMU_EXPORT const char* lrm_emu_launch(int kernel, const unsigned int* grid, const unsigned int* block_dim,
                                          unsigned int shared_bytes, void** arguments) {
    using namespace ::lrm_emu;
    std::lock_guard<std::mutex> one_launch_at_a_time(g_launch_lock);
    static thread_local char message[512];
    static Block* block = nullptr;
    if (kernel < 0 || kernel >= g_kernel_count) return "no such kernel";
    if (!block) block = new (std::nothrow) Block();
    if (!block) return "out of host memory for the block";
    const int threads = (int)(block_dim[0] * block_dim[1] * block_dim[2]);
    if (threads <= 0 || threads > MaxThreads) return "block size out of range";
    unsigned char* shared = nullptr;
    if (shared_bytes > 0) {
        shared = static_cast<unsigned char*>(aligned_alloc(128, (shared_bytes + 127) / 128 * 128));
        if (!shared) return "out of host memory for dynamic shared memory";
    }
    block->block_dim = dim3{block_dim[0], block_dim[1], block_dim[2]};
    block->grid_dim = dim3{grid[0], grid[1], grid[2]};
    block->threads = threads;
    block->dynamic_shared = shared;
    block->invoke = g_kernels[kernel].invoke;
    block->arguments = arguments;
    Block* const saved_block = t_block;
    Fiber* const saved_fiber = t_fiber;
    const char* failure = nullptr;
    static unsigned long long launches = 0;
    const unsigned long long launch = launches++;
    unsigned long long block_number = 0;
    struct sigaction handler;
    memset(&handler, 0, sizeof handler);
    handler.sa_sigaction = &fault_handler;
    handler.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&handler.sa_mask);
    sigaction(SIGSEGV, &handler, &g_previous_segv);
    sigaction(SIGBUS, &handler, &g_previous_bus);
    g_kernel_thread = pthread_self();
    if (const int signal_number = sigsetjmp(g_fault_jump, 1)) {
        const Fiber* fiber = t_fiber;
        snprintf(message, sizeof message, "illegal memory access (%s at %p) in block (%u, %u, %u), thread (%u, %u, %u)",
                 signal_number == SIGBUS ? "SIGBUS" : "SIGSEGV", g_fault_address, block->block_idx.x, block->block_idx.y,
                 block->block_idx.z, fiber ? fiber->thread_idx.x : 0u, fiber ? fiber->thread_idx.y : 0u, fiber ? fiber->thread_idx.z : 0u);
        failure = message;
    } else {
        g_in_kernel = 1;
    }
    /* Blocks run in grid order on even launches and in reverse on odd ones: the GPU promises no order,
     * so a kernel whose result depends on it differs between two launches. */
    const unsigned long long block_count = (unsigned long long)grid[0] * grid[1] * grid[2];
    for (unsigned long long step = 0; step < block_count && !failure; ++step) {
        const unsigned long long linear = (launch & 1) ? block_count - 1 - step : step;
        const unsigned int x = (unsigned int)(linear % grid[0]), y = (unsigned int)(linear / grid[0] % grid[1]),
                           z = (unsigned int)(linear / ((unsigned long long)grid[0] * grid[1]));
        block->block_idx = uint3{x, y, z};
        if (shared) memset(shared, 0xff, shared_bytes);
        if (__start_lrm_shared != nullptr && __stop_lrm_shared > __start_lrm_shared) {
            memset(__start_lrm_shared, 0xff, (size_t)(__stop_lrm_shared - __start_lrm_shared));
        }
        t_block = block;
        /* Forward and reverse thread order alternate between blocks. */
        const char* error = run_block(*block, ((launch + block_number++) & 1) != 0);
        if (error) {
            snprintf(message, sizeof message, "block (%u, %u, %u): %s", x, y, z, error);
            failure = message;
        }
    }
    g_in_kernel = 0;
    sigaction(SIGSEGV, &g_previous_segv, nullptr);
    sigaction(SIGBUS, &g_previous_bus, nullptr);
    t_block = saved_block;
    t_fiber = saved_fiber;
    free(shared);
    return failure;
}

#endif /* LRM_EMULATE_H */
