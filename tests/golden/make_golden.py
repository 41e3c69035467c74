#!/usr/bin/python3
"""Golden-reference generator for LrmNative's CPU ops (see native/include/lrm_native.h).

Run with Debian's PyTorch (package python3-torch, 1.13):

    /usr/bin/python3 tests/golden/make_golden.py

Writes tests/golden/data/<op>_<case>.safetensors, one file per case; the format and
every op's tensor names / metadata keys are documented in tests/golden/README.md.
Inputs are float32 from seeded torch.randn; reference outputs are computed in float64
from those exact float32 inputs and rounded once to float32 (bf16 for convert_bf16).
Running the script twice gives byte-identical files.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep tests/golden free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_torch import F32, F64, GoldenSet, f32_value, randn, uniform  # noqa: E402

GOLDEN = GoldenSet(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"),
                   prefix="", seed_prefix="", max_bytes=5_000_000)
gen, save = GOLDEN.gen, GOLDEN.save


# ---------------------------------------------------------------- helpers ---

def f32_err(ref, got):
    """(max abs error, max error relative to max |ref|) of a float32 computation vs the reference."""
    ref = ref.to(F64)
    got = got.to(F64)
    err = (ref - got).abs().max().item()
    return f"f32-torch max|err| {err:.3g} (rel {err / max(ref.abs().max().item(), 1e-30):.3g})"


# -------------------------------------------------------------------- ops ---

def gemm():
    op = "gemm"
    cases = [
        # name, m, n, k, ta, tb, bias, residual
        ("m37_n53_k29_tb_bias_res", 37, 53, 29, 0, 1, True, True),
        ("m64_n48_k96_ta", 64, 48, 96, 1, 0, False, False),
        ("m1_n77_k5_bias", 1, 77, 5, 0, 0, True, False),
        ("m19_n33_k41_ta_tb_res", 19, 33, 41, 1, 1, False, True),
    ]
    for name, m, n, k, ta, tb, has_bias, has_res in cases:
        g = gen(op, name)
        a = randn(g, *((k, m) if ta else (m, k)), scale=0.7)
        b = randn(g, *((n, k) if tb else (k, n)), scale=1.0 / math.sqrt(k))
        tensors = {"a": a, "b": b}
        bias = residual = None
        if has_bias:
            bias = randn(g, n, scale=0.5)
            tensors["bias"] = bias
        if has_res:
            residual = randn(g, m, n, scale=2.0)
            tensors["residual"] = residual

        def ref(dt):
            A = a.to(dt).t() if ta else a.to(dt)
            B = b.to(dt).t() if tb else b.to(dt)
            out = A @ B
            if bias is not None:
                out = out + bias.to(dt)
            if residual is not None:
                out = out + residual.to(dt)
            return out

        out = ref(F64).to(F32)
        tensors["out"] = out
        save(op, name, tensors,
             dict(m=m, n=n, k=k, transpose_a=ta, transpose_b=tb, has_bias=has_bias, has_residual=has_res),
             f32_err(ref(F64), ref(F32)))


def layer_stats(x64, eps):
    mean = x64.mean(dim=-1)
    var = x64.var(dim=-1, unbiased=False)
    return mean, 1.0 / torch.sqrt(var + eps)


def layernorm():
    op = "layernorm"
    cases = [
        # name, rows, channels, eps, input scale, input offset, affine
        ("r111_c53", 3 * 37, 53, 1e-5, 1.0, 0.0, True),
        ("r5_c1024_offset", 5, 1024, 1e-6, 1.0, 3.0, True),
        ("r7_c77_noaffine", 7, 77, 1e-5, 2.5, -1.0, False),
    ]
    for name, rows, ch, eps, sc, off, affine in cases:
        g = gen(op, name)
        inp = randn(g, rows, ch, scale=sc, offset=off)
        tensors = {"inp": inp}
        w = b = None
        if affine:
            w = randn(g, ch, scale=0.5, offset=1.0)
            b = randn(g, ch, scale=0.2)
            tensors["weight"] = w
            tensors["bias"] = b

        def ref(dt):
            return F.layer_norm(inp.to(dt), (ch,), None if w is None else w.to(dt),
                                None if b is None else b.to(dt), eps)

        mean, rstd = layer_stats(inp.to(F64), eps)
        tensors.update(out=ref(F64).to(F32), mean=mean.to(F32), rstd=rstd.to(F32))
        save(op, name, tensors, dict(rows=rows, channels=ch, eps=eps, has_weight=affine, has_bias=affine),
             f32_err(ref(F64), ref(F32)))


def modln():
    op = "modln"
    cases = [
        # name, batch, tokens, channels, eps
        ("b2_t37_c53", 2, 37, 53, 1e-6),
        ("b3_t17_c64", 3, 17, 64, 1e-5),
    ]
    for name, B, T, C, eps in cases:
        g = gen(op, name)
        inp = randn(g, B, T, C, scale=1.5, offset=0.5)
        w = randn(g, C, scale=0.3, offset=1.0)
        b = randn(g, C, scale=0.2)
        shift = randn(g, B, C, scale=0.5)
        scale = randn(g, B, C, scale=0.3)

        def ref(dt):
            ln = F.layer_norm(inp.to(dt), (C,), w.to(dt), b.to(dt), eps)
            return ln * (1 + scale.to(dt)[:, None, :]) + shift.to(dt)[:, None, :]

        mean, rstd = layer_stats(inp.to(F64), eps)
        save(op, name,
             dict(inp=inp, weight=w, bias=b, shift=shift, scale=scale, out=ref(F64).to(F32),
                  mean=mean.to(F32), rstd=rstd.to(F32)),
             dict(batch=B, tokens=T, channels=C, eps=eps), f32_err(ref(F64), ref(F32)))


def attention_ref(q, k, v, B, H, Lq, Lk, D, scale, dt):
    q = q.to(dt).reshape(B, Lq, H, D).permute(0, 2, 1, 3)
    k = k.to(dt).reshape(B, Lk, H, D).permute(0, 2, 1, 3)
    v = v.to(dt).reshape(B, Lk, H, D).permute(0, 2, 1, 3)
    s = (q @ k.transpose(-1, -2)) * scale
    lse = torch.logsumexp(s, dim=-1)  # (B, H, Lq)
    o = torch.softmax(s, dim=-1) @ v  # (B, H, Lq, D)
    return o.permute(0, 2, 1, 3).reshape(B, Lq, H * D), lse


def attention():
    op = "attention"
    cases = [
        # name, batch, heads, q_len, kv_len, head_dim, q scale, k scale, packed
        ("self_b2_h3_l37_d16", 2, 3, 37, 37, 16, 1.0, 1.0, False),
        ("cross_b1_h4_q130_kv77_d64", 1, 4, 130, 77, 64, 1.0, 1.5, False),
        ("long_b1_h2_q300_kv257_d32", 1, 2, 300, 257, 32, 2.0, 2.0, False),
        ("packed_b2_h2_t67_d24", 2, 2, 67, 67, 24, 1.2, 1.2, True),
    ]
    for name, B, H, Lq, Lk, D, qs, ks, packed in cases:
        g = gen(op, name)
        C = H * D
        scale = f32_value(1.0 / math.sqrt(D))  # the float32 the C ABI receives
        if packed:
            qkv = torch.cat([randn(g, B, Lq, C, scale=qs), randn(g, B, Lq, C, scale=ks),
                             randn(g, B, Lq, C)], dim=-1).contiguous()
            q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
            tensors = {"qkv": qkv}
        else:
            q = randn(g, B, Lq, C, scale=qs)
            k = randn(g, B, Lk, C, scale=ks)
            v = randn(g, B, Lk, C)
            tensors = {"q": q, "k": k, "v": v}
        out, lse = attention_ref(q, k, v, B, H, Lq, Lk, D, scale, F64)
        out32, _ = attention_ref(q, k, v, B, H, Lq, Lk, D, scale, F32)
        tensors.update(out=out.to(F32), lse=lse.to(F32))
        stride = 3 * C if packed else C
        save(op, name, tensors,
             dict(batch=B, heads=H, q_len=Lq, kv_len=Lk, head_dim=D, scale=scale, packed=packed,
                  q_row_stride=stride, kv_row_stride=stride),
             f32_err(out, out32))


ACTIVATIONS = {
    "none": lambda x: x,
    "relu": F.relu,
    "gelu": lambda x: F.gelu(x, approximate="none"),
    "silu": F.silu,
}

SPECIAL_ACT_INPUTS = [0.0, -0.0, 1e-8, -1e-8, 0.5, -0.5, 3.0, -3.0,
                      10.0, -10.0, 20.0, -20.0, 50.0, -50.0, 100.0, -100.0]


def elementwise():
    for op in ("gelu", "silu", "relu"):
        for name, shape, sc in (("3x37x53", (3, 37, 53), 1.0), ("n1000_wide", (1000,), 4.0)):
            g = gen(op, name)
            inp = randn(g, *shape, scale=sc)
            if name == "n1000_wide":  # first 16 elements: fixed special values
                inp[:len(SPECIAL_ACT_INPUTS)] = torch.tensor(SPECIAL_ACT_INPUTS, dtype=F32)
            fn = ACTIVATIONS[op]
            out = fn(inp.to(F64))
            save(op, name, dict(inp=inp, out=out.to(F32)),
                 dict(numel=inp.numel(), shape=list(shape)), f32_err(out, fn(inp)))


def softmax():
    op = "softmax"
    for name, rows, cols, sc in (("r37_c53", 37, 53, 1.0), ("r6_c257_large", 6, 257, 30.0),
                                 ("r9_c1_large", 9, 1, 30.0), ("r4_c1000", 4, 1000, 3.0)):
        g = gen(op, name)
        inp = randn(g, rows, cols, scale=sc)
        out = torch.softmax(inp.to(F64), dim=-1)
        save(op, name, dict(inp=inp, out=out.to(F32)), dict(rows=rows, cols=cols),
             f32_err(out, torch.softmax(inp, dim=-1)))


def patch_embed():
    op = "patch_embed"
    for name, B, Cin, Hh, W, Cout, P in (("b2_c3_32x48_o16_p8", 2, 3, 32, 48, 16, 8),
                                         ("b1_c3_37x53_o24_p7", 1, 3, 37, 53, 24, 7),
                                         ("b1_c3_28x28_o8_p14", 1, 3, 28, 28, 8, 14)):
        g = gen(op, name)
        image = randn(g, B, Cin, Hh, W)
        weight = randn(g, Cout, Cin, P, P, scale=1.0 / math.sqrt(Cin * P * P))
        bias = randn(g, Cout, scale=0.1)

        def ref(dt):
            return F.conv2d(image.to(dt), weight.to(dt), bias.to(dt), stride=P).flatten(2).transpose(1, 2)

        out = ref(F64)
        assert out.shape == (B, (Hh // P) * (W // P), Cout)
        save(op, name, dict(image=image, weight=weight, bias=bias, out=out.to(F32)),
             dict(batch=B, in_channels=Cin, height=Hh, width=W, out_channels=Cout, patch=P),
             f32_err(out, ref(F32)))


def deconv():
    op = "deconv"
    for name, B, Cin, Hh, W, Cout, K in (("b3_c16_8x8_o12_k2", 3, 16, 8, 8, 12, 2),
                                         ("b1_c5_7x9_o3_k2", 1, 5, 7, 9, 3, 2),
                                         ("b2_c4_5x3_o6_k3", 2, 4, 5, 3, 6, 3)):
        g = gen(op, name)
        inp = randn(g, B, Cin, Hh, W)
        weight = randn(g, Cin, Cout, K, K, scale=1.0 / math.sqrt(Cin))
        bias = randn(g, Cout, scale=0.1)

        def ref(dt):
            return F.conv_transpose2d(inp.to(dt), weight.to(dt), bias.to(dt), stride=K)

        out = ref(F64)
        assert out.shape == (B, Cout, Hh * K, W * K)
        save(op, name, dict(inp=inp, weight=weight, bias=bias, out=out.to(F32)),
             dict(batch=B, in_channels=Cin, height=Hh, width=W, out_channels=Cout, kernel=K),
             f32_err(out, ref(F32)))


def resize():
    op = "resize"
    cases = [
        # name, planes, in (h, w), out (h, w), mode, antialias
        ("bilinear_up_14x14_32x32", 3, (14, 14), (32, 32), "bilinear", False),
        ("bilinear_down_37x53_16x24", 3, (37, 53), (16, 24), "bilinear", False),
        ("bilinear_aa_down_37x53_16x24", 3, (37, 53), (16, 24), "bilinear", True),
        ("bicubic_up_14x14_32x32", 3, (14, 14), (32, 32), "bicubic", False),
        ("bicubic_down_53x37_20x13", 3, (53, 37), (20, 13), "bicubic", False),
        ("bicubic_aa_down_37x37_16x16", 4, (37, 37), (16, 16), "bicubic", True),
        ("bicubic_aa_up_14x14_32x32", 3, (14, 14), (32, 32), "bicubic", True),
    ]
    for name, P, (ih, iw), (oh, ow), mode, aa in cases:
        g = gen(op, name)
        inp = randn(g, P, ih, iw)
        cubic_a = 0 if mode == "bilinear" else (-0.5 if aa else -0.75)

        def ref(dt):
            return F.interpolate(inp.to(dt)[None], size=(oh, ow), mode=mode, align_corners=False,
                                 antialias=aa)[0]

        out = ref(F64)
        save(op, name, dict(inp=inp, out=out.to(F32)),
             dict(planes=P, in_height=ih, in_width=iw, out_height=oh, out_width=ow, mode=mode,
                  cubic_a=cubic_a, antialias=aa),
             f32_err(out, ref(F32)))


def triplane_ref(planes, points, dt):
    B, _, Hh, W, C = planes.shape
    N = points.shape[1]
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    feats = []
    for p, (u, v) in enumerate(((x, y), (x, z), (z, y))):
        planes_cf = planes[:, p].to(dt).permute(0, 3, 1, 2)  # (B, C, H, W)
        grid = torch.stack([u, v], dim=-1).to(dt).view(B, N, 1, 2)
        s = F.grid_sample(planes_cf, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        feats.append(s[..., 0].transpose(1, 2))  # (B, N, C)
    return torch.cat(feats, dim=-1)


def triplane():
    op = "triplane"
    corners = torch.tensor([[a, b, c] for a in (-1.0, 0.0, 1.0) for b in (-1.0, 0.0, 1.0)
                            for c in (-1.0, 0.0, 1.0)], dtype=F32)  # 27 points on the borders / centre
    for name, B, N, C, Hh, W in (("b1_n1000_c8_16x16", 1, 1000, 8, 16, 16),
                                 ("b2_n333_c5_13x19", 2, 333, 5, 13, 19)):
        g = gen(op, name)
        planes = randn(g, B, 3, Hh, W, C)
        points = uniform(g, B, N, 3, lo=-1.1, hi=1.1)
        points[:, :corners.shape[0]] = corners
        out = triplane_ref(planes, points, F64)
        assert out.shape == (B, N, 3 * C)
        save(op, name, dict(planes=planes, points=points, out=out.to(F32)),
             dict(batch=B, num_points=N, channels=C, height=Hh, width=W),
             f32_err(out, triplane_ref(planes, points, F32)))


def triplanesum():
    """The linear-first NeRF's first layer (lrm_triplane_sample_sum_forward):
    act(sum over the three planes of the bilinear sample + bias), planes (B, 3, H, W, C) channels-last."""
    op = "triplanesum"
    for name, B, N, C, Hh, W, act, has_bias in (("b1_n1000_c64_16x16_relu", 1, 1000, 64, 16, 16, "relu", True),
                                                ("b2_n333_c5_13x19_none_nobias", 2, 333, 5, 13, 19, "none", False),
                                                ("b1_n257_c12_9x7_gelu", 1, 257, 12, 9, 7, "gelu", True),
                                                ("b1_n100_c4_5x6_silu", 1, 100, 4, 5, 6, "silu", True)):
        g = gen(op, name)
        planes = randn(g, B, 3, Hh, W, C)
        points = uniform(g, B, N, 3, lo=-1.1, hi=1.1)
        bias = randn(g, C, scale=0.5) if has_bias else None

        def ref(dt):
            s = triplane_ref(planes, points, dt).view(B, N, 3, C).sum(dim=2)
            if bias is not None:
                s = s + bias.to(dt)
            return ACTIVATIONS[act](s)

        out = ref(F64)
        tensors = dict(planes=planes, points=points, out=out.to(F32))
        if bias is not None:
            tensors["bias"] = bias
        save(op, name, tensors,
             dict(batch=B, num_points=N, channels=C, height=Hh, width=W, activation=act, has_bias=has_bias),
             f32_err(out, ref(F32)))


def mlp():
    op = "mlp"
    cases = [
        # name, rows, dims, hidden act, output act, has_bias per layer
        ("nerf_r517", 517, [24, 64, 64, 64, 4], "relu", "none", None),
        ("r3_gelu_silu", 3, [16, 32, 8], "gelu", "silu", None),
        ("r45_nobias1", 45, [27, 64, 4], "relu", "none", [1, 0]),
    ]
    for name, rows, dims, hid, outa, has_bias in cases:
        L = len(dims) - 1
        has_bias = has_bias or [1] * L
        g = gen(op, name)
        inp = randn(g, rows, dims[0])
        tensors = {"inp": inp}
        ws, bs = [], []
        for l in range(L):
            w = randn(g, dims[l + 1], dims[l], scale=math.sqrt(2.0 / dims[l]))
            tensors[f"w{l}"] = w
            ws.append(w)
            b = randn(g, dims[l + 1], scale=0.1) if has_bias[l] else None
            if b is not None:
                tensors[f"b{l}"] = b
            bs.append(b)

        def ref(dt):
            h = inp.to(dt)
            for l in range(L):
                h = F.linear(h, ws[l].to(dt), None if bs[l] is None else bs[l].to(dt))
                h = ACTIVATIONS[hid if l < L - 1 else outa](h)
            return h

        out = ref(F64)
        tensors["out"] = out.to(F32)
        save(op, name, tensors,
             dict(dims=dims, num_layers=L, rows=rows, hidden_activation=hid, output_activation=outa,
                  has_bias=has_bias),
             f32_err(out, ref(F32)))


def bf16_rne(bits):
    """Reference fp32 bits -> bf16 bits, round to nearest even (non-NaN inputs)."""
    lsb = (bits >> 16) & 1
    return ((bits + 0x7FFF + lsb) >> 16) & 0xFFFF


BF16_SPECIAL_BITS = [
    0x00000000, 0x80000000,                          # +0, -0
    0x3F800000, 0xBF800000,                          # 1, -1
    0x00000001, 0x80000001,                          # smallest subnormal (-> +-0)
    0x00008000, 0x00018000, 0x00017FFF, 0x00010001,  # subnormal ties / near-ties
    0x007FFFFF, 0x00800000,                          # largest subnormal (-> carries), FLT_MIN
    0x3F808000, 0x3F818000,                          # ties: 1+2^-8 -> 1 (even), 1+3*2^-8 -> up
    0xBF808000, 0xBF818000,                          # negative ties
    0x3F807FFF, 0x3F808001,                          # just below / above a tie
    0x3FFF8000, 0x3F7F8000,                          # tie that carries into the exponent; tie below 1
    0x477FE000,                                      # 65504 (fp16 max)
    0x7F7FC99E,                                      # 3.4e38 (rounds up to +inf)
    0x7F7FFFFF, 0xFF7FFFFF,                          # +-FLT_MAX (-> +-inf)
    0x7F7F7FFF, 0x7F7F8000, 0x7F7E8000,              # largest finite bf16 stays, tie to inf, tie to even
    0x7F800000, 0xFF800000,                          # +-inf
    0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF,  # NaNs (incl. payload only in the low 16 bits)
    0x40490FDB, 0xC02DF854,                          # pi, -e
    0x33800000, 0x4B000000,                          # 2^-24, 2^23
]
BF16_NAN_OUT = 0x7FC0


def convert_bf16():
    op = "convert_bf16"
    for name, n in (("special_n512", 512), ("random_n4099", 4099)):
        g = gen(op, name)
        # random values spanning many binades, with random signs
        mag = torch.pow(10.0, uniform(g, n, lo=-38.0, hi=38.0).to(F64))
        sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(F64)
        inp = (randn(g, n).to(F64).abs() * mag * sign).to(F32)
        inp[: n // 4] = randn(g, n // 4, scale=3.0)  # plenty of ordinary magnitudes too
        if name.startswith("special"):
            sp = np.array(BF16_SPECIAL_BITS, dtype=np.uint32).view(np.float32)
            inp[:len(sp)] = torch.from_numpy(sp.copy())
        bits_in = inp.numpy().view(np.uint32).astype(np.int64)
        nan = np.isnan(inp.numpy())
        torch_bits = inp.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16).astype(np.int64)
        assert np.isnan(inp.to(torch.bfloat16).float().numpy()[nan]).all()
        # torch's NaN bits differ between its scalar (0x7FC0) and vectorised (0xFFFF) paths:
        # canonicalise them so the file does not depend on the machine.
        torch_bits[nan] = BF16_NAN_OUT
        expect = bf16_rne(bits_in)
        expect[nan] = BF16_NAN_OUT
        assert (torch_bits == expect).all(), "torch bf16 conversion disagrees with the RNE reference"
        out_raw = torch_bits.astype("<u2").tobytes()
        save(op, name, dict(inp=inp, out=("BF16", [n], out_raw)),
             dict(numel=n, nan_out=hex(BF16_NAN_OUT)),
             f"{int(nan.sum())} NaN inputs, {int(np.isinf(inp.numpy()).sum())} inf inputs")


def main():
    GOLDEN.run(gemm, layernorm, modln, attention, elementwise, softmax, patch_embed, deconv,
               resize, triplane, triplanesum, mlp, convert_bf16)


if __name__ == "__main__":
    main()
