#!/usr/bin/env bash
# Runs LrmNative's test suite: builds native/ (through MSBuild → CMake) and the C# projects,
# then runs the NUnit tests on the CPU (CUDA tests skip with a reason when no GPU is present).
# Ends with a line "N passed, N failed, N skipped". Extra arguments go to the test runner,
# e.g. ./test.sh --filter "FullyQualifiedName~OpParity".
set -euo pipefail
cd "$(dirname "$0")"
tools/setup.sh

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

echo "==> testing"
set +e
dotnet test --project tests/LrmNative.Tests/LrmNative.Tests.csproj -c "$configuration" --no-build "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# Microsoft.Testing.Platform's summary: "total: T  failed: F  succeeded: S  skipped: K".
summary=$(grep -E "^\s*total:" "$log" | tail -1 || true)
succeeded=$(grep -E "^\s*succeeded:" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0)
failed=$(grep -E "^\s*failed:" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0)
skipped=$(grep -E "^\s*skipped:" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0)
if [ -z "$summary" ] && [ "$status" -ne 0 ]; then
    echo "test run failed before reporting results (exit $status)"
    echo "0 passed, 1 failed, 0 skipped"
    exit "$status"
fi
echo "${succeeded} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
