#!/usr/bin/python3
"""PyTorch (and scikit-image) peer for LrmNative's kernel suites (issue 8).

Runs every shape of the manifest that LrmNative.Benchmarks writes (`--manifest FILE`: the shapes derived from
configs/*.json, so both sides run exactly the same sizes) through the PyTorch ops a PyTorch implementation of LRM
uses, on the same number of threads, and prints the results in LrmNative's results schema (lrm-bench/1,
docs/benchmarks.md) so `LrmNative.Benchmarks --json ... --peers FILE` can put the ratio next to each case.

    family          PyTorch op(s)
    gemm            F.linear (x @ W^T + b)
    layernorm       F.layer_norm
    modln           F.layer_norm(x) * (1 + scale) + shift   (OpenLRM's modulate)
    attention       F.scaled_dot_product_attention, or where torch lacks it (< 2.0) softmax(q k^T * scale) v
    triplane        F.grid_sample over the three planes (channels-first, as PyTorch stores them), features as (N, 3C)
    nerf-mlp        nn.Sequential(Linear, ReLU, ..., Linear)
    render-march    cat + sort + gather of the two sample sets, then OpenLRM's MipRayMarcher2 on white
    marching-cubes  skimage.measure.marching_cubes (Lewiner; single-threaded; also computes normals)
    resize          F.interpolate(mode='bicubic', antialias=True)
    patch-embed     F.conv2d(stride=P) -> tokens (flatten, transpose, contiguous: the layout ours writes)
    deconvolution   F.conv_transpose2d(stride=K)

    Backward families (training): the forward above run once per input set with requires_grad, then only
    torch.autograd.grad(outputs, inputs, grad_outputs, retain_graph=True) is timed, with random grad_outputs.
    gemm-backward           F.linear            -> input, weight, bias
    layernorm-backward      F.layer_norm        -> input, weight, bias
    modln-backward          modulate            -> input, weight, bias, shift, scale
    attention-backward      as attention        -> qkv (self) or q, kv (cross)
    triplane-backward       F.grid_sample       -> planes (the points get no gradient, as in training)
    nerf-mlp-backward       nn.Sequential       -> input and every weight and bias
    render-march-backward   MipRayMarcher2      -> both decoded sets, from the rgb and opacity gradients
    patch-embed-backward    F.conv2d            -> weight, bias (the image is an input)
    deconvolution-backward  F.conv_transpose2d  -> input, weight, bias
    resize-backward         F.interpolate       -> the position table (bicubic antialiased; bilinear for DINO v1)
    activation-backward     F.gelu              -> input
    layerscale-backward     x * gamma           -> x, gamma
    render-decode-backward  torch.where decode  -> the raw MLP output
    adamw                   torch.optim.AdamW(foreach=False).step() on one parameter (not a backward: the update)
    grid-points             torch.meshgrid of linspace axes stacked to (N, 3): one slab of the dense mesh grid
    triplane-sum            grid_sample over 3 projected planes (H channels), summed, + bias, ReLU
    nerf-query              OpenLRM's NeRF query of a mesh grid plane: grid_sample over 3 planes, (N, 3C), nn.Sequential MLP

    Training losses (CPU only: LrmNative computes them on the host), value and gradient w.r.t. the prediction, the forward
    and torch.autograd.grad timed together:
    ssim-loss               1 - SSIM, 11x11 Gaussian as separable depthwise F.conv2d passes, on (B, 3, S, S)
    lpips-loss              LPIPS-AlexNet from torch.nn layers (scaling, features to relu5, unit norm, 1x1 heads), frozen

Timing mirrors the BenchmarkDotNet job: warm-up iterations, then iterations of at least --iteration-time seconds
(as many calls as fit), mean and standard deviation of the per-call time over the iterations; inputs rotated over
enough copies to exceed 128 MiB, random non-zero data. On CUDA every iteration is timed with CUDA events.

Usage:
  /usr/bin/python3 benchmarks/peers/kernels_torch.py --manifest manifest.json --threads 2 --out peers.json [--long]
"""
import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROTATION_BYTES = 128.0 * 1024 * 1024
MAX_SETS = 16
SCHEMA = "lrm-bench/1"
MANIFEST_SCHEMA = "lrm-bench-manifest/1"


def rotation_count(bytes_per_set):
    """Copies of the inputs so that together they exceed 128 MiB (LrmNative's TensorRing rule)."""
    if bytes_per_set <= 0:
        return 1
    return int(min(MAX_SETS, max(1, math.ceil(ROTATION_BYTES / bytes_per_set))))


