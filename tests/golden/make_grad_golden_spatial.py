#!/usr/bin/python3
"""PyTorch autograd references for LrmNative's spatial backward ops (issue 6, CPU half).

Run with Debian's PyTorch (package python3-torch, 1.13):

    /usr/bin/python3 tests/golden/make_grad_golden_spatial.py

Writes tests/golden/grad/spatial_<op>_<case>.safetensors (format: tests/golden/README.md,
written by golden_io.py). Only files named spatial_* are removed and rewritten; other
scripts own the rest of the folder (core_*).

Each file holds the forward's inputs (same names as tests/golden/data/<op>_*), the upstream
gradient(s) of the outputs (d<output>), and the reference input/parameter gradients
grad_<input>. Inputs are float32 from seeded torch generators; gradients are computed by
autograd in float64 from exactly those float32 values and rounded once to float32, so they
are (close to) correctly rounded, not PyTorch-float32 results. Metadata carries every size
and flag needed to call the op. Deterministic: running twice gives byte-identical files.

Ops: patch_embed (F.conv2d), deconv (F.conv_transpose2d), resize and resize_scaled
(F.interpolate, bilinear/bicubic, antialias), triplane (F.grid_sample on three planes,
OpenLRM's (x,y), (x,z), (z,y) order as tests/golden/make_golden.py), mlp (F.linear +
activations), nerf_decode, render_decode and render_march (torch re-implementations of
kernels/nerf.cuh and kernels/render.cuh, as tests/golden/make_model_golden.py's march).
"""
import math
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep tests/golden free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402

torch.set_num_threads(1)
GRAD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grad")
PREFIX = "spatial_"
F64 = torch.float64
F32 = torch.float32
LIMIT = 1_500_000

_written = []


def gen(op, case):
    g = torch.Generator()
    g.manual_seed(zlib.crc32(f"grad/{op}/{case}".encode()))
    return g


def randn(g, *shape, scale=1.0, offset=0.0):
    return (torch.randn(*shape, generator=g, dtype=F32) * scale + offset).to(F32).contiguous()


def uniform(g, *shape, lo=-1.0, hi=1.0):
    return (torch.rand(*shape, generator=g, dtype=F32) * (hi - lo) + lo).to(F32).contiguous()


def meta_str(v):
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return ",".join(meta_str(x) for x in v)
    return str(v)


def save(op, case, tensors, meta):
    entries = {}
    for name, t in tensors.items():
        t = t.detach().to(F32).contiguous()
        entries[name] = ("F32", list(t.shape), t.numpy().astype("<f4").tobytes())
    md = {"op": op, "case": case}
    md.update({k: meta_str(v) for k, v in meta.items()})
    path = os.path.join(GRAD_DIR, f"{PREFIX}{op}_{case}.safetensors")
    size = golden_io.write(path, entries, md)
    _written.append((os.path.basename(path), size))


def grads(fn, inputs, upstream):
    """float64 autograd of Σ_k <fn(inputs)_k, upstream_k>: returns {name: grad} for every input."""
    leaves = {n: t.to(F64).requires_grad_(True) for n, t in inputs.items()}
    outs = fn(**leaves)
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    loss = sum((o * u.to(F64)).sum() for o, u in zip(outs, upstream) if u is not None)
    names = list(leaves)
    gs = torch.autograd.grad(loss, [leaves[n] for n in names], allow_unused=True)
    return {f"grad_{n}": (torch.zeros_like(leaves[n]) if g is None else g) for n, g in zip(names, gs)}, outs


# ------------------------------------------------------------------ convolutions ---

