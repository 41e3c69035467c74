# Sourced by the GPU session scripts (tools/gpu-*.sh): the output folder, a summary file with note(), and the test
# bundle unpacked into /tmp/lrm-bundle (once per device machine). $1: the summary file's name.
out=$(mkdir -p "${OUT:-/tmp/lrm-gpu}" && cd "${OUT:-/tmp/lrm-gpu}" && pwd)
summary="$out/$1"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
if [ ! -f device-bundle/bundle.tar.xz ]; then
    note "no device-bundle/bundle.tar.xz: run tools/device-bundle.sh here and carry [\"device-bundle\"]"
    exit 1
fi
if [ "${LRM_BUNDLE_FRESH:-0}" = 1 ] || [ ! -x /tmp/lrm-bundle/run-lrm.sh ]; then
    rm -rf /tmp/lrm-bundle && tar -xJf device-bundle/bundle.tar.xz -C /tmp
fi
tools/link-golden.sh /tmp/lrm-bundle/tests
export LRM_KERNEL_CACHE=/tmp/lrm-kernel-cache
