#!/usr/bin/python3
"""PyTorch golden references for LrmNative's image-space training losses beyond MSE: SSIM loss and LPIPS.

Run with Debian's PyTorch (python3-torch 1.13):  /usr/bin/python3 tests/golden/make_perceptual_golden.py
Writes tests/golden/training/{ssim_loss,lpips_weights,lpips_cases}.safetensors (format: tests/golden/README.md;
contents: tests/golden/training/README.md). Deterministic: every tensor comes from a torch.Generator seeded by
crc32(tag), torch runs single-threaded; reruns are byte-identical.

ssim_loss: mean over the batch of 1 - SSIM (the metric of docs/metrics.md, make_metrics_golden.ssim) and its
gradient, float64 autograd from the float32 inputs, rounded once.

lpips: LPIPS v0.1 with AlexNet features (Zhang et al. 2018; lpips' net='alex') written out here in torch:
x -> 2x - 1 -> (x - shift)/scale (lpips' ScalingLayer, its float32 constants) -> conv1 11x11/4 pad 2, ReLU [tap] ->
max pool 3/2 -> conv2 5x5 pad 2, ReLU [tap] -> max pool 3/2 -> conv3/4/5 3x3 pad 1, each ReLU [tap]; per tap
unit-normalise over channels (f / (sqrt(sum f^2) + 1e-10)), squared difference, 1x1 conv with the 'lin' weights,
spatial mean; sum over taps. The network is random (seeded), AlexNet-shaped with fewer channels so the file stays
small; lpips_weights.safetensors is in exactly the format a user's converted weights file has (docs/training.md).
The value and the gradient of the batch mean w.r.t. the prediction are float64 autograd.
"""
import os
import sys
import zlib

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import golden_io  # noqa: E402
from make_metrics_golden import ssim  # noqa: E402  (the metric's own torch reference)

OUT_DIR = os.path.join(HERE, "training")

# lpips' ScalingLayer buffers are float32; the reference uses exactly those values.
SHIFT = torch.tensor([-.030, -.088, -.188], dtype=torch.float32).to(torch.float64)
SCALE = torch.tensor([.458, .448, .450], dtype=torch.float32).to(torch.float64)
EPS = 1e-10
# torchvision alexnet().features: index, kernel, stride, padding of the five convolutions.
LAYERS = [(0, 11, 4, 2), (3, 5, 1, 2), (6, 3, 1, 1), (8, 3, 1, 1), (10, 3, 1, 1)]
# The test network's channels (AlexNet: 64, 192, 384, 256, 256).
CHANNELS = [16, 24, 32, 24, 16]


def gen(tag):
    g = torch.Generator()
    g.manual_seed(zlib.crc32(tag.encode("utf-8")))
    return g


def f32(t):
    t = t.detach().to(torch.float32).contiguous()
    return ("F32", list(t.shape), t.numpy().tobytes())


def f64(t):
    t = t.detach().to(torch.float64).contiguous()
    return ("F64", list(t.shape), t.numpy().tobytes())


def smooth_image(tag, batch, height, width):
    """Images (B, H, W, 3) in [0, 1]: bilinear upsampling of a coarse random grid, plus fine noise."""
    g = gen(tag)
    coarse = torch.rand(batch, 3, 6, 5, generator=g, dtype=torch.float32)
    image = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    image = image + 0.05 * torch.randn(batch, 3, height, width, generator=g, dtype=torch.float32)
    return image.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def perturbed(tag, image, amount):
    g = gen(tag)
    return (image + amount * torch.randn(image.shape, generator=g, dtype=torch.float32)).clamp(0, 1).contiguous()


# ---- SSIM loss ----

def ssim_loss(x, y):
    """mean over the batch of 1 - SSIM(x_b, y_b); x, y (B, H, W, C) float64."""
    return torch.stack([1 - ssim(x[b], y[b], 1.0) for b in range(x.shape[0])]).mean()


def ssim_case():
    tensors = {}
    target = smooth_image("ssim/target", 2, 16, 19)
    prediction = perturbed("ssim/prediction", target, 0.1)
    x64 = prediction.to(torch.float64).requires_grad_(True)
    loss = ssim_loss(x64, target.to(torch.float64))
    loss.backward()
    tensors["prediction"] = f32(prediction)
    tensors["target"] = f32(target)
    tensors["loss"] = f64(loss)
    tensors["grad"] = f32(x64.grad)
    print(f"ssim_loss: (2, 16, 19, 3) loss {float(loss):.9f} |grad|max {float(x64.grad.abs().max()):.3e}")
    return golden_io.write(os.path.join(OUT_DIR, "ssim_loss.safetensors"), tensors, {"module": "ssim_loss"})


# ---- LPIPS ----