class Timer:
    """Per-call seconds of fn over rotated input sets: warm-up, calibration, then timed iterations."""

    def __init__(self, device, warmup, iterations, iteration_time):
        self.device = device
        self.warmup = warmup
        self.iterations = iterations
        self.iteration_time = iteration_time

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def _run(self, fn, sets, calls, start_index):
        """Seconds for `calls` calls (CUDA: event time)."""
        if self.device.type == "cuda":
            begin = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            begin.record()
            for i in range(calls):
                fn(sets[(start_index + i) % len(sets)])
            end.record()
            end.synchronize()
            return begin.elapsed_time(end) / 1e3
        start = time.perf_counter()
        for i in range(calls):
            fn(sets[(start_index + i) % len(sets)])
        return time.perf_counter() - start

    def measure(self, fn, sets):
        index = 0
        single = None
        for _ in range(max(1, self.warmup)):
            single = self._run(fn, sets, 1, index)
            index += 1
        calls = max(1, int(math.ceil(self.iteration_time / max(single, 1e-9))))
        per_call = []
        for _ in range(self.iterations):
            seconds = self._run(fn, sets, calls, index)
            index += calls
            per_call.append(seconds / calls)
        mean = statistics.fmean(per_call)
        stddev = statistics.stdev(per_call) if len(per_call) > 1 else 0.0
        return mean, stddev, len(per_call)


def uniform(generator, low, high, *shape, device):
    return (torch.rand(*shape, generator=generator) * (high - low) + low).to(device)


# ---- one builder per family: (make_set(generator) -> tuple of tensors, fn(set) -> result, note) ---------------------

def gemm(d, device):
    m, n, k = d["m"], d["n"], d["k"]

    def make(g):
        return (uniform(g, -1, 1, m, k, device=device), uniform(g, -0.05, 0.05, n, k, device=device),
                uniform(g, -0.1, 0.1, n, device=device))

    return make, lambda s: F.linear(s[0], s[1], s[2]), "F.linear"


def layernorm(d, device):
    rows, channels = d["rows"], d["channels"]

    def make(g):
        return (uniform(g, -2, 2, rows, channels, device=device), uniform(g, 0.5, 1.5, channels, device=device),
                uniform(g, -0.5, 0.5, channels, device=device))

    return make, lambda s: F.layer_norm(s[0], (channels,), s[1], s[2], 1e-6), "F.layer_norm"


def modln(d, device):
    tokens, channels = d["tokens"], d["channels"]

    def make(g):
        return (uniform(g, -2, 2, 1, tokens, channels, device=device), uniform(g, 0.5, 1.5, channels, device=device),
                uniform(g, -0.5, 0.5, channels, device=device), uniform(g, -0.5, 0.5, 1, 1, channels, device=device),
                uniform(g, -0.5, 0.5, 1, 1, channels, device=device))

    def run(s):
        return F.layer_norm(s[0], (channels,), s[1], s[2], 1e-6) * (1 + s[4]) + s[3]

    return make, run, "F.layer_norm(x) * (1 + scale) + shift"


def attention(d, device):
    self_attention = bool(d["self"])
    tq, tk, heads, head_dim = d["query_tokens"], d["key_tokens"], d["heads"], d["head_dim"]
    width = heads * head_dim
    scale = 1.0 / math.sqrt(head_dim)
    sdpa = getattr(F, "scaled_dot_product_attention", None)

    def make(g):
        if self_attention:
            return (uniform(g, -1, 1, 1, tq, 3 * width, device=device),)
        return (uniform(g, -1, 1, 1, tq, width, device=device), uniform(g, -1, 1, 1, tk, 2 * width, device=device))

    def split_heads(x, tokens):
        return x.view(1, tokens, heads, head_dim).transpose(1, 2)

    def run(s):
        if self_attention:
            q, k, v = s[0].split(width, dim=-1)
        else:
            q = s[0]
            k, v = s[1].split(width, dim=-1)
        q, k, v = split_heads(q, tq), split_heads(k, tk), split_heads(v, tk)
        if sdpa is not None:
            out = sdpa(q, k, v)
        else:
            out = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * scale, dim=-1).matmul(v)
        return out.transpose(1, 2).reshape(1, tq, width)

    note = ("F.scaled_dot_product_attention" if sdpa is not None else
            f"explicit softmax(q k^T * scale) v: F.scaled_dot_product_attention is not in torch {torch.__version__}")
    return make, run, note


