#!/usr/bin/env python3
"""PyTorch / scikit-image peers of `lrm bench-cuda`, on the same shapes and the same GPU.

Run on the GPU machine (tools/gpu-check.sh does): python3 benchmarks/peers/cuda_peers.py --out FILE.json

  attention   F.scaled_dot_product_attention, bf16, flash backend forced, 16 heads x 64,
              q 3072 against k 3072 / 1025 / 257          TFLOP/s = 4*B*H*Tq*Tk*D / t
  triplane    F.grid_sample(bilinear, zeros, align_corners=False) over the 3 planes (1,3,80,64,64)
              at 2^22 points, as OpenLRM samples them         Gpoints/s
  layernorm   F.layer_norm(3072x1024) then *(1+scale)+shift (ModLN), fp32
  gemm        torch.nn.functional.linear bf16 3072x1024 . 1024x4096 + bias
  marching    skimage.measure.marching_cubes on the same 384^3 rippled sphere (CPU reference point)

Device timings use CUDA events: warm-up first, median of repeats, random inputs (never zeros).
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def median_ms(fn, repeats=20):
    fn()
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = torch.device("cuda")
    results = []

    def add(name, ms, amount, unit, note=""):
        rate = amount / (ms * 1e-3)
        results.append({"name": name, "milliseconds": ms, "rate": rate, "unit": unit, "note": note})
        print(f"{name:<52} {ms:10.3f} ms  {rate:12.2f} {unit}  {note}", flush=True)

    torch.manual_seed(0)
    for keys in (3072, 1025, 257):
        q = torch.randn(1, 16, 3072, 64, device=device, dtype=torch.bfloat16)
        k = torch.randn(1, 16, keys, 64, device=device, dtype=torch.bfloat16)
        v = torch.randn(1, 16, keys, 64, device=device, dtype=torch.bfloat16)
        try:
            from torch.nn.attention import SDPBackend, sdpa_kernel
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v), args.repeats)
            note = "flash backend"
        except Exception as error:  # noqa: BLE001 - report and fall back to the default choice
            ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v), args.repeats)
            note = f"default backend ({type(error).__name__})"
        add(f"sdpa bf16 16x64 q3072 k{keys}", ms, 4.0 * 16 * 3072 * keys * 64 / 1e12, "TFLOP/s", note)

    planes = torch.rand(3, 80, 64, 64, device=device) * 2 - 1
    points = torch.rand(1 << 22, 3, device=device) * 2 - 1

    def sample():
        coords = torch.stack([points[:, [0, 1]], points[:, [0, 2]], points[:, [2, 1]]])  # (3, N, 2)
        return F.grid_sample(planes, coords.unsqueeze(1), mode="bilinear", padding_mode="zeros", align_corners=False)

    add("grid_sample 3 planes 80x64x64, 4M points", median_ms(sample, args.repeats), (1 << 22) / 1e9, "Gpoints/s")

    x = torch.randn(1, 3072, 1024, device=device)
    w = torch.rand(1024, device=device) + 0.5
    b = torch.rand(1024, device=device) - 0.5
    shift = torch.rand(1, 1, 1024, device=device) - 0.5
    scale = torch.rand(1, 1, 1024, device=device) - 0.5
    add("ModLN 3072x1024 fp32 (layer_norm + modulation)",
        median_ms(lambda: F.layer_norm(x, (1024,), w, b, 1e-6) * (1 + scale) + shift, args.repeats), 3072.0 * 1024 * 8 / 1e9, "GB/s")

    a = torch.randn(3072, 1024, device=device, dtype=torch.bfloat16)
    weight = torch.randn(4096, 1024, device=device, dtype=torch.bfloat16) * 0.05
    bias = torch.randn(4096, device=device, dtype=torch.bfloat16) * 0.1
    add("linear bf16 3072x1024x4096 +bias", median_ms(lambda: F.linear(a, weight, bias), args.repeats),
        2.0 * 3072 * 1024 * 4096 / 1e12, "TFLOP/s")

    try:
        import numpy as np
        from skimage.measure import marching_cubes
        n = 384
        grid = (np.arange(n) - n / 2.0) / n
        z, y, xx = np.meshgrid(grid, grid, grid, indexing="ij")
        field = (0.35 - np.sqrt(xx * xx + y * y + z * z) + 0.02 * np.sin(40 * xx) * np.cos(37 * y)).astype(np.float32)
        marching_cubes(field, 0.0)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            verts, faces, _, _ = marching_cubes(field, 0.0)
            times.append((time.perf_counter() - start) * 1e3)
        times.sort()
        add("skimage marching_cubes 384^3 (CPU)", times[1], n ** 3 / 1e6, "Mvoxel/s", f"{len(faces)} triangles")
    except ImportError as error:
        print(f"skimage not available: {error}")

    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": results}, handle, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
