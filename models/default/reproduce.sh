#!/usr/bin/env bash
# Reproduces models/default from nothing with our own tools (about 8.8 hours of training on 2 CPU cores, plus the data).
# WORK (default /tmp/lrm-default) holds the data and the runs; the last step copies the model into models/default.
# Every command is deterministic: seeded, and bit-identical for the same thread count, engine kernels and OpenBLAS core
# type. Runs 1-4 used OPENBLAS_CORETYPE=Haswell (the build machines' image sets it) and the engine as of commit
# 262aaaa, where version 4 was added. Session 12 changed the order of float sums in the LayerNorm/ModLN and patch-
# embedding backward, so a later engine gives weights that differ in the last bits at first and visibly after thousands
# of updates: similar, not equal, metrics (not rerun). For version 4's bits, run up to run 4 from a checkout of 262aaaa;
# run 5 (version 5) ran on the kernels of commit 5c6d48e (unchanged through 903b016) and starts from the shipped
# version-4 file, so it needs no earlier run. Run 6 (version 6, session 14) starts from the shipped version-5 file and
# adds the occupancy loss (commit 8dc148b and later); run 7 (version 7) continues from run 6; run 8 (version 8, session 15)
# starts from the shipped version-7 file.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work=${WORK:-/tmp/lrm-default}
lrm="$root/lrm"
mkdir -p "$work"
cd "$work"

# Data: 2000 training objects (seed 2026, 8 views) and 64 held-out objects (seed 90210, 9 views: the source + 8 novel),
# 128², view 000 at distance 2 (the canonical input camera).
"$lrm" dataset synth --style simple --objects 2000 --views 8 --resolution 128 --mesh-resolution 32 --seed 2026 --source-distance 2 --out data
"$lrm" dataset synth --style simple --objects 64 --views 9 --resolution 128 --mesh-resolution 128 --seed 90210 --source-distance 2 --out heldout

# --tv-weight 1e-3: these runs were made when our TV term was twice OpenLRM's (2·(mean Δh² + mean Δw²)) at the default
# weight 5e-4; the term is now OpenLRM's, and weight 1e-3 gives the same loss and the same bits.
common=(--device cpu --data data --batch 4 --views 4 --render-min 32 --render-max 32 --patch 32 --mask-weight 0.5 --tv-weight 1e-3
    --source-background 1 --source-view 0)
# One run from fresh weights: the encoder's position table starts as MAE's 2D sin-cos table, every sample is conditioned
# on view 000 (the canonical input camera), lr 4e-4 with 200 warm-up updates and a cosine schedule over 8000 updates.
# It ran on 1 thread up to the checkpoint at update 2000 and on 2 threads from there; the thread count changes the
# order of float sums, so the same split gives the same bits.
OMP_NUM_THREADS=1 "$lrm" train --config "$root/configs/lrm-default.json" --position-init sincos --out run --steps 8000 --stop-at 2000 \
    --warmup 200 --lr 4e-4 --seed 2032 --checkpoint-every 500 --threads 1 "${common[@]}"
OMP_NUM_THREADS=2 "$lrm" train --config "$root/configs/lrm-default.json" --position-init sincos --out run --steps 8000 --resume \
    --warmup 200 --lr 4e-4 --seed 2032 --checkpoint-every 500 --threads 2 "${common[@]}"
# A second cosine cycle from that model: lr 2e-4, 50 warm-up updates, 3000 updates.
OMP_NUM_THREADS=2 "$lrm" train --model run/model.safetensors --out run2 --steps 3000 --warmup 50 --lr 2e-4 --seed 2033 \
    --checkpoint-every 500 --threads 2 "${common[@]}"
# Version 3: a third cycle from run 2's model, lr 2e-4, 50 warm-up updates, 6000 updates, on 1 thread.
OMP_NUM_THREADS=1 "$lrm" train --model run2/model.safetensors --out run3 --steps 6000 --warmup 50 --lr 2e-4 --seed 2034 \
    --checkpoint-every 250 --threads 1 "${common[@]}"
# Version 4: a fourth, longer cycle from run 3's model, lr 2e-4, 50 warm-up updates, 12000 updates; it ran on 1 thread
# up to the checkpoint at update 6000 and on 2 threads from there (the same split gives the same bits). It validated
# on 8 held-out objects every 1000 updates (--val-data heldout --val-every 1000 --val-objects 8 --val-views 4), which
# leaves the weights unchanged, so it is left out here.
OMP_NUM_THREADS=1 "$lrm" train --model run3/model.safetensors --out run4 --steps 12000 --stop-at 6000 --warmup 50 --lr 2e-4 \
    --seed 2036 --checkpoint-every 250 --threads 1 "${common[@]}"
