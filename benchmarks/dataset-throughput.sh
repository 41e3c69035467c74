#!/usr/bin/env bash
# Throughput of `lrm dataset synth` (objects per minute) at the issue's setting: 32 views × 256², on N cores.
# Usage: benchmarks/dataset-throughput.sh [objects=8] [cores=2]
# Pins the process to the first N cores (taskset) and passes --threads N; prints wall and CPU time, the load average
# before and after (a shared machine slows the wall time down), and objects/min. Results: benchmarks/results/cpu-dataset.md.
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${1:-8}
cores=${2:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dotnet build tools/lrm/lrm.csproj -c Release -nologo -v q -clp:ErrorsOnly >/dev/null
lrm=(dotnet tools/lrm/bin/Release/net10.0/lrm.dll)
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores visible; pinned to $cores"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
/usr/bin/time -f "cpu: %U s user, %S s system, %e s wall" taskset -c "0-$((cores - 1))" "${lrm[@]}" dataset synth --objects "$objects" \
    --views 32 --resolution 256 --seed 0 --threads "$cores" --out "$out/synth" 2>&1 | grep -v "^lrm: synth "
end=$(date +%s.%N)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v n="$objects" -v s="$start" -v e="$end" 'BEGIN { printf "objects/min (wall, incl. start-up): %.1f\n", n / ((e - s) / 60) }'
du -sh "$out/synth" | awk '{print "dataset size: " $1}'