def triplane(d, device):
    points, resolution, channels = d["points"], d["resolution"], d["channels"]

    def make(g):
        return (uniform(g, -1, 1, 3, channels, resolution, resolution, device=device),
                uniform(g, -1, 1, points, 3, device=device))

    def run(s):
        planes, p = s
        # OpenLRM's projections: plane 0 (x, y), plane 1 (x, z), plane 2 (z, y); u -> width, v -> height.
        grid = torch.stack([p[:, [0, 1]], p[:, [0, 2]], p[:, [2, 1]]]).unsqueeze(1)  # (3, 1, N, 2)
        sampled = F.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (3, C, 1, N)
        return sampled.squeeze(2).permute(2, 0, 1).reshape(points, 3 * channels)

    return make, run, "F.grid_sample over 3 planes (channels-first), features as (N, 3C)"


def triplane_sum(d, device):
    points, resolution, hidden = d["points"], d["resolution"], d["hidden"]

    def make(g):
        return (uniform(g, -1, 1, 3, hidden, resolution, resolution, device=device),
                uniform(g, -1, 1, points, 3, device=device), uniform(g, -0.1, 0.1, hidden, device=device))

    def run(s):
        planes, p, bias = s
        grid = torch.stack([p[:, [0, 1]], p[:, [0, 2]], p[:, [2, 1]]]).unsqueeze(1)  # (3, 1, N, 2)
        sampled = F.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (3, H, 1, N)
        return torch.relu(sampled.squeeze(2).sum(0).t() + bias)  # (N, H)

    return make, run, "F.grid_sample over 3 projected planes, summed over planes, + bias, ReLU, as (N, H)"


def make_mlp(d, device):
    """The NeRF MLP of a nerf-mlp(-backward) case: Linear, ReLU, ..., Linear."""
    width_in, hidden, layers, width_out = d["input_width"], d["hidden"], d["layers"], d["output_width"]
    widths = [width_in] + [hidden] * (layers - 1) + [width_out]
    modules = []
    for layer in range(layers):
        modules.append(torch.nn.Linear(widths[layer], widths[layer + 1]))
        if layer < layers - 1:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules).to(device).eval()


def nerf_mlp(d, device):
    rows, width_in = d["rows"], d["input_width"]
    mlp = make_mlp(d, device)

    def make(g):
        return (uniform(g, -1, 1, rows, width_in, device=device),)

    return make, lambda s: mlp(s[0]), "nn.Sequential(Linear, ReLU, ...)"


def render_march(d, device):
    rays, samples_a, samples_b = d["rays"], d["samples_a"], d["samples_b"]
    near, far = 1.0, 3.0

    def make(g):
        def depths(samples):
            return uniform(g, near, far, rays, samples, device="cpu").sort(dim=-1).values.to(device)

        def decoded(samples):
            x = uniform(g, 0, 1, rays, samples, 4, device="cpu")
            x[..., 0] = -1 + 4 * x[..., 0]
            return x.to(device)

        return depths(samples_a), decoded(samples_a), depths(samples_b), decoded(samples_b)

    def run(s):
        # OpenLRM's unify_samples: merge the sets by depth.
        all_depths = torch.cat([s[0], s[2]], dim=-1)
        all_samples = torch.cat([s[1], s[3]], dim=-2)
        depths, order = torch.sort(all_depths, dim=-1)
        samples = torch.gather(all_samples, -2, order.unsqueeze(-1).expand(-1, -1, 4))
        # MipRayMarcher2 (midpoints, softplus(x - 1) density, transmittance with 1e-10), composited on white.
        deltas = depths[:, 1:] - depths[:, :-1]
        colors = (samples[:, :-1, 1:] + samples[:, 1:, 1:]) / 2
        densities = (samples[:, :-1, 0] + samples[:, 1:, 0]) / 2
        mids = (depths[:, :-1] + depths[:, 1:]) / 2
        alpha = 1 - torch.exp(-F.softplus(densities - 1) * deltas)
        shifted = torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-10], dim=-1)
        weights = alpha * torch.cumprod(shifted, dim=-1)[:, :-1]
        rgb = (weights.unsqueeze(-1) * colors).sum(dim=-2)
        total = weights.sum(dim=-1)
        depth = torch.nan_to_num((weights * mids).sum(dim=-1) / total, float("inf"))
        depth = torch.clamp(depth, near, far)
        return rgb + (1 - total).unsqueeze(-1), depth, total

    return make, run, "cat + sort + gather, then MipRayMarcher2 (OpenLRM) on white"


