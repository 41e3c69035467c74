#!/usr/bin/python3
"""Checks that the loss peers of kernels_torch.py compute what LrmNative computes, so their times compare the same work.

  lpips-loss  against the golden cases of tests/golden/training (lpips_weights/lpips_cases.safetensors, made by
              tests/golden/make_perceptual_golden.py in float64; LpipsTests hold LrmNative's Lpips to the same cases):
              the batch mean and the gradient with respect to the prediction;
  ssim-loss   against scikit-image's structural_similarity (Gaussian weights, sigma 1.5, population covariance: the same
              valid-window SSIM), on random images.

Prints the relative differences and exits 1 when one exceeds 1e-4 (float32 against float64 references).
Usage: /usr/bin/python3 benchmarks/peers/check_loss_peers.py
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernels_torch  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "training")


def read_safetensors(path):
    """The tensors of a safetensors file as NumPy arrays (F32/F64; the format: u64 header length, JSON header, data)."""
    with open(path, "rb") as f:
        data = f.read()
    length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + length])
    dtypes = {"F32": np.float32, "F64": np.float64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[8 + length + begin:8 + length + end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return tensors


def main():
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    worst = 0.0
    weights = read_safetensors(os.path.join(GOLDEN, "lpips_weights.safetensors"))
    cases = read_safetensors(os.path.join(GOLDEN, "lpips_cases.safetensors"))
    channels = [weights[f"features.{index}.weight"].shape[0] for index in (0, 3, 6, 8, 10)]
    value_and_grad = kernels_torch.alexnet_lpips(channels, torch.device("cpu"), weights=weights)
    for name in sorted({key.rsplit(".", 1)[0] for key in cases}):
        x = torch.tensor(cases[name + ".prediction"]).permute(0, 3, 1, 2).contiguous().requires_grad_()
        y = torch.tensor(cases[name + ".target"]).permute(0, 3, 1, 2).contiguous()
        loss, grad = value_and_grad(x, y)
        reference = float(cases[name + ".loss"])
        reference_grad = torch.tensor(cases[name + ".grad"]).permute(0, 3, 1, 2)
        value_error = abs(loss.item() - reference) / reference
        grad_error = ((grad - reference_grad).norm() / reference_grad.norm()).item()
        worst = max(worst, value_error, grad_error)
        print(f"lpips-loss {name}: peer {loss.item():.8f}, golden {reference:.8f} (relative {value_error:.1e}); gradient relative error {grad_error:.1e}")

    from skimage.metrics import structural_similarity
    rng = np.random.default_rng(3)
    x = rng.random((2, 3, 40, 40)).astype(np.float32)
    y = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    _, run, _ = kernels_torch.ssim_loss(dict(batch=2, side=40, channels=3, window=11), torch.device("cpu"))
    loss, _ = run.value_and_grad(torch.tensor(x).requires_grad_(), torch.tensor(y))
    reference = np.mean([structural_similarity(x[b].transpose(1, 2, 0), y[b].transpose(1, 2, 0), channel_axis=2, gaussian_weights=True,
                                               sigma=1.5, use_sample_covariance=False, data_range=1.0) for b in range(2)])
    error = abs((1 - loss.item()) - reference) / reference
    worst = max(worst, error)
    print(f"ssim-loss: peer SSIM {1 - loss.item():.7f}, scikit-image {reference:.7f} (relative {error:.1e})")
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
