#!/usr/bin/env bash
# Checks (and, when run as root, installs) what building LrmNative needs:
# the .NET SDK, CMake, make, g++, OpenMP (part of g++), OpenBLAS, libpng and libjpeg-turbo; with --tests also
# clang-14, whose CUDA device-only mode compile-checks kernels/*.cu without a CUDA toolkit (only the tests use it).
# Usage: tools/setup.sh [--tests]   (exit 0 when everything is present)
set -euo pipefail

for_tests=0
case "${1:-}" in
    "") ;;
    --tests) for_tests=1 ;;
    *) echo "setup: unknown argument '$1' (usage: tools/setup.sh [--tests])" >&2; exit 2 ;;
esac

missing_packages=()
command -v cmake >/dev/null 2>&1 || missing_packages+=(cmake)
command -v g++ >/dev/null 2>&1 || missing_packages+=(g++)
command -v make >/dev/null 2>&1 || missing_packages+=(make)
if [ "$for_tests" = 1 ]; then
    command -v clang-14 >/dev/null 2>&1 || missing_packages+=(clang-14)
fi
# Libraries with headers: OpenBLAS (libopenblas-dev), libpng (libpng-dev) and
# libjpeg-turbo (libjpeg62-turbo-dev). Asked of dpkg where there is one, else
# looked for on disk: have_dev_package PACKAGE HEADER LIBRARY-GLOB.
have_dev_package() {
    if command -v dpkg-query >/dev/null 2>&1; then
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
    else
        find /usr/include /usr/local/include -name "$2" 2>/dev/null | grep -q . &&
            find /usr/lib /usr/local/lib -name "$3" 2>/dev/null | grep -q .
    fi
}
have_dev_package libopenblas-dev cblas.h 'libopenblas.so*' || missing_packages+=(libopenblas-dev)
have_dev_package libpng-dev png.h 'libpng*.so*' || missing_packages+=(libpng-dev)
# Debian's libjpeg62-turbo-dev; Ubuntu's libjpeg-dev (libjpeg-turbo8-dev) serves as well.
have_dev_package libjpeg62-turbo-dev jpeglib.h 'libjpeg.so*' || have_dev_package libjpeg-dev jpeglib.h 'libjpeg.so*' ||
    missing_packages+=(libjpeg62-turbo-dev)

if [ ${#missing_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ${missing_packages[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends "${missing_packages[@]}" >&2
    else
        echo "setup: missing packages: ${missing_packages[*]}" >&2
        echo "setup: install them with:  sudo apt-get install -y ${missing_packages[*]}" >&2
        exit 1
    fi
fi

if ! command -v dotnet >/dev/null 2>&1; then
    echo "setup: the .NET 10 SDK is required (dotnet not on PATH); see https://learn.microsoft.com/dotnet/core/install/linux-debian" >&2
    exit 1
fi
