#!/usr/bin/env python3
"""Golden SSIM values and gradients for LrmNative's image metrics (bindings/LrmNative/Metrics).

Run with Debian's PyTorch: /usr/bin/python3 tests/golden/make_metrics_golden.py
Writes tests/golden/metrics/ssim_<case>.safetensors (a few KB each), deterministically.

Reference (docs/metrics.md): SSIM of Wang et al. 2004 with an 11x11 Gaussian window
(sigma 1.5, normalised to sum 1), C1 = (0.01 L)^2, C2 = (0.03 L)^2, biased (population)
variances, per channel over every window fully inside the image (conv2d without padding,
as pytorch_msssim does), averaged over windows and channels. Computed here in float64 with
torch.nn.functional.conv2d; the gradient d SSIM / d x is torch autograd of that mean.

Each file holds tensors x, y (H, W, C) float32 (the inputs, exact), grad (H, W, C)
float32 (autograd in float64, rounded once) and metadata ssim (repr of the float64
value), data_range, height, width, channels.
"""
import os
import zlib

import torch
import torch.nn.functional as F

import golden_io

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "metrics")


def gaussian_window(size=11, sigma=1.5):
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(x, y, data_range):
    """x, y: (H, W, C) float64 tensors. Returns the mean SSIM (a 0-d tensor)."""
    c = x.shape[2]
    window = gaussian_window().expand(c, 1, 11, 11).contiguous()
    xb = x.permute(2, 0, 1).unsqueeze(0)
    yb = y.permute(2, 0, 1).unsqueeze(0)

    def filt(t):
        return F.conv2d(t, window, groups=c)

    mx, my = filt(xb), filt(yb)
    vx = filt(xb * xb) - mx * mx
    vy = filt(yb * yb) - my * my
    cxy = filt(xb * yb) - mx * my
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean()


def blur(t):
    k = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float32) / 4
    out = t.clone()
    out[1:-1] = (k[0] * t[:-2] + k[1] * t[1:-1] + k[2] * t[2:])
    out[:, 1:-1] = (k[0] * out[:, :-2] + k[1] * out[:, 1:-1] + k[2] * out[:, 2:])
    return out


def make_cases():
    cases = {}

    def gen(name):
        g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        return g

    g = gen("noise_rgb")
    x = torch.rand(27, 32, 3, generator=g)
    y = (x + 0.1 * torch.randn(27, 32, 3, generator=g)).clamp(0, 1)
    cases["noise_rgb_27x32x3"] = (x, y, 1.0)

    g = gen("grey_ramp")
    i = torch.arange(16, dtype=torch.float32)
    x = (i[:, None] * 0.03 + i[None, :] * 0.02).unsqueeze(2) + 0.05 * torch.rand(16, 16, 1, generator=g)
    y = torch.roll(x, shifts=1, dims=1) * 0.9 + 0.05
    cases["grey_ramp_16x16x1"] = (x.clamp(0, 1), y.clamp(0, 1), 1.0)

    g = gen("structured")
    x = torch.zeros(40, 48, 3)
    x[5:20, 6:30] = torch.tensor([0.9, 0.2, 0.1])
    x[22:37, 20:44] = torch.tensor([0.1, 0.5, 0.8])
    x += 0.02 * torch.rand(40, 48, 3, generator=g)
    y = blur(x) + 0.01 * torch.randn(40, 48, 3, generator=g)
    cases["structured_40x48x3"] = (x.clamp(0, 1), y.clamp(0, 1), 1.0)

    g = gen("range255")
    x = torch.floor(torch.rand(12, 13, 2, generator=g) * 256).clamp(0, 255)
    y = torch.floor((x + 20 * torch.randn(12, 13, 2, generator=g)).clamp(0, 255))
    cases["range255_12x13x2"] = (x, y, 255.0)

    g = gen("identical")
    x = torch.rand(20, 20, 3, generator=g)
    cases["identical_20x20x3"] = (x, x.clone(), 1.0)
    return cases


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(OUT, f))
    total = 0
    for name, (x, y, data_range) in make_cases().items():
        x = x.float().contiguous()
        y = y.float().contiguous()
        x64 = x.double().requires_grad_(True)
        value = ssim(x64, y.double(), data_range)
        value.backward()
        grad = x64.grad.float().contiguous()
        h, w, c = x.shape
        tensors = {
            "x": ("F32", [h, w, c], x.numpy().tobytes()),
            "y": ("F32", [h, w, c], y.numpy().tobytes()),
            "grad": ("F32", [h, w, c], grad.numpy().tobytes()),
        }
        metadata = {"ssim": repr(float(value)), "data_range": repr(data_range), "height": h, "width": w, "channels": c}
        total += golden_io.write(os.path.join(OUT, f"ssim_{name}.safetensors"), tensors, metadata)
        print(f"ssim_{name}: {h}x{w}x{c} L={data_range} ssim={float(value):.12f} |grad|max={float(grad.abs().max()):.3e}")
    assert total < 2_000_000, total
    print(f"{total} bytes")


if __name__ == "__main__":
    main()