def rippled_sphere(n, radius):
    """LrmNative's MarchingCubesBenchmarks field: radius - |p| + 0.08 sin 9x sin 9y sin 9z, [z][y][x]."""
    c = np.float32(-1) + np.float32(2) * np.arange(n, dtype=np.float32) / np.float32(n - 1)
    s = np.sin(np.float32(9) * c).astype(np.float32)
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    ripple = np.float32(0.08) * s[:, None, None] * s[None, :, None] * s[None, None, :]
    return (np.float32(radius) + ripple - np.sqrt(x * x + y * y + z * z)).astype(np.float32)


def marching_cubes_case(d, device):
    from skimage import measure  # noqa: F401  (ImportError -> the case is skipped with the reason)

    n = d["resolution"]
    rng = np.random.default_rng(n)

    def make(_g):
        return (rippled_sphere(n, 0.6 + 0.02 * float(rng.random())),)

    return make, lambda s: measure.marching_cubes(s[0], level=0.0), "skimage.measure.marching_cubes (Lewiner), single-threaded, also computes normals"


def resize(d, device):
    planes, size_in, size_out = d["planes"], d["in_size"], d["out_size"]

    def make(g):
        return (uniform(g, 0, 1, 1, planes, size_in, size_in, device=device),)

    def run(s):
        return F.interpolate(s[0], size=(size_out, size_out), mode="bicubic", align_corners=False, antialias=True)

    return make, run, "F.interpolate(mode='bicubic', antialias=True)"


def patch_embed(d, device):
    size, patch, width = d["size"], d["patch"], d["width"]
    bound = 1.0 / math.sqrt(3 * patch * patch)

    def make(g):
        return (uniform(g, 0, 1, 1, 3, size, size, device=device), uniform(g, -bound, bound, width, 3, patch, patch, device=device),
                uniform(g, -bound, bound, width, device=device))

    def run(s):
        return F.conv2d(s[0], s[1], s[2], stride=patch).flatten(2).transpose(1, 2).contiguous()

    return make, run, "F.conv2d(stride=P) -> (tokens, width) contiguous"


def deconvolution(d, device):
    batch, cin, cout, side, kernel = d["batch"], d["in_channels"], d["out_channels"], d["side"], d["kernel"]
    bound = 1.0 / math.sqrt(cin)

    def make(g):
        return (uniform(g, -1, 1, batch, cin, side, side, device=device), uniform(g, -bound, bound, cin, cout, kernel, kernel, device=device),
                uniform(g, -bound, bound, cout, device=device))

    return make, lambda s: F.conv_transpose2d(s[0], s[1], s[2], stride=kernel), "F.conv_transpose2d(stride=K)"


# ---- backward families: the forward builder's op under autograd, only the backward timed ------------------------------

def backward_of(forward, grad_inputs, select_outputs=None, parameters=None):
    """A builder timing torch.autograd.grad of `forward`'s op.

    grad_inputs: indices of the forward set's tensors that get gradients; select_outputs(result) -> the outputs whose
    gradients flow in (default: the whole result); parameters(d, device) -> (module run, extra leaves) for ops whose
    parameters live in a module. Each set runs the forward once with requires_grad and keeps its graph
    (retain_graph=True), so every timed call is the backward alone, on fresh random upstream gradients per set.
    """

    def builder(d, device):
        make, run, note = forward(d, device)
        extra = list(parameters(run)) if parameters else []

        def make_backward(g):
            with torch.enable_grad():
                inputs = [t.requires_grad_() if i in grad_inputs else t for i, t in enumerate(make(g))]
                wanted = sorted(i for i in grad_inputs if i < len(inputs))  # self-attention has one packed qkv
                result = run(inputs)
                outputs = select_outputs(result) if select_outputs else result
                outputs = tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
                grads = tuple((torch.rand(o.shape, generator=g) * 2 - 1).to(device) for o in outputs)
                leaves = tuple(inputs[i] for i in wanted) + tuple(extra)
            return outputs, leaves, grads

        def run_backward(s):
            with torch.enable_grad():
                return torch.autograd.grad(s[0], s[1], s[2], retain_graph=True)

        return make_backward, run_backward, f"torch.autograd.grad of {note}"

    return builder


