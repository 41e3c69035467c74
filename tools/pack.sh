#!/usr/bin/env bash
# tools/pack.sh — the NuGet packages a C# application references to embed LrmNative (examples/quickstart does):
#   LrmNative          the public API (Reconstructor, Reconstruction, Mesh, Image, …) with the CUDA kernels embedded
#   LrmNative.Interop  the P/Invoke layer, carrying liblrm_native.so as its linux-x64 native asset
# Both go to artifacts/packages (or OUT), version from Directory.Build.props (or --version V).
#
# Usage: tools/pack.sh [--configuration Release|Debug] [--version V] [--out DIR] [--no-build]
#   --no-build   pack what the last `dotnet build -c CONFIGURATION` left in bin/ (the tests use this)
# NuGet caches a package by id and version in ~/.nuget/packages: after changing the engine, either pack a new
# --version or clear that cache entry (rm -rf ~/.nuget/packages/lrmnative*), or a consumer keeps the old build.
set -euo pipefail
cd "$(dirname "$0")/.."

configuration=Release
out=artifacts/packages
version=()
build=()
while [ $# -gt 0 ]; do
    case "$1" in
        --configuration|-c) configuration="$2"; shift 2 ;;
        --version) version=(-p:Version="$2"); shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --no-build) build=(--no-build); shift ;;
        *) echo "tools/pack.sh: unknown option '$1' (see the header of this script)" >&2; exit 2 ;;
    esac
done

if [ ${#build[@]} -eq 0 ]; then
    tools/setup.sh
fi
mkdir -p "$out"
for project in bindings/LrmNative.Interop/LrmNative.Interop.csproj bindings/LrmNative/LrmNative.csproj; do
    dotnet pack "$project" -c "$configuration" -o "$out" -nologo -clp:ErrorsOnly "${build[@]}" "${version[@]}"
done
ls -l "$out"/LrmNative*.nupkg
