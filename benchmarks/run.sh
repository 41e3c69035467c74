#!/usr/bin/env bash
# benchmarks/run.sh — LrmNative's kernel suites and their peers on this machine, in one command:
#   1. builds the benchmarks (Release) and writes the shape manifest (the LRM shapes of configs/*.json);
#   2. runs the peer script (benchmarks/peers/kernels_torch.py: PyTorch on the CPU, and on CUDA when torch sees a GPU;
#      scikit-image for marching cubes) on the same shapes and thread count;
#   3. measures the roofline and runs our suites (BenchmarkDotNet, in-process), joins the peers
#      → benchmarks/results/<machine-id>.json;
#   4. regenerates benchmarks/results/SUMMARY.md and its SVG charts from every results file there.
#
# Usage: benchmarks/run.sh [--long] [--threads N] [--preliminary "NOTE"] [--filter PATTERN] [--no-peers]
#   --long          5 warm-ups and 20 iterations of >= 250 ms (default: the short job, 2 and 5 of >= 100 ms)
#   --threads N     compute threads for both sides (default: all cores)
#   --preliminary   mark the run as disturbed (a busy machine), with a note for the summary
#   --filter P      BenchmarkDotNet filter for our side, e.g. '*Attention*' (the peers still run every shape)
#   --no-peers      skip the peer script
# The short job takes about 6 minutes on two cores, most of it in the PyTorch peer.
set -euo pipefail
cd "$(dirname "$0")/.."

threads=$(nproc)
long=()
preliminary=()
filter=()
run_peers=1
while [ $# -gt 0 ]; do
    case "$1" in
        --long) long=(--long); shift ;;
        --threads) threads="$2"; shift 2 ;;
        --preliminary) preliminary=(--preliminary "$2"); shift 2 ;;
        --filter) filter=(--filter "$2"); shift 2 ;;
        --no-peers) run_peers=0; shift ;;
        *) echo "benchmarks/run.sh: unknown option '$1' (see the header of this script)" >&2; exit 2 ;;
    esac
done

tools/setup.sh
echo "==> building the benchmarks (Release)"
dotnet build -c Release benchmarks/LrmNative.Benchmarks/LrmNative.Benchmarks.csproj -nologo -clp:ErrorsOnly
bench=benchmarks/LrmNative.Benchmarks/bin/Release/net10.0/LrmNative.Benchmarks
results=benchmarks/results
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bench" --manifest "$work/manifest.json"

peers=()
if [ "$run_peers" = 1 ]; then
    python=/usr/bin/python3
    [ -x "$python" ] || python=python3
    echo "==> peers on the CPU ($threads threads)"
    "$python" benchmarks/peers/kernels_torch.py --manifest "$work/manifest.json" --threads "$threads" --device cpu \
        --out "$work/peers-cpu.json" "${long[@]}"
    peers+=(--peers "$work/peers-cpu.json")
    if "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
        echo "==> peers on CUDA"
        "$python" benchmarks/peers/kernels_torch.py --manifest "$work/manifest.json" --threads "$threads" --device cuda \
            --out "$work/peers-cuda.json" "${long[@]}"
        peers+=(--peers "$work/peers-cuda.json")
    fi
fi

echo "==> LrmNative ($threads threads)"
command="benchmarks/run.sh${long:+ --long}"
OMP_NUM_THREADS="$threads" "$bench" --json auto --results "$results" "${peers[@]}" "${long[@]}" "${preliminary[@]}" \
    --command "$command" "${filter[@]}"

echo "==> summary"
"$bench" --report "$results"
