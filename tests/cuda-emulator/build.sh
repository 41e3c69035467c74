#!/usr/bin/env bash
# Builds the CUDA emulator (see README.md) into OUT (default: artifacts/cuda-emulator at the
# repository root) and prints the three environment variables that point the CUDA backend at it.
# Rebuilds only what changed. Needs g++ (C++17); nothing from CUDA.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/artifacts/cuda-emulator}"
mkdir -p "$out"
cxx="${CXX:-g++}"
flags=(-std=c++17 -O2 -g0 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter)

build() { # build SOURCE LIBRARY [LIBS…]
    local source="$here/$1" library="$out/$2"
    shift 2
    if [[ ! -f "$library" || "$source" -nt "$library" || "$here/build.sh" -nt "$library" ]]; then
        "$cxx" "${flags[@]}" -o "$library.tmp" "$source" "$@"
        mv -f "$library.tmp" "$library"
    fi
}

build driver.cpp libcuda.so.1 -ldl
build nvrtc.cpp libnvrtc.so.12 -ldl
build cublaslt.cpp libcublasLt.so.12 -ldl
if [[ ! -f "$out/selftest" || "$here/selftest.cpp" -nt "$out/selftest" || "$out/libcuda.so.1" -nt "$out/selftest" ]]; then
    "$cxx" -std=c++17 -O1 -g0 -Wall -o "$out/selftest.tmp" "$here/selftest.cpp" -L"$out" -l:libcuda.so.1 -l:libnvrtc.so.12 \
        -Wl,-rpath,'$ORIGIN'
    mv -f "$out/selftest.tmp" "$out/selftest"
fi
# The kernels' prelude travels with the NVRTC that force-includes it. The kernel cache's key covers
# the kernel sources and the NVRTC library's file (so a rebuilt libnvrtc.so.12 gets new entries), not
# this prelude, so a change to it (or to nvrtc.cpp, to drop the old entries) empties the emulator's
# cache folder (test.sh's LRM_KERNEL_CACHE).
if ! cmp -s "$here/lrm_emulate.h" "$out/lrm_emulate.h" || [ "$here/nvrtc.cpp" -nt "$out/kernel-cache" ]; then
    cp -f "$here/lrm_emulate.h" "$out/lrm_emulate.h.tmp" && mv -f "$out/lrm_emulate.h.tmp" "$out/lrm_emulate.h"
    rm -rf "$out/kernel-cache"
    mkdir -p "$out/kernel-cache"
fi
echo "LRM_CUDA_LIBRARY=$out/libcuda.so.1"
echo "LRM_NVRTC_LIBRARY=$out/libnvrtc.so.12"
echo "LRM_CUBLASLT_LIBRARY=$out/libcublasLt.so.12"
