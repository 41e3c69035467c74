#!/usr/bin/env bash
# The inputs the default model (models/default) is shown on, made with our own tools:
#   heldout_0000K.png  view 000 of held-out procedural objects 0-3 of `lrm dataset synth --style simple --seed 90210` (the evaluation
#                      set's seed; training used seed 2026, so these objects were never seen), at 256², source camera at
#                      distance 2 as in training;
#   mesh_table.png     examples/meshes/table.obj (examples/make_examples.py) rendered by `lrm dataset render` (the
#                      BVH ray tracer, not the SDF sphere tracer synth uses), view 000 at distance 2.
# Deterministic: rerunning writes identical files. Usage: examples/make_default_examples.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$root/lrm" dataset synth --style simple --objects 4 --views 1 --resolution 256 --seed 90210 --source-distance 2 --mesh-resolution 32 --out "$work/synth"
for k in 0 1 2 3; do
    cp "$work/synth/obj_0000$k/rgba/000.png" "$root/examples/heldout_0000$k.png"
done
"$root/lrm" dataset render --meshes "$root/examples/meshes" --views 1 --resolution 256 --seed 7 --source-distance 2 --out "$work/render"
cp "$work/render/table/rgba/000.png" "$root/examples/mesh_table.png"
echo "wrote examples/heldout_00000..3.png and examples/mesh_table.png"
