"""What the PyTorch golden generators share (make_golden.py, make_grad_golden.py,
make_grad_golden_spatial.py): seeded float32 inputs, metadata strings, and GoldenSet,
the files one script owns, <directory>/<prefix><op>_<case>.safetensors, written through
golden_io.py with a size report and limit.

Importing this module pins torch to one thread, so reductions do not depend on the
machine and every generator gives byte-identical files on a rerun.
"""
import os
import zlib

import numpy as np
import torch

import golden_io

F32 = torch.float32
F64 = torch.float64

torch.set_num_threads(1)  # deterministic reductions regardless of the machine


def randn(g, *shape, scale=1.0, offset=0.0):
    return (torch.randn(*shape, generator=g, dtype=F32) * scale + offset).to(F32).contiguous()


def uniform(g, *shape, lo=-1.0, hi=1.0):
    return (torch.rand(*shape, generator=g, dtype=F32) * (hi - lo) + lo).to(F32).contiguous()


def meta_str(v):
    """Metadata value as the C# tests parse it: flags "0"/"1", numbers repr(), lists comma-separated."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return ",".join(meta_str(x) for x in v)
    return str(v)


def f32_value(x):
    """The float32 value nearest x, as a Python float (its repr round-trips to that float32)."""
    return float(np.float32(x))


class GoldenSet:
    """The files one generator owns: <directory>/<prefix><op>_<case>.safetensors.

    seed_prefix keeps each script's random streams what they were when its data was made:
    a case's generator is seeded with crc32("<seed_prefix><op>/<case>")."""

    def __init__(self, directory, prefix, seed_prefix, max_bytes):
        self.directory = directory
        self.prefix = prefix
        self.seed_prefix = seed_prefix
        self.max_bytes = max_bytes
        self._written = []

    def gen(self, op, case):
        """A generator seeded from the op/case name, so cases are independent of each other."""
        g = torch.Generator()
        g.manual_seed(zlib.crc32(f"{self.seed_prefix}{op}/{case}".encode()))
        return g

    def save(self, op, case, tensors, meta, diag=None):
        """tensors: name -> float32 tensor, float64 tensor (rounded once to float32), or
        (dtype, shape, raw bytes); meta: sizes and flags (metadata "op" and "case" are added)."""
        entries = {}
        for name, t in tensors.items():
            if isinstance(t, tuple):
                entries[name] = t
                continue
            t = t.detach()
            if t.dtype == F64:
                t = t.to(F32)
            if t.dtype != F32:
                raise TypeError(f"{op}/{case}/{name}: expected float32 or float64, got {t.dtype}")
            entries[name] = ("F32", list(t.shape), t.contiguous().numpy().astype("<f4").tobytes())
        md = {"op": op, "case": case}
        md.update({k: meta_str(v) for k, v in meta.items()})
        path = os.path.join(self.directory, f"{self.prefix}{op}_{case}.safetensors")
        size = golden_io.write(path, entries, md)
        self._written.append((os.path.basename(path), size, diag))

    def run(self, *steps):
        """Deletes this set's files, runs each step (which calls save), prints the table and
        asserts the total stays under max_bytes. Files of other prefixes are left alone."""
        os.makedirs(self.directory, exist_ok=True)
        for f in os.listdir(self.directory):
            if f.startswith(self.prefix) and f.endswith(".safetensors"):
                os.remove(os.path.join(self.directory, f))
        for step in steps:
            step()
        total = 0
        for fname, size, diag in self._written:
            total += size
            print(f"{fname:60s} {size:9d}  {diag or ''}".rstrip())
        print(f"{len(self._written)} files, {total} bytes ({total / 1e6:.2f} MB) in {self.directory}")
        assert total < self.max_bytes, f"{self.prefix}* golden data must stay under {self.max_bytes} bytes"
