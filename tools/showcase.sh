#!/usr/bin/env bash
# The side-by-side picture of a model: one row per input image with the input, three renders from new views and
# the extracted mesh (lrm showcase; docs/metrics.md). Extra lrm showcase options may follow in SHOWCASE_OPTIONS.
# Usage: tools/showcase.sh MODEL IMAGE... OUT.png
# Example: tools/showcase.sh models/default examples/*.png docs/images/showcase.png
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: tools/showcase.sh MODEL IMAGE... OUT.png" >&2
    exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
model=$1
shift
out=${!#}
images=("${@:1:$#-1}")
# shellcheck disable=SC2086
exec "$root/lrm" showcase --model "$model" --out "$out" ${SHOWCASE_OPTIONS:-} "${images[@]}"
