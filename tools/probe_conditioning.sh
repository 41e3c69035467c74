#!/usr/bin/env bash
# Does training learn to use the input image? Two objects that differ only in colour: one `lrm dataset synth`
# object (simple style, seed 2026, object 0) and a copy whose views have their colour channels permuted (R,G,B →
# B,R,G). A model that uses its input renders each in its own colour; a model that does not renders both alike.
# Trains the default config from fresh weights for STEPS updates, then prints, for both source views, the mean colour
# of the input object and of the render where it is opaque, and how far apart the two triplanes are.
#
#   tools/probe_conditioning.sh [STEPS] [LR] [WORKDIR]      (defaults: 1500, 5e-4, a temporary folder)
#
# docs/training.md ("Conditioning is learned late") has the numbers this gave. Needs python3 with numpy and PIL
# (Debian's /usr/bin/python3 with python3-numpy and python3-pil; $PYTHON overrides) for the channel permutation and the
# statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-1500}
lr=${2:-5e-4}
work=${3:-$(mktemp -d)}
python=${PYTHON:-/usr/bin/python3}
if ! "$python" -c "import numpy, PIL" 2>/dev/null; then
    echo "probe_conditioning: needs python3 with numpy and PIL: apt-get install python3-numpy python3-pil" >&2
    exit 1
fi
lrm=(./lrm)
mkdir -p "$work"
echo "==> data in $work"
"${lrm[@]}" dataset synth --style simple --objects 1 --views 8 --resolution 128 --mesh-resolution 32 --seed 2026 \
    --source-distance 2 --out "$work/one" >/dev/null
rm -rf "$work/two" && mkdir -p "$work/two"
"$python" - "$work" <<'PY'
import glob, shutil, sys
from PIL import Image
work = sys.argv[1]
source = glob.glob(work + "/one/obj_*")[0]
for name, order in (("a", (0, 1, 2)), ("b", (2, 0, 1))):
    target = f"{work}/two/{name}"
    shutil.copytree(source, target)
    for path in glob.glob(target + "/rgba/*.png"):
        channels = Image.open(path).convert("RGBA").split()
        Image.merge("RGBA", (channels[order[0]], channels[order[1]], channels[order[2]], channels[3])).save(path)
PY
echo "==> training $steps updates at lr $lr (default config, fresh weights, batch 2)"
rm -rf "$work/run"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "${lrm[@]}" train --config configs/lrm-default.json --data "$work/two" --out "$work/run" \
    --steps "$steps" --warmup 50 --lr "$lr" --batch 2 --views 4 --render-min 32 --render-max 32 --patch 32 \
    --mask-weight 0.5 --source-background 1 --checkpoint-every 0 --seed 7 >"$work/train.log" 2>&1
echo "==> reconstructing both source views"
for name in a b; do
    cp "$work/two/$name/rgba/000.png" "$work/$name.png"
    "${lrm[@]}" reconstruct "$work/$name.png" --model "$work/run/model.safetensors" --out "$work/out-$name" \
        --resolution 0 --render-size 64 --save-triplane "$work/triplane-$name.safetensors" >/dev/null 2>&1
done
"$python" - "$work" <<'PY'
import json, struct, sys
import numpy as np
from PIL import Image
work = sys.argv[1]
def planes(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    entry = json.loads(raw[8:8 + n])["planes"]
    begin, end = entry["data_offsets"]
    return np.frombuffer(raw[8 + n + begin:8 + n + end], dtype=np.float32)
for name in "ab":
    source = np.asarray(Image.open(f"{work}/{name}.png").convert("RGBA")).astype(float)
    render = np.asarray(Image.open(f"{work}/out-{name}/input_view.png").convert("RGBA")).astype(float)
    opacity = np.asarray(Image.open(f"{work}/out-{name}/opacity.png").convert("L")).astype(float) / 255
    inside = opacity > 0.5
    print(f"{name}: input object mean RGB {source[..., :3][source[..., 3] > 128].mean(0).round(1)}, "
          f"render mean RGB where opaque {render[..., :3][inside].mean(0).round(1) if inside.any() else 'none'}")
a, b = planes(f"{work}/triplane-a.safetensors"), planes(f"{work}/triplane-b.safetensors")
print(f"triplanes differ by {100 * np.linalg.norm(a - b) / np.linalg.norm(a):.1f} % of their norm")
PY
