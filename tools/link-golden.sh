#!/usr/bin/env bash
# Links the repository's golden data (tests/golden) into a built test folder in the layout the test project's build
# gives it (golden/*.safetensors from data/, golden/{grad,model,training,metrics}/): the device bundle leaves the data
# out because the working tree carries it. Usage: tools/link-golden.sh TESTS_FOLDER (run from the repository root).
set -euo pipefail
target="$1/golden"
source_dir="$(pwd)/tests/golden"
[ -d "$source_dir/data" ] || { echo "link-golden: no $source_dir/data (run from the repository root)" >&2; exit 1; }
rm -rf "$target"
mkdir -p "$target"
ln -s "$source_dir"/data/*.safetensors "$target/"
for folder in grad model training metrics; do
    ln -s "$source_dir/$folder" "$target/$folder"
done