def nerf_mlp_backward(d, device):
    rows, width_in = d["rows"], d["input_width"]
    mlp = make_mlp(d, device)

    def make(g):
        return (uniform(g, -1, 1, rows, width_in, device=device),)

    def run(s):
        return mlp(s[0])

    run.parameters = lambda: mlp.parameters()
    return make, run, "nn.Sequential(Linear, ReLU, ...) (input and every weight and bias)"


def resize_table(d, device):
    planes, size_in, size_out, bicubic = d["planes"], d["in_size"], d["out_size"], d["bicubic"]

    def make(g):
        return (uniform(g, -1, 1, 1, planes, size_in, size_in, device=device),)

    if bicubic:
        return make, lambda s: F.interpolate(s[0], size=(size_out, size_out), mode="bicubic", align_corners=False, antialias=True), \
            "F.interpolate(mode='bicubic', antialias=True) of the position table"
    return make, lambda s: F.interpolate(s[0], size=(size_out, size_out), mode="bilinear", align_corners=False), \
        "F.interpolate(mode='bilinear') of the position table"


def gelu(d, device):
    rows, channels = d["rows"], d["channels"]

    def make(g):
        return (uniform(g, -3, 3, rows, channels, device=device),)

    return make, lambda s: F.gelu(s[0]), "F.gelu (exact, erf)"


def layer_scale(d, device):
    tokens, channels = d["tokens"], d["channels"]

    def make(g):
        return (uniform(g, -2, 2, 1, tokens, channels, device=device), uniform(g, 0.5, 1.5, channels, device=device))

    return make, lambda s: s[0] * s[1], "x * gamma (DINOv2 LayerScale)"


def render_decode(d, device):
    rows = d["rows"]

    def make(g):
        return (uniform(g, -3, 3, 1, rows, 4, device=device), uniform(g, -1.06, 1.06, 1, rows, 3, device=device))

    def run(s):
        raw, points = s
        inside = (points.abs() <= 1.0).all(dim=-1, keepdim=True)
        decoded = torch.cat([raw[..., :1], torch.sigmoid(raw[..., 1:]) * 1.002 - 0.001], dim=-1)
        outside = torch.tensor([-3.4028234663852886e38 / 8, 0.0, 0.0, 0.0], device=raw.device)
        return torch.where(inside, decoded, outside)

    return make, run, "torch.where(inside box, cat(sigma_raw, sigmoid(rgb) * 1.002 - 0.001), constants)"


def adamw(d, device):
    rows, columns = d["rows"], d["columns"]

    def make(g):
        parameter = torch.nn.Parameter(uniform(g, -0.05, 0.05, rows, columns, device=device))
        parameter.grad = uniform(g, -1e-2, 1e-2, rows, columns, device=device)
        optimizer = torch.optim.AdamW([parameter], lr=4e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.05, foreach=False)
        optimizer.step()  # creates the moments, so every timed call is a steady-state step
        return (optimizer,)

    return make, lambda s: s[0].step(), "torch.optim.AdamW(foreach=False).step() on one parameter"


def grid_points(d, device):
    resolution, planes, first = d["resolution"], d["planes"], d["first"]
    z0 = first // (resolution * resolution)

    def make(_g):
        return ()

    def run(_s):
        axis = torch.linspace(-1.0, 1.0, resolution, device=device)
        z, y, x = torch.meshgrid(axis[z0:z0 + planes], axis, axis, indexing="ij")
        return torch.stack((x, y, z), dim=-1).reshape(-1, 3)

    return make, run, "torch.meshgrid of linspace axes, stacked to (N, 3) (OpenLRM's grid)"


def nerf_query(d, device):
    grid, plane, resolution, channels = d["grid"], d["plane"], d["resolution"], d["channels"]
    points = grid * grid
    sample = triplane(dict(points=points, resolution=resolution, channels=channels), device)[1]
    mlp = make_mlp(dict(input_width=3 * channels, hidden=d["hidden"], layers=d["layers"], output_width=4), device)
    # The grid's middle z-plane, x fastest, as the mesh query makes it (OpenLRM: meshgrid of linspace axes).
    axis = torch.linspace(-1.0, 1.0, grid)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    coordinates = torch.stack((x, y, torch.full_like(x, axis[plane].item())), dim=-1).reshape(points, 3).to(device)

    def make(g):
        return (uniform(g, -1, 1, 3, channels, resolution, resolution, device=device), coordinates)

    return make, lambda s: mlp(sample(s)), "F.grid_sample over 3 planes, features (N, 3C), nn.Sequential(Linear, ReLU, ...)"


