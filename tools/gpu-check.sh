#!/usr/bin/env bash
# The GPU session's one device call: CUDA tests, a kernel-fault check, timings of our kernels and of
# the PyTorch/scikit-image peers, the attention kernel's SASS, all written to $OUT (at most 8 files).
#
#   here:    tools/device-bundle.sh                       (builds tests + lrm, packs runtime and libraries)
#   device:  run(command="tools/gpu-check.sh", carry=["device-bundle"], timeout_s=600)
#
# Prints a short summary last. LRM_GPU_CHECK_FULL=1 also runs the whole test suite (CPU tests too).
set -uo pipefail
cd "$(dirname "$0")/.."
LRM_BUNDLE_FRESH=1 source tools/gpu-common.sh summary.txt
export LRM_CUDA_SYNC=1

{
    echo "== nvidia-smi"; nvidia-smi 2>&1
    echo "== nvcc"; nvcc --version 2>&1 | tail -2
    echo "== CUDA libraries found"
    for lib in libcuda.so.1 'libnvrtc.so.1*' 'libnvrtc-builtins.so.*' 'libcublasLt.so.1*'; do
        find / -xdev \( -path /proc -o -path /sys \) -prune -o -name "$lib" -print 2>/dev/null | head -5
    done
    echo "== lrm info"; /tmp/lrm-bundle/run-lrm.sh info 2>&1
} > "$out/env.txt" 2>&1
note "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)"

# 1. The CUDA tests (every launch synchronised and checked): op parity fp32 and bf16, NVRTC, allocator, mesh.
# The whole-model tests (CudaModelTests) are tools/gpu-model-check.sh's.
timeout 330 /tmp/lrm-bundle/run-tests.sh --filter "(FullyQualifiedName~Cuda|FullyQualifiedName~Nvrtc)&FullyQualifiedName!~CudaModelTests" > "$out/tests.log" 2>&1
note "CUDA tests: exit $? — $(grep -E '^\s*(total|failed|succeeded|skipped):' "$out/tests.log" | tr -s ' ' | tr '\n' ' ')"
grep -E "^(failed|skipped) " "$out/tests.log" | head -20 | tee -a "$summary"

# 2. A kernel fault names the kernel (alone: a fault breaks the process's CUDA context).
LRM_CUDA_FAULT_TEST=1 timeout 60 /tmp/lrm-bundle/run-tests.sh --filter "FullyQualifiedName~KernelFaultNamesTheKernel" > "$out/fault.log" 2>&1
note "kernel-fault test: exit $?"
# 2b. The same fault left asynchronous (no per-launch synchronisation, as in production): the error must name the
# faulting kernel among the suspects, not the call that saw it (a process of its own again).
env -u LRM_CUDA_SYNC LRM_CUDA_FAULT_TEST=1 timeout 60 /tmp/lrm-bundle/run-tests.sh \
    --filter "FullyQualifiedName~AnAsynchronousFaultNamesTheFaultingKernel" > "$out/fault-async.log" 2>&1
note "asynchronous kernel-fault test: exit $?"

if [ "${LRM_GPU_CHECK_FULL:-0}" = "1" ]; then
    timeout 240 /tmp/lrm-bundle/run-tests.sh >> "$out/tests.log" 2>&1
    note "full suite: exit $? — $(grep -E '^\s*(total|failed):' "$out/tests.log" | tail -2 | tr -s ' ' | tr '\n' ' ')"
fi

# 3. Timings: ours, then the peers on the same GPU.
unset LRM_CUDA_SYNC
timeout 150 /tmp/lrm-bundle/run-lrm.sh bench-cuda --out "$out/bench-cuda.json" > "$out/bench.log" 2>&1
note "bench-cuda: exit $?"
PYTHONUNBUFFERED=1 timeout 150 python3 benchmarks/peers/cuda_peers.py --out "$out/peers.json" >> "$out/bench.log" 2>&1
note "peers: exit $?"

# 4. What the tensor-core kernels compiled to (registers, spills, instruction mix).
{
    for cubin in /tmp/lrm-kernel-cache/attention-*.cubin /tmp/lrm-kernel-cache/mlp-*.cubin; do
        [ -f "$cubin" ] || continue
        echo "== $cubin"
        cuobjdump --dump-resource-usage "$cubin" 2>&1 | grep -E "Function|REG|STACK|LOCAL|SHARED"
    done
    attention=$(ls -t /tmp/lrm-kernel-cache/attention-*.cubin 2>/dev/null | head -1)
    for kernel in attention_forward_mma_kernel attention_forward_mma2_kernel; do
        echo "== instruction counts ($kernel)"
        cuobjdump --dump-sass --function "$kernel" "$attention" 2>&1 \
            | grep -oE '^\s+/\*[0-9a-f]+\*/\s+[A-Z0-9.]+' | awk '{print $2}' | sed 's/\..*//' | sort | uniq -c | sort -rn | head -20
    done
} > "$out/sass.txt" 2>&1
note "SASS: $(grep -cE 'HMMA' "$out/sass.txt" || true) HMMA lines in the instruction counts; spills: $(grep -E 'LOCAL:[1-9]|STACK:[1-9]' "$out/sass.txt" | head -3 | tr '\n' ' ')"

echo
echo "== timings (ours, then peers)"
grep -E "ms " "$out/bench.log" | tee -a "$summary"