OMP_NUM_THREADS=2 "$lrm" train --model run3/model.safetensors --out run4 --steps 12000 --resume --warmup 50 --lr 2e-4 \
    --seed 2036 --checkpoint-every 250 --threads 2 "${common[@]}"

# Version 5: a fifth cycle, run on a later engine (kernels of commit 5c6d48e, session 13) with OpenBLAS's AVX-512 kernels
# (OPENBLAS_CORETYPE unset), so it starts from the shipped version-4 file rather than from run4 above (which today's
# engine reproduces only approximately): lr 1.5e-4, 50 warm-up updates, seed 2037, planned as 14000 updates; stopped at
# the checkpoint of update 5250 and resumed with the cosine shortened to 9500 updates (--resume-with-changes) to fit
# the session. It validated on 8 held-out objects every 2000 updates (left out here; it leaves the weights unchanged).
git -C "$root" show 0d32add:models/default/model.safetensors > version4.safetensors
env -u OPENBLAS_CORETYPE OMP_NUM_THREADS=2 "$lrm" train --model version4.safetensors --out run5 --steps 14000 --stop-at 5250 --warmup 50 \
    --lr 1.5e-4 --seed 2037 --checkpoint-every 250 --threads 2 "${common[@]}"
env -u OPENBLAS_CORETYPE OMP_NUM_THREADS=2 "$lrm" train --model version4.safetensors --out run5 --steps 9500 --resume --resume-with-changes \
    --warmup 50 --lr 1.5e-4 --seed 2037 --checkpoint-every 250 --threads 2 "${common[@]}"

# Version 6: a sixth cycle from the shipped version-5 file with 3D supervision added: the occupancy loss at weight 0.1,
# 2048 points per object and step (half near the object's mesh.ply, half uniform in the box), surface at density 2
# (docs/derivations/occupancy.md); lr 1.5e-4, 50 warm-up updates, cosine over 7000, seed 2038. 3590 s on 2 threads.
git -C "$root" show 7773755:models/default/model.safetensors > version5.safetensors
env -u OPENBLAS_CORETYPE OMP_NUM_THREADS=2 "$lrm" train --model version5.safetensors --out run6 --steps 7000 --warmup 50 \
    --lr 1.5e-4 --seed 2038 --checkpoint-every 250 --threads 2 "${common[@]}" --occupancy-weight 0.1
# Version 7: run 6's model, the occupancy weight tripled, lr 1e-4 over 4000 updates, seed 2039. 1822 s on 2 threads.
env -u OPENBLAS_CORETYPE OMP_NUM_THREADS=2 "$lrm" train --model run6/model.safetensors --out run7 --steps 4000 --warmup 50 \
    --lr 1e-4 --seed 2039 --checkpoint-every 250 --threads 2 "${common[@]}" --occupancy-weight 0.3

# Version 8: the shipped version-7 file, all 8 views of each object per update (--views 8 in place of common's 4), occupancy
# weight 0.3, lr 1.5e-4 over 8000 updates, seed 2040. 6065 s on 2 threads (beside other work). It validated on 8
# held-out objects every 1000 updates (left out here; it leaves the weights unchanged).
git -C "$root" show 56e306e:models/default/model.safetensors > version7.safetensors
eight=(); previous=""
for argument in "${common[@]}"; do [ "$previous" = --views ] && argument=8; eight+=("$argument"); previous=$argument; done
env -u OPENBLAS_CORETYPE OMP_NUM_THREADS=2 "$lrm" train --model version7.safetensors --out run8 --steps 8000 --warmup 50 \
    --lr 1.5e-4 --seed 2040 --checkpoint-every 250 --threads 2 "${eight[@]}" --occupancy-weight 0.3

# The model folder: the weights of run 8, the config with the surface density calibrated on training objects (the
# density with the best F-score over the first 8 training objects at 96³, tried 0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 4, 8).
for d in 0.5 0.75 1 1.25 1.5 2 2.5 3 4 8; do
    echo "density $d: $("$lrm" eval model --model run8/model.safetensors --data data --objects 8 --resolution 96 --density "$d" 2>&1 | tail -1)"
done
cp run8/model.safetensors "$root/models/default/model.safetensors"
python3 -c "import json, sys; c = json.load(open(sys.argv[1])); c['foreground_ratio'] = 0.78; c['mesh_threshold'] = 2; print(json.dumps(c, indent=2))" \
    "$root/configs/lrm-default.json" > "$root/models/default/config.json"

# The card's numbers and picture.
"$lrm" eval model --model "$root/models/default" --data heldout --objects 64 --views 8 --resolution 256 --json "$root/models/default/eval.json"
"$root/tools/showcase.sh" "$root/models/default" "$root"/examples/heldout_0000{0,1,2,3}.png "$root/examples/mesh_table.png" "$root/models/default/showcase.png"