# ---- training losses: value and gradient with respect to the prediction, forward and backward timed together ------------

def ssim_loss(d, device):
    """1 - SSIM (11x11 Gaussian, sigma 1.5, valid windows, C1 = 0.01^2, C2 = 0.03^2, data range 1) of (B, 3, S, S) float32
    images, the window applied as separable depthwise convolutions (1x11 then 11x1, as pytorch_msssim filters), and
    torch.autograd.grad of it with respect to the prediction: the three adjoint filters of x, x^2 and xy, as ours."""
    batch, side, channels, window = d["batch"], d["side"], d["channels"], d["window"]
    k = torch.arange(window, dtype=torch.float64) - window // 2
    g = torch.exp(-k * k / (2 * 1.5 ** 2))
    g = (g / g.sum()).to(torch.float32)
    rows = g.view(1, 1, 1, window).repeat(channels, 1, 1, 1).to(device)
    columns = g.view(1, 1, window, 1).repeat(channels, 1, 1, 1).to(device)
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def blur(t):
        return F.conv2d(F.conv2d(t, rows, groups=channels), columns, groups=channels)

    def make(gen):
        return (uniform(gen, 0, 1, batch, channels, side, side, device=device).requires_grad_(),
                uniform(gen, 0, 1, batch, channels, side, side, device=device))

    def run(s):
        x, y = s
        with torch.enable_grad():
            mx, my = blur(x), blur(y)
            vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
            ssim = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
            loss = 1 - ssim.mean()
            return loss.detach(), torch.autograd.grad(loss, x)[0]

    run.value_and_grad = lambda x, y: run((x, y))
    return make, run, "separable depthwise F.conv2d SSIM on (B, 3, S, S), torch.autograd.grad w.r.t. the prediction"


def alexnet_lpips(channels, device, weights=None, seed=7):
    """LPIPS v0.1 with AlexNet features written with torch.nn (not the lpips package): lpips' scaling layer, torchvision's
    alexnet().features up to the fifth ReLU (taps after each ReLU), unit normalisation over channels (+1e-10), the linear
    heads as bias-free 1x1 convolutions, spatial mean, sum over taps, mean over the batch; parameters frozen. Weights from
    `weights` (a dict in the user's format: features.{0,3,6,8,10}.{weight,bias}, lin{k}.model.1.weight) or random from
    `seed` in LrmNative's ranges. Returns value_and_grad(x, y) of images (B, 3, H, W) in [0, 1]: (loss, d loss / d x)."""
    layers = [(0, 11, 4, 2), (3, 5, 1, 2), (6, 3, 1, 1), (8, 3, 1, 1), (10, 3, 1, 1)]
    generator = torch.Generator().manual_seed(seed)
    convolutions, heads, previous = [], [], 3
    for k, ((index, kernel, stride, padding), count) in enumerate(zip(layers, channels)):
        convolution = torch.nn.Conv2d(previous, count, kernel, stride=stride, padding=padding)
        head = torch.nn.Conv2d(count, 1, 1, bias=False)
        with torch.no_grad():
            if weights is not None:
                convolution.weight.copy_(torch.tensor(np.array(weights[f"features.{index}.weight"])))
                convolution.bias.copy_(torch.tensor(np.array(weights[f"features.{index}.bias"])))
                head.weight.copy_(torch.tensor(np.array(weights[f"lin{k}.model.1.weight"])))
            else:
                bound = 1.0 / math.sqrt(previous * kernel * kernel)
                convolution.weight.copy_(torch.rand(convolution.weight.shape, generator=generator) * 2 * bound - bound)
                convolution.bias.copy_(torch.rand(count, generator=generator) * 2 * bound - bound)
                head.weight.copy_(torch.rand(head.weight.shape, generator=generator) / count)
        convolutions.append(convolution.to(device).requires_grad_(False))
        heads.append(head.to(device).requires_grad_(False))
        previous = count
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1).to(device)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1).to(device)

    def taps(image):
        h = ((2 * image - 1) - shift) / scale
        out = []
        for k, convolution in enumerate(convolutions):
            h = F.relu(convolution(h))
            out.append(h)
            if k < 2:
                h = F.max_pool2d(h, 3, 2)
        return out

    def unit(t):
        return t / (torch.sqrt((t * t).sum(dim=1, keepdim=True)) + 1e-10)

    def value_and_grad(x, y):
        with torch.enable_grad():
            distance = 0
            for head, f, t in zip(heads, taps(x), taps(y)):
                distance = distance + head((unit(f) - unit(t)) ** 2).mean(dim=(2, 3))
            loss = distance.mean()
            return loss.detach(), torch.autograd.grad(loss, x)[0]

    return value_and_grad


