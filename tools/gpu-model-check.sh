#!/usr/bin/env bash
# The GPU session's second device call (after tools/gpu-check.sh has shown op parity): the whole model on the CUDA
# backend — image→triplane, the paper's end-to-end breakdown at 384³ and training-step time and peak memory for the
# OpenLRM small and large configs, with and without deferred back-propagation. Everything goes to $OUT.
#
#   here:    tools/device-bundle.sh
#   device:  run(command="tools/gpu-model-check.sh", carry=["device-bundle"], timeout_s=600)
#
# Each step has its own time limit so one slow step cannot eat the call; the summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/gpu-common.sh model-summary.txt
lrm=/tmp/lrm-bundle/run-lrm.sh
note "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)"

# 1. The model-level parity tests (whole model small/large vs the CPU, the sphere mesh, a training step); gpu-check.sh
#    leaves them to this call.
if [ "${LRM_SKIP_MODEL_TESTS:-0}" != "1" ]; then
    timeout 150 /tmp/lrm-bundle/run-tests.sh --filter "FullyQualifiedName~CudaModelTests" > "$out/model-tests.log" 2>&1
    note "CudaModelTests: exit $? — $(grep -E '^\s*(total|failed|succeeded|skipped):' "$out/model-tests.log" | tr -s ' ' | tr '\n' ' ')"
    grep -E "relative error|image→triplane|^failed " "$out/model-tests.log" | head -40 >> "$summary"
fi

# 2. The paper's breakdown on the GPU (random weights: timings do not depend on the values), large and small.
for config in openlrm-large openlrm-small; do
    timeout 120 "$lrm" bench --device cuda --model "configs/$config.json" --resolution 384 --json "$out/bench-$config-cuda.json" > "$out/bench-$config.log" 2>&1
    code=$?
    note "lrm bench $config (cuda, 384³): exit $code"
    [ "$code" -eq 0 ] || tail -2 "$out/bench-$config.log" >> "$summary"
    grep -E "image|grid|marching|export|total|peak" "$out/bench-$config.log" | head -20 >> "$summary"
done

# 3. Training steps: time per step and peak device memory, kept vs deferred render activations.
timeout 60 "$lrm" dataset synth --style simple --objects 16 --views 6 --resolution 256 --seed 5 --out /tmp/lrm-synth > "$out/synth.log" 2>&1
note "dataset synth: exit $?"
train() { # name config extra...
    local name=$1 config=$2
    shift 2
    rm -rf "/tmp/lrm-train-$name"
    timeout 100 "$lrm" train --device cuda --config "configs/$config.json" --data /tmp/lrm-synth --out "/tmp/lrm-train-$name" \
        --steps 12 --warmup 2 --checkpoint-every 0 --seed 1 "$@" > "$out/train-$name.log" 2>&1
    local code=$?
    # Mean seconds per step over steps 3..12 (the first two compile kernels and warm the allocator).
    local rate
    rate=$(python3 -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
t = [r['seconds'] for r in rows]
print(f'{1000 * (t[-1] - t[1]) / (len(t) - 2):.1f} ms/step over steps 3..{len(t)}' if len(t) > 2 else 'no steps')
" "/tmp/lrm-train-$name/train.jsonl" 2>/dev/null || echo "no log")
    note "train $name: exit $code, $rate; $(grep -E 'peak' "$out/train-$name.log" | tail -1)"
    [ "$code" -eq 0 ] || tail -2 "$out/train-$name.log" >> "$summary"
}
train small-kept openlrm-small --batch 4 --views 4 --render-min 64 --render-max 192 --patch 64
train small-deferred openlrm-small --batch 4 --views 4 --render-min 64 --render-max 192 --patch 64 --deferred
train large-kept openlrm-large --batch 1 --views 4 --render-min 128 --render-max 384 --patch 128
train large-deferred openlrm-large --batch 1 --views 4 --render-min 128 --render-max 384 --patch 128 --deferred

echo
echo "== summary"
cat "$summary"