def patch_embed():
    op = "patch_embed"
    for name, B, Cin, H, W, O, P in (("b2_c3_37x53_o8_p7", 2, 3, 37, 53, 8, 7),
                                     ("b1_c4_16x16_o5_p4", 1, 4, 16, 16, 5, 4)):
        g = gen(op, name)
        image = randn(g, B, Cin, H, W)
        weight = randn(g, O, Cin, P, P, scale=1.0 / math.sqrt(Cin * P * P))
        bias = randn(g, O, scale=0.1)
        dout = randn(g, B, (H // P) * (W // P), O)

        def fn(image, weight, bias):
            return F.conv2d(image, weight, bias, stride=P).flatten(2).transpose(1, 2)

        gr, _ = grads(fn, dict(image=image, weight=weight, bias=bias), [dout])
        save(op, name, dict(image=image, weight=weight, bias=bias, dout=dout, **gr),
             dict(batch=B, in_channels=Cin, height=H, width=W, out_channels=O, patch=P))


def deconv():
    op = "deconv"
    for name, B, Cin, H, W, O, K in (("b2_c5_7x9_o3_k2", 2, 5, 7, 9, 3, 2),
                                     ("b1_c4_5x3_o6_k3", 1, 4, 5, 3, 6, 3)):
        g = gen(op, name)
        inp = randn(g, B, Cin, H, W)
        weight = randn(g, Cin, O, K, K, scale=1.0 / math.sqrt(Cin))
        bias = randn(g, O, scale=0.1)
        dout = randn(g, B, O, H * K, W * K)

        def fn(inp, weight, bias):
            return F.conv_transpose2d(inp, weight, bias, stride=K)

        gr, _ = grads(fn, dict(inp=inp, weight=weight, bias=bias), [dout])
        save(op, name, dict(inp=inp, weight=weight, bias=bias, dout=dout, **gr),
             dict(batch=B, in_channels=Cin, height=H, width=W, out_channels=O, kernel=K))


# -------------------------------------------------------------------- resampling ---

def resize():
    op = "resize"
    cases = [
        # name, planes, in (h, w), out (h, w), mode, antialias
        ("bilinear_up_7x9_17x20", 2, (7, 9), (17, 20), "bilinear", False),
        ("bilinear_down_37x53_16x24", 2, (37, 53), (16, 24), "bilinear", False),
        ("bilinear_aa_down_37x53_16x23", 2, (37, 53), (16, 23), "bilinear", True),
        ("bicubic_up_14x14_32x31", 2, (14, 14), (32, 31), "bicubic", False),
        ("bicubic_down_53x37_20x13", 2, (53, 37), (20, 13), "bicubic", False),
        ("bicubic_aa_down_37x37_16x16", 3, (37, 37), (16, 16), "bicubic", True),
        ("bicubic_aa_up_9x14_19x32", 2, (9, 14), (19, 32), "bicubic", True),
    ]
    for name, P, (ih, iw), (oh, ow), mode, aa in cases:
        g = gen(op, name)
        inp = randn(g, P, ih, iw)
        dout = randn(g, P, oh, ow)
        cubic_a = 0 if mode == "bilinear" else (-0.5 if aa else -0.75)

        def fn(inp):
            return F.interpolate(inp[None], size=(oh, ow), mode=mode, align_corners=False, antialias=aa)[0]

        gr, _ = grads(fn, dict(inp=inp), [dout])
        save(op, name, dict(inp=inp, dout=dout, **gr),
             dict(planes=P, in_height=ih, in_width=iw, out_height=oh, out_width=ow, mode=mode,
                  cubic_a=cubic_a, antialias=aa))


def resize_scaled():
    """interpolate(scale_factor=...): DINOv2's position-table resize (37x37 -> g x g, bicubic, antialias)."""
    op = "scaled_resize"
    cases = [
        # name, planes, in (h, w), out (h, w), scale factors, mode, antialias
        ("bicubic_aa_37x37_16x16", 3, (37, 37), (16, 16), (16.1 / 37, 16.1 / 37), "bicubic", True),
        ("bicubic_aa_37x37_11x13", 2, (37, 37), (11, 13), (11 / 37, 13 / 37), "bicubic", True),
        ("bilinear_9x7_20x15", 2, (9, 7), (20, 15), (2.3, 2.2), "bilinear", False),
    ]
    for name, P, (ih, iw), (oh, ow), (sh, sw), mode, aa in cases:
        g = gen(op, name)
        inp = randn(g, P, ih, iw)
        dout = randn(g, P, oh, ow)
        cubic_a = 0 if mode == "bilinear" else (-0.5 if aa else -0.75)

        def fn(inp):
            out = F.interpolate(inp[None], scale_factor=(sh, sw), mode=mode, align_corners=False, antialias=aa,
                                recompute_scale_factor=False)[0]
            assert out.shape[-2:] == (oh, ow), out.shape
            return out

        gr, _ = grads(fn, dict(inp=inp), [dout])
        save(op, name, dict(inp=inp, dout=dout, **gr),
             dict(planes=P, in_height=ih, in_width=iw, out_height=oh, out_width=ow, mode=mode,
                  cubic_a=cubic_a, antialias=aa, scale_factor_h=sh, scale_factor_w=sw))


def triplane_ref(planes, points):
    B, _, H, W, C = planes.shape
    N = points.shape[1]
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    feats = []
    for p, (u, v) in enumerate(((x, y), (x, z), (z, y))):
        planes_cf = planes[:, p].permute(0, 3, 1, 2)  # (B, C, H, W)
        grid = torch.stack([u, v], dim=-1).view(B, N, 1, 2)
        s = F.grid_sample(planes_cf, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        feats.append(s[..., 0].transpose(1, 2))  # (B, N, C)
    return torch.cat(feats, dim=-1)


def triplane():
    op = "triplane"
    for name, B, N, C, H, W in (("b1_n300_c8_16x16", 1, 300, 8, 16, 16),
                                ("b2_n157_c5_13x19", 2, 157, 5, 13, 19)):
        g = gen(op, name)
        planes = randn(g, B, 3, H, W, C)
        # Some points beyond the box (zero padding), many sharing cells (the scatter's collisions).
        points = uniform(g, B, N, 3, lo=-1.1, hi=1.1)
        points[:, : N // 3] = uniform(g, B, N // 3, 3, lo=-0.2, hi=0.2)
        dout = randn(g, B, N, 3 * C)
        gr, _ = grads(triplane_ref, dict(planes=planes, points=points), [dout])
        save(op, name, dict(planes=planes, points=points, dout=dout, **gr),
             dict(batch=B, num_points=N, channels=C, height=H, width=W))


# ------------------------------------------------------------------- NeRF MLP ---

ACTIVATIONS = {
    "none": lambda x: x,
    "relu": F.relu,
    "gelu": lambda x: F.gelu(x, approximate="none"),
    "silu": F.silu,
}


def mlp():
    op = "mlp"
    cases = [
        # name, rows, dims, hidden act, output act, has_bias per layer
        ("nerf_r261", 261, [24, 64, 64, 64, 4], "relu", "none", None),
        ("r7_gelu_silu", 7, [16, 33, 9], "gelu", "silu", None),
        ("r45_nobias1_relu", 45, [27, 20, 4], "relu", "relu", [1, 0]),
    ]
    for name, rows, dims, hid, outa, has_bias in cases:
        L = len(dims) - 1
        has_bias = has_bias or [1] * L
        g = gen(op, name)
        inputs = {"inp": randn(g, rows, dims[0])}
        for l in range(L):
            inputs[f"w{l}"] = randn(g, dims[l + 1], dims[l], scale=math.sqrt(2.0 / dims[l]))
            if has_bias[l]:
                inputs[f"b{l}"] = randn(g, dims[l + 1], scale=0.1)
        dout = randn(g, rows, dims[-1])

        def fn(inp, **p):
            h = inp
            for l in range(L):
                h = F.linear(h, p[f"w{l}"], p.get(f"b{l}"))
                h = ACTIVATIONS[hid if l < L - 1 else outa](h)
            return h

        gr, _ = grads(fn, inputs, [dout])
        save(op, name, dict(**inputs, dout=dout, **gr),
             dict(dims=dims, num_layers=L, rows=rows, hidden_activation=hid, output_activation=outa,
                  has_bias=has_bias))


def nerf_color(x):
    return torch.sigmoid(x) * (1 + 2 * 0.001) - 0.001


def nerf_decode():
    op = "nerf_decode"
    for name, shape, scale in (("r5x37", (5, 37), 3.0), ("r1000_wide", (1000,), 12.0)):
        g = gen(op, name)
        raw = randn(g, *shape, 4, scale=scale)
        dsigma = randn(g, *shape, 1)
        drgb = randn(g, *shape, 3)

        def fn(raw):
            # F.softplus has PyTorch's threshold 20 (linear above), as kernels/nerf.cuh.
            return F.softplus(raw[..., :1] - 1), nerf_color(raw[..., 1:])

        gr, _ = grads(fn, dict(raw=raw), [dsigma, drgb])
        save(op, name, dict(raw=raw, dsigma=dsigma, drgb=drgb, **gr), dict(rows=raw.numel() // 4, shape=list(shape)))


def render_decode():
    op = "render_decode"
    for name, rows in (("r211", 211), ("r64", 64)):
        g = gen(op, name)
        raw = randn(g, rows, 4, scale=2.0)
        points = uniform(g, rows, 3, lo=-1.3, hi=1.3)
        ddecoded = randn(g, rows, 4)
        inside = points.abs().max(dim=-1).values <= 1 + 1e-5

        def fn(raw):
            dec = torch.cat([raw[:, :1], nerf_color(raw[:, 1:])], dim=1)
            outside = torch.tensor([-4.2535295e37, 0.0, 0.0, 0.0], dtype=raw.dtype)
            return torch.where(inside[:, None], dec, outside)

        gr, _ = grads(fn, dict(raw=raw), [ddecoded])
        save(op, name, dict(raw=raw, points=points, ddecoded=ddecoded, **gr), dict(rows=rows))


# --------------------------------------------------------------- compositing ---

OUTSIDE = -4.2535295e37


def march_ref(depths_a, decoded_a, depths_b, decoded_b, background, depth_range):
    """kernels/render.cuh's lrm_render_march_ray for every ray (merge a-first on ties)."""
    B, R, Sa = depths_a.shape
    t = depths_a
    s = decoded_a.reshape(B, R, Sa, 4)
    if depths_b is not None:
        Sb = depths_b.shape[2]
        t = torch.cat([t, depths_b], dim=2)
        s = torch.cat([s, decoded_b.reshape(B, R, Sb, 4)], dim=2)
        order = torch.sort(t, dim=2, stable=True).indices
        t = torch.gather(t, 2, order)
        s = torch.gather(s, 2, order[..., None].expand(-1, -1, -1, 4))
    delta = t[..., 1:] - t[..., :-1]
    t_mid = (t[..., 1:] + t[..., :-1]) / 2
    c_mid = (s[..., 1:, 1:] + s[..., :-1, 1:]) / 2
    sigma = F.softplus((s[..., 1:, 0] + s[..., :-1, 0]) / 2 - 1)
    alpha = 1 - torch.exp(-sigma * delta)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha + 1e-10], dim=-1), dim=-1)[..., :-1]
    w = alpha * trans
    opacity = w.sum(dim=-1)
    rgb = (w[..., None] * c_mid).sum(dim=-2) + background * (1 - opacity)[..., None]
    depth = (w * t_mid).sum(dim=-1) / opacity
    depth = torch.nan_to_num(depth, nan=float("inf"))
    depth = torch.minimum(torch.maximum(depth, depth_range[:, None, 0]), depth_range[:, None, 1])
    return rgb, depth, opacity


def render_march():
    op = "render_march"
    cases = [
        # name, batch, rays, samples a, samples b, narrow depth range, which upstream grads
        ("b2_r13_a9", 2, 13, 9, 0, False, "rgb,depth,opacity"),
        ("b1_r17_a8_b11", 1, 17, 8, 11, False, "rgb,depth,opacity"),
        ("b2_r9_a6_b5_clamped", 2, 9, 6, 5, True, "rgb,depth,opacity"),
        ("b1_r11_a7_b4_rgb_only", 1, 11, 7, 4, False, "rgb"),
    ]
    for name, B, R, Sa, Sb, narrow, which in cases:
        g = gen(op, name)
        near = uniform(g, B, R, 1, lo=1.0, hi=1.5)
        span = uniform(g, B, R, 1, lo=1.0, hi=2.0)
        steps = torch.linspace(0, 1, Sa, dtype=F32)
        depths_a = (near + span * steps).to(F32).contiguous()
        sig_a = randn(g, B, R, Sa, 1, scale=3.0, offset=1.0)
        rgb_a = uniform(g, B, R, Sa, 3, lo=-0.001, hi=1.001)
        # A few samples outside the box, as lrm_render_decode writes them.
        out_a = torch.rand(B, R, Sa, generator=g) < 0.15
        sig_a[out_a] = OUTSIDE
        rgb_a[out_a] = 0.0
        decoded_a = torch.cat([sig_a, rgb_a], dim=-1).reshape(B, R * Sa, 4).contiguous()
        tensors = dict(depths_a=depths_a, decoded_a=decoded_a)
        depths_b = decoded_b = None
        if Sb > 0:
            # Sorted fine depths strictly inside the ray's span, distinct from the coarse ones.
            depths_b = torch.sort(near + span * uniform(g, B, R, Sb, lo=0.02, hi=0.98), dim=2).values.to(F32)
            sig_b = randn(g, B, R, Sb, 1, scale=3.0, offset=1.5)
            rgb_b = uniform(g, B, R, Sb, 3, lo=-0.001, hi=1.001)
            decoded_b = torch.cat([sig_b, rgb_b], dim=-1).reshape(B, R * Sb, 4).contiguous()
            tensors.update(depths_b=depths_b, decoded_b=decoded_b)
        background = torch.tensor([1.0, 0.5, 0.0], dtype=F32)
        lo = depths_a.reshape(B, -1).min(dim=1).values
        hi = depths_a.reshape(B, -1).max(dim=1).values
        if narrow:  # clamp some rays' depths, whose gradient then vanishes
            mid = (lo + hi) / 2
            lo, hi = mid - 0.15 * (hi - lo), mid + 0.15 * (hi - lo)
        depth_range = torch.stack([lo, hi], dim=1).to(F32).contiguous()
        upstream = [randn(g, B, R, 3), randn(g, B, R), randn(g, B, R)]
        names = ["drgb", "ddepth", "dopacity"]
        present = which.split(",")
        upstream = [u if n[1:] in present else None for u, n in zip(upstream, names)]
        for u, n in zip(upstream, names):
            if u is not None:
                tensors[n] = u
        inputs = {"decoded_a": decoded_a} if decoded_b is None else {"decoded_a": decoded_a, "decoded_b": decoded_b}

        def fn(decoded_a, decoded_b=None):
            return march_ref(depths_a.to(F64), decoded_a, None if depths_b is None else depths_b.to(F64), decoded_b,
                             background.to(F64), depth_range.to(F64))

        gr, outs = grads(fn, inputs, upstream)
        assert all(torch.isfinite(v).all() for v in gr.values())
        clamped = ((outs[1] <= depth_range[:, None, 0].to(F64)) | (outs[1] >= depth_range[:, None, 1].to(F64)))
        assert narrow == bool(clamped.any()), f"{name}: clamped rays {int(clamped.sum())}"
        tensors.update(background=background, depth_range=depth_range, **gr)
        save(op, name, tensors, dict(batch=B, rays=R, samples_a=Sa, samples_b=Sb, upstream=which))


def main():
    os.makedirs(GRAD_DIR, exist_ok=True)
    for f in os.listdir(GRAD_DIR):
        if f.startswith(PREFIX) and f.endswith(".safetensors"):
            os.remove(os.path.join(GRAD_DIR, f))
    for fn in (patch_embed, deconv, resize, resize_scaled, triplane, mlp, nerf_decode, render_decode, render_march):
        fn()
    total = 0
    for fname, size in _written:
        total += size
        print(f"{fname:60s} {size:9d}")
    print(f"{len(_written)} files, {total} bytes ({total / 1e6:.2f} MB) in {GRAD_DIR}")
    assert total < LIMIT, f"spatial gradient golden data must stay under {LIMIT} bytes"


if __name__ == "__main__":
    main()