def lpips_loss(d, device):
    """LPIPS-AlexNet (alexnet_lpips) of the manifest's channel counts with random frozen weights, on (B, 3, S, S) patches:
    the forward of prediction and target and torch.autograd.grad with respect to the prediction."""
    batch, side = d["batch"], d["side"]
    value_and_grad = alexnet_lpips([d["conv1"], d["conv2"], d["conv3"], d["conv4"], d["conv5"]], device)

    def make(gen):
        return (uniform(gen, 0, 1, batch, 3, side, side, device=device).requires_grad_(),
                uniform(gen, 0, 1, batch, 3, side, side, device=device))

    return make, lambda s: value_and_grad(s[0], s[1]), "LPIPS-AlexNet from torch.nn layers (frozen), torch.autograd.grad w.r.t. the prediction"


# Families computed on the host by LrmNative (no device kernel): no CUDA peer.
HOST_ONLY = {"ssim-loss", "lpips-loss"}

FAMILIES = {
    "gemm": gemm, "layernorm": layernorm, "modln": modln, "attention": attention, "triplane": triplane,
    "nerf-mlp": nerf_mlp, "render-march": render_march, "marching-cubes": marching_cubes_case, "resize": resize,
    "patch-embed": patch_embed, "deconvolution": deconvolution,
    "gemm-backward": backward_of(gemm, {0, 1, 2}),
    "layernorm-backward": backward_of(layernorm, {0, 1, 2}),
    "modln-backward": backward_of(modln, {0, 1, 2, 3, 4}),
    "attention-backward": backward_of(attention, {0, 1}),
    "triplane-backward": backward_of(triplane, {0}),
    "nerf-mlp-backward": backward_of(nerf_mlp_backward, {0}, parameters=lambda run: run.parameters()),
    "render-march-backward": backward_of(render_march, {1, 3}, select_outputs=lambda r: (r[0], r[2])),
    "patch-embed-backward": backward_of(patch_embed, {1, 2}),
    "deconvolution-backward": backward_of(deconvolution, {0, 1, 2}),
    "resize-backward": backward_of(resize_table, {0}),
    "activation-backward": backward_of(gelu, {0}),
    "layerscale-backward": backward_of(layer_scale, {0, 1}),
    "render-decode-backward": backward_of(render_decode, {0}),
    "adamw": adamw,
    "grid-points": grid_points,
    "nerf-query": nerf_query,
    "triplane-sum": triplane_sum,
    "ssim-loss": ssim_loss,
    "lpips-loss": lpips_loss,
}


def rate(entry, seconds):
    unit = entry["rate_unit"]
    if unit == "GFLOP/s":
        return entry["flops"] / seconds / 1e9
    if unit == "GB/s":
        return entry["bytes"] / seconds / 1e9
    if unit == "Mvoxels/s":
        return entry["items"] / seconds / 1e6
    return None


def cpu_info():
    model, cores, flags = platform.processor() or platform.machine(), set(), ""
    try:
        physical = None
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value
                elif key == "physical id":
                    physical = value
                elif key == "core id":
                    cores.add((physical, value))
                elif key == "flags" and not flags:
                    flags = value
    except OSError:
        pass
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile"]
    features = " ".join(f for f in wanted if f in flags.split())
    return model, len(cores) or os.cpu_count(), features or None


