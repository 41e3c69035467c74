#!/usr/bin/env bash
# Packs what the GPU device machine needs to run LrmNative's tests (it has no .NET SDK):
# the .NET runtime (host + Microsoft.NETCore.App), the built test project, liblrm_native.so and
# every non-glibc library it links (OpenBLAS, libgfortran, libquadmath, libpng, libjpeg, libgomp,
# libstdc++, libgcc_s, zlib) — one .tar.xz under device-bundle/ (git-ignored; a device call
# carries at most 64 MiB). The CUDA kernels travel inside LrmNative.dll (embedded sources,
# compiled by NVRTC there); libcuda, NVRTC and cuBLASLt come from the GPU machine's own driver
# and CUDA install (the resolver looks in /usr/local/cuda*, /usr/local/nvidia and pip's nvidia-*
# wheels). On the device:
#   tar -xJf device-bundle/bundle.tar.xz -C /tmp && tools/link-golden.sh /tmp/lrm-bundle/tests \
#       && /tmp/lrm-bundle/run-tests.sh [test-runner args]              (golden data from the working tree)
#   /tmp/lrm-bundle/run-lrm.sh bench-cuda --out results.json      (the `lrm` CLI, same runtime)
# tools/gpu-check.sh does all of it in one device call.
set -euo pipefail
cd "$(dirname "$0")/.."
configuration=${CONFIGURATION:-Release}
dotnet build tests/LrmNative.Tests/LrmNative.Tests.csproj -c "$configuration" -nologo -clp:ErrorsOnly >&2

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/lrm-bundle"
mkdir -p "$root/dotnet/shared/Microsoft.NETCore.App" "$root/tests"

dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
runtime=$(ls -d "$dotnet_root"/shared/Microsoft.NETCore.App/* | sort -V | tail -1)
cp "$dotnet_root/dotnet" "$root/dotnet/"
cp -r "$dotnet_root/host" "$root/dotnet/"
cp -r "$runtime" "$root/dotnet/shared/Microsoft.NETCore.App/"
# Runtime parts nothing here loads: the debugger and diagnostics libraries, the alternative GCs, LTTng tracing and
# Visual Basic (the whole suite, the lrm CLI and the kernel suites run without them: checked with the bundle itself).
( cd "$root/dotnet/shared/Microsoft.NETCore.App/"* && rm -f libmscordaccore.so libmscordbi.so libclrgc.so libclrgcexp.so \
    libcoreclrtraceptprovider.so createdump Microsoft.VisualBasic.Core.dll Microsoft.VisualBasic.dll )

cp -r tests/LrmNative.Tests/bin/"$configuration"/net10.0/. "$root/tests/"
# What a Linux x64 GPU machine never loads: other platforms' native libraries (NuGet runtimes/, the Windows
# TraceEvent helpers) and satellite resource folders of other languages. Keeps the bundle well under the 64 MiB a device
# call carries together with the working tree.
find "$root/tests/runtimes" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} + 2>/dev/null || true
rm -rf "$root/tests/x86" "$root/tests/amd64" "$root/tests/arm64"
find "$root/tests" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[a-z]{2}(-[A-Za-z]+)?' -exec rm -rf {} +
# The golden data travels in the working tree already (tests/golden); tools/gpu-common.sh links it into the unpacked
# bundle (tools/link-golden.sh), so it is not packed twice.
rm -rf "$root/tests/golden"
# Non-glibc dependencies next to liblrm_native.so (its RUNPATH is $ORIGIN).
ldd "$root/tests/liblrm_native.so" | awk '/=>/ {print $3}' | while read -r library; do
    case "$(basename "$library")" in
        libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*) ;;
        *) cp -L "$library" "$root/tests/" ;;
    esac
done

# wrapper NAME DESCRIPTION DLL [stay]: $root/NAME runs tests/DLL with the bundled runtime, passing its arguments on;
# it works inside the bundle's tests/ unless "stay" keeps the caller's folder (the lrm CLI's paths are the caller's).
wrapper() {
    local enter='cd "$here/tests"'
    [ "${4:-}" = stay ] && enter=': stays in the calling folder'
    cat > "$root/$1" <<RUN
#!/usr/bin/env bash
# $2
set -euo pipefail
here="\$(cd "\$(dirname "\$0")" && pwd)"
export DOTNET_ROOT="\$here/dotnet" DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
export LD_LIBRARY_PATH="\$here/tests\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
$enter
exec "\$here/dotnet/dotnet" "\$here/tests/$3" "\$@"
RUN
    chmod +x "$root/$1"
}
wrapper run-tests.sh "Runs the bundled tests with the bundled runtime; arguments go to the test runner." LrmNative.Tests.dll
wrapper run-bench.sh "Runs the bundled kernel suites (LrmNative.Benchmarks: BenchmarkDotNet in-process) with the bundled runtime." LrmNative.Benchmarks.dll stay
wrapper run-lrm.sh "Runs the bundled lrm command line (built with the tests) with the bundled runtime." lrm.dll stay

mkdir -p device-bundle
XZ_OPT=-9T2 tar -C "$stage" -cJf device-bundle/bundle.tar.xz lrm-bundle
ls -l device-bundle/bundle.tar.xz >&2
# A device call carries at most 64 MiB in all: the bundle plus the working tree (tracked and untracked-not-ignored files).
size=$(stat -c %s device-bundle/bundle.tar.xz)
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
total=$((size + tree))
echo "bundle $((size / 1048576)) MiB + working tree $((tree / 1048576)) MiB = $((total / 1048576)) MiB of the 64 MiB a device call carries" >&2
if [ "$total" -gt $((62 * 1024 * 1024)) ]; then
    echo "warning: too close to (or over) the device call's 64 MiB: trim the bundle or the tree before using it" >&2
fi
