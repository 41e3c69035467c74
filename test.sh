#!/usr/bin/env bash
# Runs LrmNative's test suite: builds native/ (through MSBuild → CMake) and the C# projects,
# then runs the NUnit tests on the CPU (CUDA tests skip with a reason when no GPU is present) and,
# without a GPU, runs the CUDA tests again on the CPU CUDA emulator (tests/cuda-emulator).
# Ends with a line "N passed, N failed, N skipped". Extra arguments go to the test runner,
# e.g. ./test.sh --filter "FullyQualifiedName~OpParity".
set -euo pipefail
cd "$(dirname "$0")"
tools/setup.sh --tests

configuration=${CONFIGURATION:-Release}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The Khronos glTF validator (npm gltf-validator) checks every GLB the tests write; without node/npm
# those tests are skipped with the reason, never passed.
validator_dir="$PWD/artifacts/gltf-validator"
if [ ! -d "$validator_dir/node_modules/gltf-validator" ] && command -v npm >/dev/null 2>&1; then
    echo "==> installing gltf-validator (npm) into artifacts/gltf-validator"
    npm install --prefix "$validator_dir" --no-audit --no-fund --silent gltf-validator@2.0.0-dev.3.10 >/dev/null 2>&1 \
        || echo "warning: npm install gltf-validator failed; the glTF validator tests will be skipped"
fi
export LRM_GLTF_VALIDATOR_DIR="$validator_dir"

echo "==> building ($configuration)"
dotnet build tests/LrmNative.Tests/LrmNative.Tests.csproj -c "$configuration" -nologo -clp:ErrorsOnly

# run_pass NAME ARGS…: one test run; adds its counts to the totals.
passed_total=0 failed_total=0 skipped_total=0 status=0
run_pass() {
    local name=$1
    shift
    echo "==> testing ($name)"
    set +e
    dotnet test --project tests/LrmNative.Tests/LrmNative.Tests.csproj -c "$configuration" --no-build "$@" 2>&1 | tee "$log"
    local pass_status=${PIPESTATUS[0]}
    set -e
    # Microsoft.Testing.Platform's summary: "total: T  failed: F  succeeded: S  skipped: K".
    local summary succeeded failed skipped
    summary=$(grep -E "^\s*total:" "$log" | tail -1 || true)
    succeeded=$(grep -E "^\s*succeeded:" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0)
    failed=$(grep -E "^\s*failed:" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0)
    skipped=$(grep -E "^\s*skipped:" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0)
    if [ -z "$summary" ] && [ "$pass_status" -ne 0 ]; then
        echo "test run ($name) failed before reporting results (exit $pass_status)"
        failed=1
    fi
    echo "($name: ${succeeded} passed, ${failed} failed, ${skipped} skipped)"
    passed_total=$((passed_total + succeeded))
    failed_total=$((failed_total + failed))
    skipped_total=$((skipped_total + skipped))
    if [ "$pass_status" -ne 0 ]; then status=$pass_status; fi
}

run_pass "this machine" "$@"

# Without a CUDA driver, a second pass runs the CUDA tests (the classes named Cuda* and Nvrtc*) on the CPU CUDA
# emulator (tests/cuda-emulator/README.md), where the first pass skipped them: it checks the CUDA
# backend's code and every kernel's logic against the CPU, never speed, and never stands in for a
# GPU run. Only for a full run (no arguments); LRM_CUDA_EMULATOR=0 leaves it out.
if [ $# -eq 0 ] && [ "${LRM_CUDA_EMULATOR:-1}" != 0 ] && [ -z "${LRM_CUDA_LIBRARY:-}" ] \
    && ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 ' && command -v g++ >/dev/null 2>&1; then
    emulator_env=()
    while IFS= read -r assignment; do emulator_env+=("$assignment"); done < <(tests/cuda-emulator/build.sh)
    emulator_env+=("LRM_KERNEL_CACHE=$PWD/artifacts/cuda-emulator/kernel-cache")
    # A kernel fault leaves the emulator's context usable (a GPU's is lost), so the fault test runs here too.
    emulator_env+=("LRM_CUDA_FAULT_TEST=1")
    export "${emulator_env[@]}"
    run_pass "CUDA tests on the CPU CUDA emulator" --filter "FullyQualifiedName~Cuda|FullyQualifiedName~Nvrtc"
fi

# The totals of both passes (a CUDA test skipped by the first and run by the second counts in both).
echo "${passed_total} passed, ${failed_total} failed, ${skipped_total} skipped"
exit "$status"
