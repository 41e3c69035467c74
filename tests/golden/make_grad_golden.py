#!/usr/bin/python3
"""PyTorch autograd golden data for LrmNative's backward ops of the transformer
(GEMM, LayerNorm, ModLN, attention, GELU/SiLU/ReLU, softmax, LayerScale).

Run with Debian's PyTorch (package python3-torch, 1.13):

    /usr/bin/python3 tests/golden/make_grad_golden.py

Writes tests/golden/grad/core_<op>_<case>.safetensors (the file format is
tests/golden/README.md's; golden_io.py writes it). Only core_* files are deleted and
rewritten: other scripts own the other prefixes in that folder (spatial_*).

Each case holds the forward's inputs, what the forward saves for backward (mean/rstd,
out/lse, softmax output), a random upstream gradient `dout` and the gradients autograd
computes for the scalar L = Σ out·dout. Inputs are float32 from seeded torch.randn;
references are computed with autograd in float64 from exactly those float32 values
and rounded once to float32. Running the script twice gives byte-identical files.
Metadata: `op`, `case` and every size/flag the op needs (see each function below).
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep tests/golden free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_torch import F32, F64, GoldenSet, f32_value, randn  # noqa: E402

GOLDEN = GoldenSet(os.path.join(os.path.dirname(os.path.abspath(__file__)), "grad"),
                   prefix="core_", seed_prefix="core_", max_bytes=1_500_000)
gen, save = GOLDEN.gen, GOLDEN.save


def grads(fn, inputs, dout, dt):
    """Autograd of L = Σ fn(*inputs)·dout in dtype dt; returns (outputs, [d input])."""
    leaves = [x.to(dt).detach().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    primary = out[0] if isinstance(out, tuple) else out
    (primary * dout.to(dt)).sum().backward()
    return out, [x.grad for x in leaves]


def f32_gap(fn, inputs, dout, ref_grads):
    """How far PyTorch's own float32 gradients are from the float64 reference (max over inputs of
    ‖g32 − g64‖/‖g64‖): a guide for the C# tolerance."""
    _, g32 = grads(fn, inputs, dout, F32)
    worst = 0.0
    for a, b in zip(g32, ref_grads):
        if a is None or b is None:
            continue
        worst = max(worst, ((a.to(F64) - b).norm() / max(b.norm().item(), 1e-30)).item())
    return f"f32-torch rel err {worst:.2g}"


# -------------------------------------------------------------------- ops ---

def gemm():
    """a, b, [bias], dout → da, db, [dbias]; metadata m, n, k, transpose_a, transpose_b, has_bias.
    `a` may be batched (..., k): m is the product of its leading sizes."""
    op = "gemm"
    cases = [
        # name, a shape, m, n, k, ta, tb, bias
        ("m37_n53_k29_tb_bias", (37, 29), 37, 53, 29, 0, 1, True),
        ("m19_n33_k41_ta", (41, 19), 19, 33, 41, 1, 0, False),
        ("m8_n5_k13_ta_tb_bias", (13, 8), 8, 5, 13, 1, 1, True),
        ("b2x7_n17_k11_bias", (2, 7, 11), 14, 17, 11, 0, 0, True),
    ]
    for name, a_shape, m, n, k, ta, tb, has_bias in cases:
        g = gen(op, name)
        a = randn(g, *a_shape, scale=0.7)
        b = randn(g, *((n, k) if tb else (k, n)), scale=1.0 / math.sqrt(k))
        bias = randn(g, n, scale=0.5)
        out_shape = (m, n) if ta else tuple(a_shape[:-1]) + (n,)
        dout = randn(g, *out_shape)

        def fn(a_, b_, bias_):
            A = a_.t() if ta else a_
            B = b_.t() if tb else b_
            out = A @ B
            return out + bias_ if has_bias else out

        _, (da, db, dbias) = grads(fn, [a, b, bias], dout, F64)
        tensors = dict(a=a, b=b, dout=dout, da=da.to(F32), db=db.to(F32))
        if has_bias:
            tensors.update(bias=bias, dbias=dbias.to(F32))
        save(op, name, tensors, dict(m=m, n=n, k=k, transpose_a=ta, transpose_b=tb, has_bias=has_bias),
             f32_gap(fn, [a, b, bias], dout, [da, db, dbias if has_bias else None]))


def layer_stats(x64, eps):
    mean = x64.mean(dim=-1)
    var = x64.var(dim=-1, unbiased=False)
    return mean, 1.0 / torch.sqrt(var + eps)


