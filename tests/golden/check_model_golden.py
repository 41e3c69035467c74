#!/usr/bin/python3
"""Self-check of tests/golden/model (run by make_model_golden.py; also standalone with /usr/bin/python3).

1. Every file of the contract exists, with exactly the contract's tensor names, shapes and dtypes, and the
   metadata "module"/"config"; weights in case files equal model.safetensors (except decoder_block_shared).
2. `full` equals the modules chained: encoder -> camera embedder -> decoder blocks -> final LN -> upsampler,
   (a) recomputed from tiny/model.safetensors (bit-identical) and (b) chained through the stored float32
   outputs of the module cases (encoder, camera_embedder) and of full itself (features -> tokens -> planes).
3. The hand-written modules agree with PyTorch's own nn modules where those exist (nn.MultiheadAttention,
   nn.ConvTranspose2d, size-based F.interpolate, nn.GELU/LayerNorm via a DINOv2-style block).
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import golden_io  # noqa: E402
import make_model_golden as mg  # noqa: E402

MODEL_DIR = os.path.join(HERE, "model")


def load(path):
    meta, raw = golden_io.read(path)
    out = {}
    for k, (dt, shape, data) in raw.items():
        assert dt == "F32", f"{path}: {k} is {dt}"
        out[k] = torch.from_numpy(np.frombuffer(data, dtype="<f4").reshape(shape).copy())
    return meta, out


def expected_shapes(cfg, W):
    C, D, M, T = cfg["encoder_feat_dim"], cfg["transformer_dim"], cfg["camera_embed_dim"], cfg["triplane_dim"]
    L, H = cfg["triplane_low_res"], cfg["triplane_high_res"]
    S = cfg["encoder_image_size"]
    n_patch = (S // mg.PATCH) ** 2
    ntok = 3 * L * L
    R = mg.RENDER_SIZE
    shp = lambda prefix: {k: tuple(v.shape) for k, v in W.items() if k.startswith(prefix)}
    planes = (1, 3, T, H, H)
    return {
        "vit_block": (shp("encoder.model.blocks.0."), {"in.x": (1, 1 + mg.NUM_REGISTERS + n_patch, C),
                                                        "out.x": (1, 1 + mg.NUM_REGISTERS + n_patch, C)}),
        "encoder": (shp("encoder.model."), {"in.image": (1, 3, S, S), "out.features": (1, 1 + n_patch, C),
                                            "out.pos_embed_resized": (1, 1 + n_patch, C)}),
        "camera_embedder": (shp("camera_embedder."), {"in.camera": (1, 16), "out.embedding": (1, M)}),
        "decoder_block": (shp("transformer.layers.0."), {"in.x": (1, ntok, D), "in.cond": (1, 1 + n_patch, C),
                                                         "in.camera_embedding": (1, M), "out.x": (1, ntok, D)}),
        "decoder_block_shared": (None, {"in.x": (1, ntok, D), "in.cond": (1, 1 + n_patch, D),
                                        "in.camera_embedding": (1, M), "out.x": (1, ntok, D)}),
        "upsampler": (shp("upsampler."), {"in.tokens": (1, ntok, D), "out.planes": planes}),
        "nerf_query": (shp("synthesizer."), {"in.planes": planes, "in.points": (1, 500, 3),
                                             "out.sigma": (1, 500, 1), "out.rgb": (1, 500, 3)}),
        "renderer": (shp("synthesizer."), {"in.planes": planes, "in.camera": (1, 25), "out.rgb": (1, R, R, 3),
                                           "out.depth": (1, R, R, 1), "out.opacity": (1, R, R, 1)}),
        "full": (shp(""), {"in.image": (1, 3, S, S), "in.camera": (1, 16), "out.features": (1, 1 + n_patch, C),
                           "out.tokens": (1, ntok, D), "out.planes": planes}),
    }


def close(a, b, tol, what):
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    err = ((a64 - b64).abs().max() / b64.abs().max().clamp_min(1e-30)).item()
    assert err <= tol, f"{what}: relative error {err:.3e} > {tol:.1e}"
    return err


def main():
    torch.set_num_threads(1)
    with open(os.path.join(MODEL_DIR, "tiny", "config.json")) as f:
        cfg_text = f.read()
    cfg = json.loads(cfg_text)
    assert cfg == mg.CONFIG
    _, W = load(os.path.join(MODEL_DIR, "tiny", "model.safetensors"))
    ref_keys = set(mg.make_weights(cfg))
    assert set(W) == ref_keys, set(W) ^ ref_keys
    cases = {}
    for name, (wshapes, io_shapes) in expected_shapes(cfg, W).items():
        meta, T = load(os.path.join(MODEL_DIR, name + ".safetensors"))
        assert meta["module"] == name and meta["config"] == cfg_text, name
        got_io = {k: tuple(v.shape) for k, v in T.items() if k.startswith(("in.", "out."))}
        assert got_io == io_shapes, f"{name}: {got_io} != {io_shapes}"
        got_w = {k: tuple(v.shape) for k, v in T.items() if not k.startswith(("in.", "out.", "dbg."))}
        if wshapes is not None:
            assert got_w == wshapes, f"{name}: weights {sorted(set(got_w) ^ set(wshapes))}"
            for k in got_w:
                assert torch.equal(T[k], W[k]), f"{name}: {k} differs from model.safetensors"
        else:
            assert "transformer.layers.0.cross_attn.in_proj_weight" in got_w
            assert got_w["transformer.layers.0.cross_attn.in_proj_weight"] == (3 * cfg["transformer_dim"],
                                                                               cfg["transformer_dim"])
        for k, v in T.items():
            assert torch.isfinite(v).all(), f"{name}: {k} not finite"
        cases[name] = (meta, T)
    print(f"check: {len(cases)} cases + tiny checkpoint: names, shapes, metadata, shared weights OK")

    W64 = mg.to64(W)
    d = lambda t: t.to(torch.float64)
    full = cases["full"][1]
    # (a) recompute the chain from the checkpoint: must reproduce full bit for bit
    feats, _ = mg.encoder(W64, d(full["in.image"]), cfg)
    emb = mg.camera_embedder(W64, d(full["in.camera"]))
    x = W64["pos_embed"]
    for i in range(cfg["transformer_layers"]):
        x = mg.decoder_block(W64, f"transformer.layers.{i}.", x, feats, emb, cfg["transformer_heads"])
    tokens = mg.layer_norm(x, W64, "transformer.norm")
    planes = mg.upsampler(W64, tokens, cfg)
    for k, v in (("features", feats), ("tokens", tokens), ("planes", planes)):
        assert torch.equal(v.to(torch.float32), full["out." + k]), f"full.out.{k} != chained modules"
    # (b) chain through stored float32 outputs of the module cases
    enc, cam = cases["encoder"][1], cases["camera_embedder"][1]
    assert torch.equal(enc["in.image"], full["in.image"]) and torch.equal(cam["in.camera"], full["in.camera"])
    assert torch.equal(enc["out.features"], full["out.features"])
    x = W64["pos_embed"]
    for i in range(cfg["transformer_layers"]):
        x = mg.decoder_block(W64, f"transformer.layers.{i}.", x, d(enc["out.features"]), d(cam["out.embedding"]),
                             cfg["transformer_heads"])
    e1 = close(mg.layer_norm(x, W64, "transformer.norm"), full["out.tokens"], 1e-5, "tokens from stored inputs")
    e2 = close(mg.upsampler(W64, d(full["out.tokens"]), cfg), full["out.planes"], 1e-5, "planes from stored tokens")
    assert torch.equal(cases["renderer"][1]["in.planes"], full["out.planes"])
    print(f"check: full == encoder -> camera_embedder -> decoder blocks -> LN -> upsampler (bitwise when "
          f"recomputed; {e1:.1e}/{e2:.1e} rel. when chained through stored fp32 outputs); renderer renders full's planes")

    # (c) hand-written modules vs PyTorch nn modules (float64)
    def nn_decoder_block(Wb, pre, x, cond, emb, heads):
        D, kd = x.shape[-1], cond.shape[-1]
        def mha(key, kdim):
            m = nn.MultiheadAttention(D, heads, bias=False, batch_first=True, kdim=kdim, vdim=kdim).double()
            sd = {k[len(pre + key) + 1:]: v for k, v in Wb.items() if k.startswith(pre + key + ".")}
            m.load_state_dict(sd)
            return m
        def modln(n, x):
            ln = nn.LayerNorm(D, eps=1e-6).double()
            ln.load_state_dict({"weight": Wb[f"{pre}norm{n}.norm.weight"], "bias": Wb[f"{pre}norm{n}.norm.bias"]})
            shift, scale = nn.functional.linear(nn.SiLU()(emb), Wb[f"{pre}norm{n}.mlp.1.weight"],
                                                Wb[f"{pre}norm{n}.mlp.1.bias"]).chunk(2, dim=-1)
            return ln(x) * (1 + scale[:, None]) + shift[:, None]
        ca, sa = mha("cross_attn", kd), mha("self_attn", D)
        h = modln(1, x)
        x = x + ca(h, cond, cond, need_weights=False)[0]
        h = modln(2, x)
        x = x + sa(h, h, h, need_weights=False)[0]
        mlp = nn.Sequential(nn.Linear(D, 4 * D), nn.GELU(), nn.Linear(4 * D, D)).double()
        mlp.load_state_dict({"0.weight": Wb[pre + "mlp.0.weight"], "0.bias": Wb[pre + "mlp.0.bias"],
                             "2.weight": Wb[pre + "mlp.3.weight"], "2.bias": Wb[pre + "mlp.3.bias"]})
        return x + mlp(modln(3, x))
    for name in ("decoder_block", "decoder_block_shared"):
        T = mg.to64(cases[name][1])
        with torch.no_grad():
            y = nn_decoder_block(T, "transformer.layers.0.", T["in.x"], T["in.cond"], T["in.camera_embedding"],
                                 cfg["transformer_heads"])
        close(y, cases[name][1]["out.x"], 1e-6, f"{name} vs nn.MultiheadAttention")
    T = mg.to64(cases["upsampler"][1])
    up = nn.ConvTranspose2d(cfg["transformer_dim"], cfg["triplane_dim"], 2, 2).double()
    up.load_state_dict({"weight": T["upsampler.weight"], "bias": T["upsampler.bias"]})
    Lr = cfg["triplane_low_res"]
    with torch.no_grad():
        y = up(T["in.tokens"].reshape(3, Lr, Lr, -1).permute(0, 3, 1, 2))
    close(y[None], cases["upsampler"][1]["out.planes"], 1e-6, "upsampler vs nn.ConvTranspose2d")
    g = (cfg["encoder_image_size"] // mg.PATCH)
    pe = W64["encoder.model.pos_embed"][:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
    by_size = torch.nn.functional.interpolate(pe, size=(g, g), mode="bicubic", antialias=True, align_corners=False)
    close(by_size.permute(0, 2, 3, 1).reshape(1, g * g, -1), cases["encoder"][1]["out.pos_embed_resized"][:, 1:],
          1e-6, "pos table: scale_factor vs size-based interpolate")
    print("check: modules agree with nn.MultiheadAttention / nn.ConvTranspose2d / size-based bicubic-aa")
    check_dino()
    print("check: OK")
    return 0


def check_dino():
    """The paper's variant: encoder_dino, full_dino, nerf_query_deep (tiny DINO v1 config CONFIG_DINO)."""
    cfg = mg.CONFIG_DINO
    Wd = mg.make_weights(cfg, variant="dino")
    C, D, T, H = cfg["encoder_feat_dim"], cfg["transformer_dim"], cfg["triplane_dim"], cfg["triplane_high_res"]
    g = cfg["encoder_image_size"] // cfg["encoder_patch_size"]
    ntok = 3 * cfg["triplane_low_res"] ** 2
    planes = (1, 3, T, H, H)
    assert not any("ls1" in k or "ls2" in k or "register_tokens" in k or "mask_token" in k for k in Wd)
    assert Wd["encoder.model.pos_embed"].shape == (1, 1 + 14 * 14, C)
    assert Wd["camera_embedder.mlp.0.weight"].shape == (cfg["camera_embed_dim"], 20)
    assert sorted(int(k.split(".")[3]) for k in Wd if k.startswith("synthesizer.") and k.endswith("weight")) == \
        list(range(0, 2 * cfg["nerf_layers"], 2))
    io = {
        "encoder_dino": ("encoder.model.", {"in.image": (1, 3, 64, 64), "out.features": (1, 1 + g * g, C),
                                            "out.pos_embed_resized": (1, 1 + g * g, C)}),
        "full_dino": ("", {"in.image": (1, 3, 64, 64), "in.camera": (1, 20), "out.features": (1, 1 + g * g, C),
                           "out.tokens": (1, ntok, D), "out.planes": planes}),
        "nerf_query_deep": ("synthesizer.", {"in.planes": planes, "in.points": (1, 500, 3),
                                             "out.sigma": (1, 500, 1), "out.rgb": (1, 500, 3)}),
    }
    cases = {}
    for name, (prefix, shapes) in io.items():
        meta, T_ = load(os.path.join(MODEL_DIR, name + ".safetensors"))
        assert meta["module"] == name and meta["config"] == mg.CONFIG_DINO_TEXT, name
        got = {k: tuple(v.shape) for k, v in T_.items() if k.startswith(("in.", "out."))}
        assert got == shapes, f"{name}: {got} != {shapes}"
        wk = {k for k in T_ if not k.startswith(("in.", "out."))}
        assert wk == {k for k in Wd if k.startswith(prefix)}, name
        for k in wk:
            assert torch.equal(T_[k], Wd[k]), f"{name}: {k}"
        cases[name] = T_
    full, enc = cases["full_dino"], cases["encoder_dino"]
    assert torch.equal(full["in.image"], enc["in.image"]) and torch.equal(full["out.features"], enc["out.features"])
    assert torch.equal(full["in.camera"][0], mg.canonical_source_camera_full())
    W64 = mg.to64(Wd)
    feats, emb, tokens, pl = mg.forward_planes(W64, full["in.image"].double(), full["in.camera"].double(), cfg)
    for k, v in (("features", feats), ("tokens", tokens), ("planes", pl)):
        assert torch.equal(v.to(torch.float32), full["out." + k]), f"full_dino.out.{k} != recomputed"
    # bilinear resize of the 14x14 table by explicit size == the same with an explicit (separable) weight matrix
    def bilinear_matrix(n_in, n_out):
        m = torch.zeros(n_out, n_in, dtype=torch.float64)
        for i in range(n_out):
            src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
            i0 = min(int(src), n_in - 1)
            i1 = min(i0 + 1, n_in - 1)
            f = src - i0
            m[i, i0] += 1 - f
            m[i, i1] += f
        return m
    A = bilinear_matrix(14, g)
    table = W64["encoder.model.pos_embed"][0, 1:].reshape(14, 14, C)
    manual = torch.einsum("ya,xb,abc->yxc", A, A, table).reshape(g * g, C)
    close(manual, enc["out.pos_embed_resized"][0, 1:], 1e-6, "dino pos table vs explicit bilinear weights")
    print("check: dino cases (encoder_dino, full_dino, nerf_query_deep): names, shapes, weights, full recomputed "
          "bitwise, bilinear position table")


if __name__ == "__main__":
    sys.exit(main())