def random_network():
    """torchvision/lpips-named tensors of a random AlexNet-shaped network (float32)."""
    tensors = {}
    inputs = 3
    for (index, kernel, _, _), channels in zip(LAYERS, CHANNELS):
        fan_in = inputs * kernel * kernel
        g = gen(f"lpips/features.{index}")
        tensors[f"features.{index}.weight"] = torch.randn(channels, inputs, kernel, kernel, generator=g) * (2.0 / fan_in) ** 0.5
        # Positive-leaning biases keep every position's features from being all zero (where autograd's sqrt gives NaN).
        tensors[f"features.{index}.bias"] = 0.05 + 0.05 * torch.randn(channels, generator=g)
        inputs = channels
    for k, channels in enumerate(CHANNELS):
        lin = torch.rand(1, channels, 1, 1, generator=gen(f"lpips/lin{k}"))
        lin[0, ::5, 0, 0] = 0  # lpips' real heads have exact zeros (clamped at 0 in training)
        tensors[f"lin{k}.model.1.weight"] = lin
    return {name: t.to(torch.float32).contiguous() for name, t in tensors.items()}


def lpips_alex(prediction, target, net, dtype=torch.float64):
    """Per-image LPIPS (B,) of images (B, H, W, 3) in [0, 1]."""
    def features(images):
        h = images.permute(0, 3, 1, 2).to(dtype)
        h = (2 * h - 1 - SHIFT.to(dtype)[None, :, None, None]) / SCALE.to(dtype)[None, :, None, None]
        taps = []
        for k, (index, _, stride, padding) in enumerate(LAYERS):
            h = F.relu(F.conv2d(h, net[f"features.{index}.weight"].to(dtype), net[f"features.{index}.bias"].to(dtype),
                                stride=stride, padding=padding))
            taps.append(h)
            if k < 2:
                h = F.max_pool2d(h, kernel_size=3, stride=2)
        return taps

    def unit(f):
        return f / (torch.sqrt((f * f).sum(dim=1, keepdim=True)) + EPS)

    total = 0
    for k, (f, t) in enumerate(zip(features(prediction), features(target))):
        assert float(torch.sqrt((f * f).sum(dim=1)).min()) > 0, f"tap {k}: a zero feature vector (autograd gives NaN there)"
        d = (unit(f) - unit(t)) ** 2
        total = total + F.conv2d(d, net[f"lin{k}.model.1.weight"].to(dtype)).mean(dim=(1, 2, 3))
    return total


LPIPS_CASES = {
    # name: (batch, height, width, noise)
    "b2_48x48": (2, 48, 48, 0.08),
    "b1_45x37": (1, 45, 37, 0.15),
    "b1_31x31": (1, 31, 31, 0.05),  # the smallest size: the second pool's output is 1x1
}


def lpips_cases(net):
    tensors = {}
    for name, (batch, height, width, noise) in LPIPS_CASES.items():
        target = smooth_image(f"lpips/{name}/target", batch, height, width)
        prediction = perturbed(f"lpips/{name}/prediction", target, noise)
        x64 = prediction.to(torch.float64).requires_grad_(True)
        per_image = lpips_alex(x64, target, net)
        loss = per_image.mean()
        loss.backward()
        assert bool(torch.isfinite(x64.grad).all())
        x32 = prediction.clone().requires_grad_(True)
        loss32 = lpips_alex(x32, target, net, torch.float32).mean()
        loss32.backward()
        error = float((x32.grad.double() - x64.grad).norm() / x64.grad.norm())
        tensors[f"{name}.prediction"] = f32(prediction)
        tensors[f"{name}.target"] = f32(target)
        tensors[f"{name}.lpips"] = f64(per_image)
        tensors[f"{name}.loss"] = f64(loss)
        tensors[f"{name}.grad"] = f32(x64.grad)
        print(f"lpips {name}: per image {[round(float(v), 6) for v in per_image]}; torch float32 vs float64: "
              f"loss {abs(float(loss32) - float(loss)) / float(loss):.1e}, grad {error:.1e}")
    meta = {"module": "lpips", "cases": ",".join(LPIPS_CASES)}
    return golden_io.write(os.path.join(OUT_DIR, "lpips_cases.safetensors"), tensors, meta)


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    net = random_network()
    sizes = {
        "ssim_loss.safetensors": ssim_case(),
        "lpips_weights.safetensors": golden_io.write(os.path.join(OUT_DIR, "lpips_weights.safetensors"),
                                                     {n: f32(t) for n, t in net.items()}, {}),
        "lpips_cases.safetensors": lpips_cases(net),
    }
    for k, v in sizes.items():
        print(f"  {k:28s} {v:8d} bytes")
    assert sum(sizes.values()) < 700_000, "perceptual golden data must stay small"


if __name__ == "__main__":
    main()