def layernorm():
    """inp, [weight, bias], mean, rstd, dout → dinp, [dweight, dbias]; metadata rows, channels, eps, has_weight."""
    op = "layernorm"
    cases = [
        # name, shape, eps, input scale, offset, affine
        ("3x37_c53", (3, 37, 53), 1e-5, 1.0, 0.0, True),
        ("r5_c256_offset", (5, 256), 1e-6, 1.0, 3.0, True),
        ("r7_c77_noaffine", (7, 77), 1e-5, 2.5, -1.0, False),
    ]
    for name, shape, eps, sc, off, affine in cases:
        g = gen(op, name)
        ch = shape[-1]
        inp = randn(g, *shape, scale=sc, offset=off)
        w = randn(g, ch, scale=0.5, offset=1.0)
        b = randn(g, ch, scale=0.2)
        dout = randn(g, *shape)

        def fn(x, w_, b_):
            return F.layer_norm(x, (ch,), w_ if affine else None, b_ if affine else None, eps)

        _, (dinp, dw, db) = grads(fn, [inp, w, b], dout, F64)
        mean, rstd = layer_stats(inp.to(F64), eps)
        tensors = dict(inp=inp, mean=mean.to(F32), rstd=rstd.to(F32), dout=dout, dinp=dinp.to(F32))
        if affine:
            tensors.update(weight=w, bias=b, dweight=dw.to(F32), dbias=db.to(F32))
        rows = inp.numel() // ch
        save(op, name, tensors, dict(rows=rows, channels=ch, eps=eps, has_weight=affine),
             f32_gap(fn, [inp, w, b], dout, [dinp, dw if affine else None, db if affine else None]))


def modln():
    """inp, weight, bias, shift, scale, mean, rstd, dout → dinp, dweight, dbias, dshift, dscale;
    metadata batch, tokens, channels, eps."""
    op = "modln"
    cases = [
        # name, batch, tokens, channels, eps
        ("b2_t37_c53", 2, 37, 53, 1e-6),
        ("b3_t17_c64", 3, 17, 64, 1e-5),
        ("b1_t130_c40", 1, 130, 40, 1e-5),
    ]
    for name, B, T, C, eps in cases:
        g = gen(op, name)
        inp = randn(g, B, T, C, scale=1.5, offset=0.5)
        w = randn(g, C, scale=0.3, offset=1.0)
        b = randn(g, C, scale=0.2)
        shift = randn(g, B, C, scale=0.5)
        scale = randn(g, B, C, scale=0.3)
        dout = randn(g, B, T, C)

        def fn(x, w_, b_, shift_, scale_):
            ln = F.layer_norm(x, (C,), w_, b_, eps)
            return ln * (1 + scale_[:, None, :]) + shift_[:, None, :]

        ins = [inp, w, b, shift, scale]
        _, (dinp, dw, db, dshift, dscale) = grads(fn, ins, dout, F64)
        mean, rstd = layer_stats(inp.to(F64), eps)
        save(op, name,
             dict(inp=inp, weight=w, bias=b, shift=shift, scale=scale, mean=mean.to(F32), rstd=rstd.to(F32),
                  dout=dout, dinp=dinp.to(F32), dweight=dw.to(F32), dbias=db.to(F32), dshift=dshift.to(F32),
                  dscale=dscale.to(F32)),
             dict(batch=B, tokens=T, channels=C, eps=eps),
             f32_gap(fn, ins, dout, [dinp, dw, db, dshift, dscale]))


def attention_fn(B, H, Lq, Lk, D, scale):
    def fn(q, k, v):
        qh = q.reshape(B, Lq, H, D).permute(0, 2, 1, 3)
        kh = k.reshape(B, Lk, H, D).permute(0, 2, 1, 3)
        vh = v.reshape(B, Lk, H, D).permute(0, 2, 1, 3)
        s = (qh @ kh.transpose(-1, -2)) * scale
        lse = torch.logsumexp(s, dim=-1)  # (B, H, Lq)
        o = torch.softmax(s, dim=-1) @ vh
        return o.permute(0, 2, 1, 3).reshape(B, Lq, H * D), lse
    return fn