def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True, help="shapes JSON from `LrmNative.Benchmarks --manifest FILE`")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    parser.add_argument("--out", help="write the JSON here (atomically) instead of stdout")
    parser.add_argument("--long", action="store_true", help="5 warm-ups, 20 iterations of >= 250 ms (default: 2, 5 of >= 100 ms)")
    parser.add_argument("--family", action="append", help="only these families (repeatable)")
    args = parser.parse_args()

    with open(args.manifest) as f:
        manifest = json.load(f)
    if manifest.get("schema") != MANIFEST_SCHEMA:
        sys.exit(f"{args.manifest}: expected schema '{MANIFEST_SCHEMA}', got '{manifest.get('schema')}'")
    torch.set_num_threads(args.threads)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        sys.exit("--device cuda: torch.cuda.is_available() is False")
    device = torch.device("cuda" if use_cuda else "cpu")
    timer = Timer(device, 5 if args.long else 2, 20 if args.long else 5, 0.25 if args.long else 0.1)
    backend = "pytorch-cuda" if use_cuda else "pytorch-cpu"
    start = datetime.datetime.now(datetime.timezone.utc)

    entries, notes = [], set()
    with torch.no_grad():
        for number, case in enumerate(manifest["shapes"]):
            family = case["family"]
            if args.family and family not in args.family:
                continue
            entry = {"family": family, "shape": case["shape"], "config": case["config"], "backend": backend,
                     "time_mean_s": None, "time_stddev_s": None, "samples": 0, "device_time_mean_s": None,
                     "flops": case["flops"], "bytes": case["bytes"], "rate": None, "rate_unit": case["rate_unit"],
                     "roofline_fraction": None, "bound": None, "peer": None, "peer_time_mean_s": None,
                     "peer_time_stddev_s": None, "ratio": None, "peer_note": None, "note": None, "skipped": None}
            if family == "marching-cubes":
                entry["backend"] = "scikit-image"
            builder = FAMILIES.get(family)
            try:
                if builder is None:
                    raise NotImplementedError(f"no peer for family '{family}'")
                if use_cuda and family in HOST_ONLY:
                    raise NotImplementedError(f"'{family}' is computed on the host by LrmNative (no device kernel): no CUDA peer")
                make, run, note = builder(case["dims"], device)
                generator = torch.Generator().manual_seed(1000 + number)
                sets = [make(generator) for _ in range(rotation_count(case["bytes"]))]
                mean, stddev, samples = timer.measure(run, sets)
                del sets
            except ImportError as error:
                entry["skipped"] = f"scikit-image is not importable ({error}); install python3-skimage"
                notes.add(f"{family}: skipped, scikit-image is not importable")
            except (NotImplementedError, RuntimeError) as error:
                entry["skipped"] = f"{type(error).__name__}: {error}"
            else:
                entry.update(time_mean_s=mean, time_stddev_s=stddev, samples=samples, rate=rate(case, mean), note=note)
                if use_cuda and family != "marching-cubes":
                    entry["device_time_mean_s"] = mean
                if family.startswith("attention") and "explicit" in note:
                    notes.add(f"{family}: {note}")
                if family == "marching-cubes":
                    import skimage
                    notes.add(f"marching-cubes: scikit-image {skimage.__version__} measure.marching_cubes (Lewiner), "
                              "single-threaded whatever --threads says, and it also computes vertex normals")
            status = entry["skipped"] or f"{entry['time_mean_s'] * 1e3:.2f} ms"
            print(f"{family:15s} {case['shape']:55s} {status}", file=sys.stderr, flush=True)
            entries.append(entry)

    model, cores, features = cpu_info()
    gpu = None
    if use_cuda:
        gpu = {"name": torch.cuda.get_device_name(0), "driver": f"CUDA runtime {torch.version.cuda}"}
    try:
        import skimage
        skimage_version = f", scikit-image {skimage.__version__}"
    except ImportError:
        skimage_version = ", no scikit-image"
    runtime = f"Python {platform.python_version()}, PyTorch {torch.__version__}, NumPy {np.__version__}{skimage_version}"
    results = {
        "schema": SCHEMA,
        "machine": {
            "id": "peer", "cpu": model, "cores": cores, "logical_processors": os.cpu_count(), "cpu_features": features,
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "os": f"{platform.platform()}", "dotnet": None, "runtime": runtime, "gpu": gpu,
            "date": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": git_commit(), "threads": args.threads,
            "native": None, "blas": None, "peak": None,
        },
        "run": {
            "tool": "benchmarks/peers/kernels_torch.py", "job": "long" if args.long else "short", "preliminary": False,
            "note": None, "peer": f"PyTorch {torch.__version__} {device.type}, {args.threads} threads",
            "peer_notes": sorted(notes), "command": " ".join([sys.executable] + sys.argv),
        },
        "entries": entries,
    }
    text = json.dumps(results, indent=2) + "\n"
    if args.out:
        temporary = f"{args.out}.{os.getpid()}.tmp"
        with open(temporary, "w") as f:
            f.write(text)
        os.replace(temporary, args.out)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
