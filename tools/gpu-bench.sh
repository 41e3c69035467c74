#!/usr/bin/env bash
# A GPU session's third device call: the BenchmarkDotNet kernel suites (forward and backward families) on the CUDA
# target — device-event times next to the wall clock — with the PyTorch CUDA peers on the same shapes, joined into one
# results file and its summary under $OUT. Copy $OUT/results/*.json into benchmarks/results/ here, then run
# `benchmarks/LrmNative.Benchmarks/bin/Release/net10.0/LrmNative.Benchmarks --report benchmarks/results` to regenerate
# SUMMARY.md with the GPU machine beside the CPU ones.
#
#   here:    tools/device-bundle.sh
#   device:  run(command="tools/gpu-bench.sh", carry=["device-bundle"], timeout_s=600)
#
# LRM_GPU_BENCH_FILTER (space-separated BenchmarkDotNet globs) picks our suites; the default is every kernel family with a
# Target (the CPU-only ModelForward and GridQuery suites are left out), e.g. LRM_GPU_BENCH_FILTER='*Attention*'.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/gpu-common.sh bench-summary.txt
mkdir -p "$out/results"
bench=/tmp/lrm-bundle/run-bench.sh
work=$(mktemp -d)

"$bench" --manifest "$work/manifest.json" > "$out/bench.log" 2>&1
note "manifest: exit $?"
PYTHONUNBUFFERED=1 timeout 200 python3 benchmarks/peers/kernels_torch.py --manifest "$work/manifest.json" --threads "$(nproc)" \
    --device cuda --out "$work/peers-cuda.json" >> "$out/bench.log" 2>&1
note "peers (PyTorch CUDA): exit $?"
peers=()
[ -f "$work/peers-cuda.json" ] && peers=(--peers "$work/peers-cuda.json") && cp "$work/peers-cuda.json" "$out/"
# The roofline of the GPU from its datasheet (bf16 dense tensor-core FLOP/s, HBM bandwidth): the CPU probe would measure the host.
case "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)" in
    *H200*) roofline=(--peak-gflops 989000 --peak-gbps 4800) ;;
    *H100*) roofline=(--peak-gflops 989000 --peak-gbps 3350) ;;
    *) roofline=() ;;
esac
read -r -a filter <<< "${LRM_GPU_BENCH_FILTER:-*Gemm* *LayerNorm* *ModLN* *Attention* *Triplane* *NerfMlp* *NerfQuery* *RenderMarch* *RenderDecode* *MarchingCubes* *GridPoints* *Resize* *PatchEmbed* *Deconvolution* *Activation* *LayerScale* *AdamW*}"
LRM_BENCH_TARGETS=cuda timeout 330 "$bench" --json auto --results "$out/results" "${peers[@]}" "${roofline[@]}" \
    --command "tools/gpu-bench.sh (device call)" --filter "${filter[@]}" >> "$out/bench.log" 2>&1
note "our suites (cuda target): exit $?"
"$bench" --report "$out/results" >> "$out/bench.log" 2>&1
note "summary: exit $?"
tail -40 "$out/results/SUMMARY.md" 2>/dev/null