def attention():
    """q, k, v (or packed qkv), out, lse, dout → dq, dk, dv (or packed dqkv); metadata batch, heads,
    q_len, kv_len, head_dim, scale, packed. Cases span several of the kernel's 96-key/64-query blocks
    and head dims that are not a multiple of the vector width."""
    op = "attention"
    cases = [
        # name, batch, heads, q_len, kv_len, head_dim, q scale, k scale, packed
        ("self_b2_h3_l37_d16", 2, 3, 37, 37, 16, 1.0, 1.0, False),
        ("cross_b1_h2_q150_kv131_d20", 1, 2, 150, 131, 20, 1.5, 1.5, False),
        ("cross_b2_h1_q5_kv200_d8", 2, 1, 5, 200, 8, 2.0, 2.0, False),
        ("packed_b2_h2_t67_d12", 2, 2, 67, 67, 12, 1.2, 1.2, True),
    ]
    for name, B, H, Lq, Lk, D, qs, ks, packed in cases:
        g = gen(op, name)
        C = H * D
        scale = f32_value(1.0 / math.sqrt(D))
        if packed:
            qkv = torch.cat([randn(g, B, Lq, C, scale=qs), randn(g, B, Lq, C, scale=ks),
                             randn(g, B, Lq, C)], dim=-1).contiguous()
            q, k, v = qkv[..., :C].contiguous(), qkv[..., C:2 * C].contiguous(), qkv[..., 2 * C:].contiguous()
        else:
            q = randn(g, B, Lq, C, scale=qs)
            k = randn(g, B, Lk, C, scale=ks)
            v = randn(g, B, Lk, C)
        dout = randn(g, B, Lq, C)
        fn = attention_fn(B, H, Lq, Lk, D, scale)
        (out, lse), (dq, dk, dv) = grads(fn, [q, k, v], dout, F64)
        tensors = dict(out=out.detach().to(F32), lse=lse.detach().to(F32), dout=dout)
        if packed:
            tensors.update(qkv=qkv, dqkv=torch.cat([dq, dk, dv], dim=-1).to(F32))
        else:
            tensors.update(q=q, k=k, v=v, dq=dq.to(F32), dk=dk.to(F32), dv=dv.to(F32))
        save(op, name, tensors,
             dict(batch=B, heads=H, q_len=Lq, kv_len=Lk, head_dim=D, scale=scale, packed=packed),
             f32_gap(fn, [q, k, v], dout, [dq, dk, dv]))


ACTIVATIONS = {
    "relu": F.relu,
    "gelu": lambda x: F.gelu(x, approximate="none"),
    "silu": F.silu,
}

# Kinks, tails and signed zeros (relu's gradient at 0 is 0, as torch's threshold_backward).
SPECIAL_INPUTS = [0.0, -0.0, 1e-8, -1e-8, 0.5, -0.5, 3.0, -3.0, 10.0, -10.0, 20.0, -20.0, 50.0, -50.0, 100.0, -100.0]


def activations():
    """inp, dout → dinp; metadata numel, shape."""
    for act, fn in ACTIVATIONS.items():
        op = act
        for name, shape, sc in (("5x37", (5, 37), 1.0), ("2x3x61_wide", (2, 3, 61), 4.0)):
            g = gen(op, name)
            inp = randn(g, *shape, scale=sc)
            if name.endswith("wide"):
                inp.view(-1)[:len(SPECIAL_INPUTS)] = torch.tensor(SPECIAL_INPUTS, dtype=F32)
            dout = randn(g, *shape)
            _, (dinp,) = grads(fn, [inp], dout, F64)
            save(op, name, dict(inp=inp, dout=dout, dinp=dinp.to(F32)),
                 dict(numel=inp.numel(), shape=list(shape)), f32_gap(fn, [inp], dout, [dinp]))


def softmax():
    """out (the forward's softmax), dout → dinp; metadata rows, cols."""
    op = "softmax"
    for name, shape, sc in (("r7_c53", (7, 53), 1.0), ("3x5_c130_large", (3, 5, 130), 8.0), ("r4_c1", (4, 1), 1.0)):
        g = gen(op, name)
        inp = randn(g, *shape, scale=sc)
        dout = randn(g, *shape)

        def fn(x):
            return torch.softmax(x, dim=-1)

        out, (dinp,) = grads(fn, [inp], dout, F64)
        cols = shape[-1]
        save(op, name, dict(out=out.detach().to(F32), dout=dout, dinp=dinp.to(F32)),
             dict(rows=inp.numel() // cols, cols=cols), f32_gap(fn, [inp], dout, [dinp]))


def layerscale():
    """inp, gamma, [residual], dout → dinp, dgamma, [dresidual]; metadata rows, channels, has_residual."""
    op = "layerscale"
    for name, shape, has_res in (("2x37_c53_res", (2, 37, 53), True), ("r5_c24", (5, 24), False)):
        g = gen(op, name)
        ch = shape[-1]
        inp = randn(g, *shape)
        gamma = randn(g, ch, scale=0.1)
        residual = randn(g, *shape)
        dout = randn(g, *shape)

        def fn(x, gamma_, res_):
            return (res_ + x * gamma_) if has_res else x * gamma_

        _, (dinp, dgamma, dres) = grads(fn, [inp, gamma, residual], dout, F64)
        tensors = dict(inp=inp, gamma=gamma, dout=dout, dinp=dinp.to(F32), dgamma=dgamma.to(F32))
        if has_res:
            tensors.update(residual=residual, dresidual=dres.to(F32))
        save(op, name, tensors, dict(rows=inp.numel() // ch, channels=ch, has_residual=has_res),
             f32_gap(fn, [inp, gamma, residual], dout, [dinp, dgamma, dres if has_res else None]))


def main():
    GOLDEN.run(gemm, layernorm, modln, attention, activations, softmax, layerscale)


if __name__ == "__main__":
    main()
