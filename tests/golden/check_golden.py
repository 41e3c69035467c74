#!/usr/bin/python3
"""Structural check of tests/golden/data/*.safetensors (stdlib only, no torch needed).

Parses every header, checks offsets/sizes/padding, that metadata names the op and case
matching the file name, and prints a table of files, tensors and sizes.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
LIMIT = 5_000_000


def main():
    files = sorted(f for f in os.listdir(DATA_DIR) if f.endswith(".safetensors"))
    total = 0
    bad = 0
    for f in files:
        path = os.path.join(DATA_DIR, f)
        size = os.path.getsize(path)
        total += size
        try:
            meta, tensors = golden_io.read(path)
            if "op" not in meta or "case" not in meta:
                raise ValueError("metadata lacks op/case")
            if f != f"{meta['op']}_{meta['case']}.safetensors":
                raise ValueError(f"file name does not match op={meta['op']} case={meta['case']}")
            desc = " ".join(f"{n}{'' if t[0] == 'F32' else ':' + t[0]}{tuple(t[1])}" for n, t in tensors.items())
            print(f"{f:55s} {size:8d}  {desc}")
        except Exception as e:  # noqa: BLE001
            bad += 1
            print(f"{f:55s} {size:8d}  ERROR: {e}")
    print(f"{len(files)} files, {total} bytes ({total / 1e6:.2f} MB), {bad} bad")
    if not files or bad or total >= LIMIT:
        sys.exit(1)


if __name__ == "__main__":
    main()
