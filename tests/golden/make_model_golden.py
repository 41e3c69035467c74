#!/usr/bin/python3
"""PyTorch golden references for LrmNative's LRM model modules (issue 3).

Run with Debian's PyTorch (python3-torch 1.13):  /usr/bin/python3 tests/golden/make_model_golden.py
Writes tests/golden/model/tiny/{config.json,model.safetensors} and tests/golden/model/<case>.safetensors,
then runs the self-check (tests/golden/check_model_golden.py). See tests/golden/model/README.md.

The reference modules are written here from the model description (OpenLRM v1.1 / DINOv2 with registers,
EG3D-style renderer); nothing is imported from OpenLRM. Weights and inputs are drawn as float32; the
reference is computed in float64 from exactly those values and rounded once to float32. Each case also
reports how far the same computation in float32 is from the reference.
"""
import json
import math
import os
import sys
import zlib

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import golden_io  # noqa: E402

OUT_DIR = os.path.join(HERE, "model")
TINY_DIR = os.path.join(OUT_DIR, "tiny")

# Tiny config: OpenLRM v1.1 flat keys + LrmNative extension keys (encoder_depth/heads/image_size).
CONFIG = {
    "camera_embed_dim": 32, "rendering_samples_per_ray": 16, "transformer_dim": 64,
    "transformer_layers": 2, "transformer_heads": 4, "triplane_low_res": 8, "triplane_high_res": 16,
    "triplane_dim": 8, "encoder_type": "dinov2", "encoder_model_name": "dinov2_vits14_reg",
    "encoder_feat_dim": 48, "encoder_freeze": False,
    "encoder_depth": 2, "encoder_heads": 3, "encoder_image_size": 56,
}
CONFIG_TEXT = json.dumps(CONFIG, indent=2) + "\n"

# Tiny paper-style config (DINO v1 encoder, 4x4 camera feature, deep NeRF MLP): LrmNative extension keys
# encoder_patch_size 16, no registers, no LayerScale, 14x14 position table resized bilinearly,
# camera_input_dim 20, nerf_layers 10 (hidden 32 to exercise nerf_hidden_dim).
CONFIG_DINO = {
    "camera_embed_dim": 32, "rendering_samples_per_ray": 16, "transformer_dim": 64,
    "transformer_layers": 2, "transformer_heads": 4, "triplane_low_res": 8, "triplane_high_res": 16,
    "triplane_dim": 8, "encoder_type": "dino", "encoder_model_name": "dino_vitb16",
    "encoder_feat_dim": 48, "encoder_freeze": False,
    "encoder_depth": 2, "encoder_heads": 3, "encoder_image_size": 64,
    "encoder_patch_size": 16, "encoder_registers": 0, "encoder_layer_scale": False, "encoder_pos_grid": 14,
    "encoder_pos_interpolation": "bilinear", "camera_input_dim": 20, "nerf_layers": 10, "nerf_hidden_dim": 32,
}
CONFIG_DINO_TEXT = json.dumps(CONFIG_DINO, indent=2) + "\n"

PATCH = 14
NUM_REGISTERS = 4
POS_GRID = 37                 # trained DINOv2 position table: 37x37 patches + CLS = 1370 rows
INTERP_OFFSET = 0.0           # dinov2_*_reg: interpolate_offset = 0.0, interpolate_antialias = True
INTERP_ANTIALIAS = True
LN_EPS = 1e-6
RENDER_SIZE = 12
INBOX_TOL = 1e-5              # in-box test: max|p| <= 1 + INBOX_TOL (see README)

DTYPE = torch.float64


def enc_params(cfg):
    """(patch, registers, layer_scale, pos_grid, interpolation) of the config's encoder (defaults by type)."""
    dino = cfg["encoder_type"] == "dino"
    return (cfg.get("encoder_patch_size", 16 if dino else PATCH),
            cfg.get("encoder_registers", 0 if dino else NUM_REGISTERS),
            cfg.get("encoder_layer_scale", not dino),
            cfg.get("encoder_pos_grid", 14 if dino else POS_GRID),
            cfg.get("encoder_pos_interpolation", "bilinear" if dino else "bicubic-antialias"))


# ----------------------------------------------------------------------------------------------
# deterministic random tensors
# ----------------------------------------------------------------------------------------------
def gen(tag):
    g = torch.Generator()
    g.manual_seed(zlib.crc32(tag.encode("utf-8")))
    return g


def randn(tag, shape, std=1.0, mean=0.0):
    return (torch.randn(*shape, generator=gen(tag), dtype=torch.float32) * std + mean).to(torch.float32)


def rand(tag, shape, lo=0.0, hi=1.0):
    return (torch.rand(*shape, generator=gen(tag), dtype=torch.float32) * (hi - lo) + lo).to(torch.float32)


def make_weights(cfg, variant="tiny", cond_dim=None):
    """All weights of the tiny model under their OpenLRM checkpoint keys (float32)."""
    W = {}
    C = cfg["encoder_feat_dim"]
    D = cfg["transformer_dim"]
    M = cfg["camera_embed_dim"]
    T = cfg["triplane_dim"]
    L = cfg["triplane_low_res"]
    cond_dim = C if cond_dim is None else cond_dim
    patch, n_reg, layer_scale, pos_grid, _ = enc_params(cfg)
    dino = cfg["encoder_type"] == "dino"

    def lin(key, out_f, in_f, gain=1.0, bias=True, bias_std=0.1):
        W[key + ".weight"] = randn(f"{variant}/{key}.weight", (out_f, in_f), gain / math.sqrt(in_f))
        if bias:
            W[key + ".bias"] = randn(f"{variant}/{key}.bias", (out_f,), bias_std)

    def ln(key, n):
        W[key + ".weight"] = randn(f"{variant}/{key}.weight", (n,), 0.1, 1.0)
        W[key + ".bias"] = randn(f"{variant}/{key}.bias", (n,), 0.1)

    # decoder tokens
    W["pos_embed"] = randn(f"{variant}/pos_embed", (1, 3 * L * L, D), 1.0 / math.sqrt(D))
    # encoder (DINOv2 with registers)
    e = "encoder.model."
    W[e + "cls_token"] = randn(f"{variant}/{e}cls_token", (1, 1, C), 0.5)
    W[e + "pos_embed"] = randn(f"{variant}/{e}pos_embed", (1, pos_grid * pos_grid + 1, C), 0.3)
    if n_reg:
        W[e + "register_tokens"] = randn(f"{variant}/{e}register_tokens", (1, n_reg, C), 0.5)
    if not dino:
        W[e + "mask_token"] = randn(f"{variant}/{e}mask_token", (1, C), 0.02)
    W[e + "patch_embed.proj.weight"] = randn(f"{variant}/{e}patch_embed.proj.weight", (C, 3, patch, patch),
                                             1.0 / math.sqrt(3 * patch * patch))
    W[e + "patch_embed.proj.bias"] = randn(f"{variant}/{e}patch_embed.proj.bias", (C,), 0.1)
    for i in range(cfg["encoder_depth"]):
        b = f"{e}blocks.{i}."
        ln(b + "norm1", C)
        lin(b + "attn.qkv", 3 * C, C)
        lin(b + "attn.proj", C, C)
        if layer_scale:
            W[b + "ls1.gamma"] = rand(f"{variant}/{b}ls1.gamma", (C,), 0.1, 1.0)
        ln(b + "norm2", C)
        lin(b + "mlp.fc1", 4 * C, C)
        lin(b + "mlp.fc2", C, 4 * C)
        if layer_scale:
            W[b + "ls2.gamma"] = rand(f"{variant}/{b}ls2.gamma", (C,), 0.1, 1.0)
    ln(e + "norm", C)
    # camera embedder
    lin("camera_embedder.mlp.0", M, cfg.get("camera_input_dim", 16))
    lin("camera_embedder.mlp.2", M, M)
    # transformer decoder
    for i in range(cfg["transformer_layers"]):
        t = f"transformer.layers.{i}."
        for n in (1, 2, 3):
            ln(f"{t}norm{n}.norm", D)
            lin(f"{t}norm{n}.mlp.1", 2 * D, M)
        if cond_dim == D:
            W[t + "cross_attn.in_proj_weight"] = torch.cat([
                randn(f"{variant}/{t}cross_attn.in_proj_weight.q", (D, D), 1.0 / math.sqrt(D)),
                randn(f"{variant}/{t}cross_attn.in_proj_weight.kv", (2 * D, D), 1.0 / math.sqrt(D))])
        else:
            W[t + "cross_attn.q_proj_weight"] = randn(f"{variant}/{t}cross_attn.q_proj_weight", (D, D),
                                                      1.0 / math.sqrt(D))
            W[t + "cross_attn.k_proj_weight"] = randn(f"{variant}/{t}cross_attn.k_proj_weight", (D, cond_dim),
                                                      1.0 / math.sqrt(cond_dim))
            W[t + "cross_attn.v_proj_weight"] = randn(f"{variant}/{t}cross_attn.v_proj_weight", (D, cond_dim),
                                                      1.0 / math.sqrt(cond_dim))
        W[t + "cross_attn.out_proj.weight"] = randn(f"{variant}/{t}cross_attn.out_proj.weight", (D, D),
                                                    1.0 / math.sqrt(D))
        W[t + "self_attn.in_proj_weight"] = randn(f"{variant}/{t}self_attn.in_proj_weight", (3 * D, D),
                                                  1.0 / math.sqrt(D))
        W[t + "self_attn.out_proj.weight"] = randn(f"{variant}/{t}self_attn.out_proj.weight", (D, D),
                                                   1.0 / math.sqrt(D))
        lin(t + "mlp.0", 4 * D, D)
        lin(t + "mlp.3", D, 4 * D)
    ln("transformer.norm", D)
    # upsampler: ConvTranspose2d(D, T, 2, 2): weight (in, out, kH, kW)
    W["upsampler.weight"] = randn(f"{variant}/upsampler.weight", (D, T, 2, 2), 1.0 / math.sqrt(D))
    W["upsampler.bias"] = randn(f"{variant}/upsampler.bias", (T,), 0.1)
    # triplane NeRF decoder
    n_layers, hidden = cfg.get("nerf_layers", 4), cfg.get("nerf_hidden_dim", 64)
    for l in range(n_layers):
        last = l == n_layers - 1
        lin(f"synthesizer.decoder.net.{2 * l}", 4 if last else hidden, 3 * T if l == 0 else hidden,
            gain=1.0 if last else math.sqrt(2.0))
    return W


# ----------------------------------------------------------------------------------------------
# reference modules (dtype-agnostic: called with float64 for the reference, float32 for comparison)
# ----------------------------------------------------------------------------------------------
def layer_norm(x, W, key, eps=LN_EPS):
    return F.layer_norm(x, (x.shape[-1],), W[key + ".weight"], W[key + ".bias"], eps)


def linear(x, W, key, bias=True):
    return F.linear(x, W[key + ".weight"], W.get(key + ".bias") if bias else None)


def attention(q, k, v, heads):
    """q (N, Lq, C), k/v (N, Lk, C) -> (N, Lq, C); softmax(q k^T / sqrt(hd)) v per head."""
    N, Lq, C = q.shape
    Lk = k.shape[1]
    hd = C // heads
    q = q.reshape(N, Lq, heads, hd).transpose(1, 2)
    k = k.reshape(N, Lk, heads, hd).transpose(1, 2)
    v = v.reshape(N, Lk, heads, hd).transpose(1, 2)
    s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
    p = torch.softmax(s, dim=-1)
    return torch.matmul(p, v).transpose(1, 2).reshape(N, Lq, C)


def vit_block(W, prefix, x, heads):
    C = x.shape[-1]
    h = layer_norm(x, W, prefix + "norm1")
    qkv = linear(h, W, prefix + "attn.qkv")
    a = attention(qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:], heads)
    a = linear(a, W, prefix + "attn.proj")
    x = x + (a * W[prefix + "ls1.gamma"] if prefix + "ls1.gamma" in W else a)   # DINO v1: no LayerScale
    h = layer_norm(x, W, prefix + "norm2")
    h = linear(F.gelu(linear(h, W, prefix + "mlp.fc1")), W, prefix + "mlp.fc2")
    return x + (h * W[prefix + "ls2.gamma"] if prefix + "ls2.gamma" in W else h)


def resize_pos_embed(pos_embed, gh, gw, mode="bicubic-antialias"):
    """DINOv2 interpolate_pos_encoding: CLS row kept, 37x37 patch table -> gh x gw, bicubic (antialias).
    mode "bilinear" (the paper's DINO v1): g x g table -> gh x gw by explicit size, align_corners=False."""
    n = pos_embed.shape[1] - 1
    g = int(round(math.sqrt(n)))
    assert g * g == n
    C = pos_embed.shape[-1]
    cls = pos_embed[:, :1]
    if gh == g and gw == g:
        return pos_embed
    table = pos_embed[:, 1:].reshape(1, g, g, C).permute(0, 3, 1, 2)
    if mode == "bilinear":
        out = F.interpolate(table, size=(gh, gw), mode="bilinear", align_corners=False, antialias=False)
        return torch.cat([cls, out.permute(0, 2, 3, 1).reshape(1, gh * gw, C)], dim=1)
    assert mode == "bicubic-antialias", mode
    sh, sw = (gh + INTERP_OFFSET) / g, (gw + INTERP_OFFSET) / g
    out = F.interpolate(table, scale_factor=(sh, sw), mode="bicubic", antialias=INTERP_ANTIALIAS,
                        align_corners=False)
    assert out.shape[-2:] == (gh, gw), out.shape
    return torch.cat([cls, out.permute(0, 2, 3, 1).reshape(1, gh * gw, C)], dim=1)


def encoder(W, image, cfg):
    e = "encoder.model."
    N = image.shape[0]
    patch, n_reg, _, _, interp = enc_params(cfg)
    x = F.conv2d(image, W[e + "patch_embed.proj.weight"], W[e + "patch_embed.proj.bias"], stride=patch)
    gh, gw = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([W[e + "cls_token"].expand(N, -1, -1), x], dim=1)
    pos = resize_pos_embed(W[e + "pos_embed"], gh, gw, interp)
    x = x + pos
    if n_reg:
        x = torch.cat([x[:, :1], W[e + "register_tokens"].expand(N, -1, -1), x[:, 1:]], dim=1)
    for i in range(cfg["encoder_depth"]):
        x = vit_block(W, f"{e}blocks.{i}.", x, cfg["encoder_heads"])
    x = layer_norm(x, W, e + "norm")
    feats = torch.cat([x[:, :1], x[:, 1 + n_reg:]], dim=1)
    return feats, pos


def camera_embedder(W, cam):
    return linear(F.silu(linear(cam, W, "camera_embedder.mlp.0")), W, "camera_embedder.mlp.2")


def modln(W, key, x, cam_emb):
    D = x.shape[-1]
    ss = linear(F.silu(cam_emb), W, key + ".mlp.1")
    shift, scale = ss[..., :D], ss[..., D:]
    return layer_norm(x, W, key + ".norm") * (1 + scale[:, None, :]) + shift[:, None, :]


def mha(W, key, xq, xkv, heads):
    """nn.MultiheadAttention(bias=False, batch_first=True) with packed or separate projections."""
    D = xq.shape[-1]
    if key + ".in_proj_weight" in W:
        w = W[key + ".in_proj_weight"]
        wq, wk, wv = w[:D], w[D:2 * D], w[2 * D:]
    else:
        wq, wk, wv = W[key + ".q_proj_weight"], W[key + ".k_proj_weight"], W[key + ".v_proj_weight"]
    a = attention(F.linear(xq, wq), F.linear(xkv, wk), F.linear(xkv, wv), heads)
    return F.linear(a, W[key + ".out_proj.weight"])


def decoder_block(W, prefix, x, cond, cam_emb, heads):
    x = x + mha(W, prefix + "cross_attn", modln(W, prefix + "norm1", x, cam_emb), cond, heads)
    h = modln(W, prefix + "norm2", x, cam_emb)
    x = x + mha(W, prefix + "self_attn", h, h, heads)
    h = modln(W, prefix + "norm3", x, cam_emb)
    return x + linear(F.gelu(linear(h, W, prefix + "mlp.0")), W, prefix + "mlp.3")


def transformer(W, cond, cam_emb, cfg):
    x = W["pos_embed"].expand(cond.shape[0], -1, -1)
    for i in range(cfg["transformer_layers"]):
        x = decoder_block(W, f"transformer.layers.{i}.", x, cond, cam_emb, cfg["transformer_heads"])
    return layer_norm(x, W, "transformer.norm")


def upsampler(W, tokens, cfg):
    N, _, D = tokens.shape
    L = cfg["triplane_low_res"]
    x = tokens.reshape(N, 3, L, L, D).permute(0, 1, 4, 2, 3).reshape(N * 3, D, L, L)
    x = F.conv_transpose2d(x, W["upsampler.weight"], W["upsampler.bias"], stride=2)
    return x.reshape(N, 3, *x.shape[1:])


def forward_planes(W, image, camera, cfg):
    feats, _ = encoder(W, image, cfg)
    emb = camera_embedder(W, camera)
    tokens = transformer(W, feats, emb, cfg)
    return feats, emb, tokens, upsampler(W, tokens, cfg)


def triplane_features(planes, pts):
    """planes (N, 3, C, H, W), pts (N, M, 3) -> (N, M, 3C): plane0 (x,y), plane1 (x,z), plane2 (z,y)."""
    N, _, C, H, Wd = planes.shape
    M = pts.shape[1]
    uv = torch.stack([pts[..., [0, 1]], pts[..., [0, 2]], pts[..., [2, 1]]], dim=1)  # (N, 3, M, 2)
    f = F.grid_sample(planes.reshape(N * 3, C, H, Wd), uv.reshape(N * 3, 1, M, 2), mode="bilinear",
                      padding_mode="zeros", align_corners=False)  # (N*3, C, 1, M)
    return f.reshape(N, 3, C, M).permute(0, 3, 1, 2).reshape(N, M, 3 * C)


def nerf_raw(W, planes, pts):
    """-> raw sigma (N, M, 1) (not activated), rgb (N, M, 3) = sigmoid * 1.002 - 0.001."""
    x = triplane_features(planes, pts)
    p = "synthesizer.decoder.net."
    n_layers = len([k for k in W if k.startswith(p) and k.endswith(".weight")])   # 4 (OpenLRM) or 10 (paper)
    for l in range(n_layers - 1):
        x = F.relu(linear(x, W, f"{p}{2 * l}"))
    x = linear(x, W, f"{p}{2 * (n_layers - 1)}")
    return x[..., :1], torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001


def density_act(x):
    return F.softplus(x - 1)


def make_rays(camera, S):
    """camera (25,) = 4x4 c2w (OpenGL) + 3x3 normalised intrinsics -> origins, unit dirs (S*S, 3)."""
    E = camera[:16].reshape(4, 4)
    K = camera[16:25].reshape(3, 3)
    fx, fy, cx, cy, sk = K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[0, 1]
    idx = torch.arange(S, dtype=camera.dtype)
    i, j = torch.meshgrid(idx, idx, indexing="ij")   # i: row, j: column
    x = (j.reshape(-1) + 0.5) / S
    y = (i.reshape(-1) + 0.5) / S
    x_lift = (x - cx + cy * sk / fy - sk * y / fy) / fx
    y_lift = (y - cy) / fy
    d_cam = torch.stack([x_lift, -y_lift, -torch.ones_like(x_lift)], dim=-1)
    d = d_cam @ E[:3, :3].T
    d = d / torch.linalg.norm(d, dim=-1, keepdim=True)
    o = E[:3, 3].expand(S * S, 3)
    return o, d


def box_limits(o, d):
    inv = 1.0 / d
    lo = torch.where(inv >= 0, torch.full_like(d, -1.0), torch.full_like(d, 1.0))
    t_lo = (lo - o) * inv
    t_hi = (-lo - o) * inv
    near = t_lo.max(dim=-1).values
    far = t_hi.min(dim=-1).values
    valid = far > near
    near = near.clone()
    far = far.clone()
    if valid.any():
        near_valid = near[valid]
        near[~valid] = near_valid.min()
        far[~valid] = near_valid.max()   # sic (OpenLRM/EG3D): max of the valid *starts*
    return near, far, valid


def query(W, planes, o, d, t):
    """t (R, n) -> raw sigma (R, n), rgb (R, n, 3), inside (R, n)."""
    R, n = t.shape
    p = o[:, None, :] + t[..., None] * d[:, None, :]
    sig, rgb = nerf_raw(W, planes, p.reshape(1, R * n, 3))
    sig = sig.reshape(R, n)
    rgb = rgb.reshape(R, n, 3)
    inside = p.abs().max(dim=-1).values <= 1 + INBOX_TOL
    rgb = torch.where(inside[..., None], rgb, torch.zeros_like(rgb))
    return sig, rgb, inside, p


def march(sig, rgb, inside, t, bg=1.0):
    """Midpoint-rule compositing (MipRayMarcher2). Returns rgb (R,3), depth (R,), opacity (R,), w (R, n-1)."""
    delta = t[:, 1:] - t[:, :-1]
    t_mid = (t[:, 1:] + t[:, :-1]) / 2
    c_mid = (rgb[:, 1:] + rgb[:, :-1]) / 2
    s_mid = density_act((sig[:, 1:] + sig[:, :-1]) / 2)
    s_mid = torch.where(inside[:, 1:] & inside[:, :-1], s_mid, torch.zeros_like(s_mid))
    alpha = 1 - torch.exp(-s_mid * delta)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-10], dim=1), dim=1)[:, :-1]
    w = alpha * trans
    opacity = w.sum(dim=1)
    out_rgb = (w[..., None] * c_mid).sum(dim=1) + bg * (1 - opacity)[:, None]
    depth = (w * t_mid).sum(dim=1) / opacity
    depth = torch.nan_to_num(depth, nan=float("inf"))
    depth = torch.clamp(depth, t.min(), t.max())
    return out_rgb, depth, opacity, w


def importance(t_coarse, w, n_fine):
    """Deterministic EG3D/OpenLRM sample_importance + sample_pdf(det=True)."""
    R, nc = t_coarse.shape
    wp = F.pad(w, (1, 1), value=-float("inf"))
    m = torch.maximum(wp[:, :-1], wp[:, 1:])             # max_pool1d(k=2, s=1, pad=1): nc values
    a = (m[:, :-1] + m[:, 1:]) / 2 + 0.01                # avg_pool1d(k=2, s=1): nc-1 values
    bins = (t_coarse[:, :-1] + t_coarse[:, 1:]) / 2     # nc-1 midpoints
    q = a[:, 1:-1] + 1e-5                                # nc-3 weights
    Mw = q.shape[1]
    pdf = q / q.sum(dim=1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=1)], dim=1)
    u = torch.linspace(0, 1, n_fine, dtype=t_coarse.dtype).expand(R, n_fine).contiguous()
    ind = torch.searchsorted(cdf, u, right=True)
    below = torch.clamp(ind - 1, min=0)
    above = torch.clamp(ind, max=Mw)
    cb, ca = torch.gather(cdf, 1, below), torch.gather(cdf, 1, above)
    bb, ba = torch.gather(bins, 1, below), torch.gather(bins, 1, above)
    denom = ca - cb
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    return bb + (u - cb) / denom * (ba - bb)


def render(W, planes, camera, S, n_coarse, n_fine, aux=None):
    """planes (1, 3, C, H, W), camera (25,) -> rgb (S,S,3), depth (S,S,1), opacity (S,S,1)."""
    o, d = make_rays(camera, S)
    near, far, valid = box_limits(o, d)
    steps = torch.arange(n_coarse, dtype=camera.dtype) / (n_coarse - 1)
    t_c = near[:, None] + steps[None, :] * (far - near)[:, None]
    sig_c, rgb_c, in_c, p_c = query(W, planes, o, d, t_c)
    _, _, _, w_c = march(sig_c, rgb_c, in_c, t_c)
    t_f = importance(t_c, w_c, n_fine)
    sig_f, rgb_f, in_f, p_f = query(W, planes, o, d, t_f)
    t_all = torch.cat([t_c, t_f], dim=1)
    order = torch.sort(t_all, dim=1).indices
    t_all = torch.gather(t_all, 1, order)
    sig_all = torch.gather(torch.cat([sig_c, sig_f], 1), 1, order)
    in_all = torch.gather(torch.cat([in_c, in_f], 1), 1, order)
    rgb_all = torch.gather(torch.cat([rgb_c, rgb_f], 1), 1, order[..., None].expand(-1, -1, 3))
    rgb, depth, opacity, w = march(sig_all, rgb_all, in_all, t_all)
    if aux is not None:
        aux.update(dict(ray_origins=o, ray_directions=d, near=near, far=far, valid=valid,
                        depths_coarse=t_c, weights_coarse=w_c, depths_fine=t_f, depths_all=t_all,
                        weights_all=w, points=torch.cat([p_c, p_f], 1)))
    return rgb.reshape(S, S, 3), depth.reshape(S, S, 1), opacity.reshape(S, S, 1)


# ----------------------------------------------------------------------------------------------
# cameras
# ----------------------------------------------------------------------------------------------
def canonical_source_camera(dist=2.0, f=0.75, c=0.5):
    """(16,) = 3x4 c2w row-major (camera at (0,-d,0) looking along +Y, up +Z; OpenGL) + fx, fy, cx, cy."""
    rt = [1, 0, 0, 0,
          0, 0, -1, -dist,
          0, 1, 0, 0]
    return torch.tensor(rt + [f, f, c, c], dtype=torch.float32)


def canonical_source_camera_full(dist=2.0, f=0.75, c=0.5):
    """(20,) = the paper's camera feature: 4x4 c2w row-major (the canonical camera) + fx, fy, cx, cy."""
    rt = [1, 0, 0, 0,
          0, 0, -1, -dist,
          0, 1, 0, 0,
          0, 0, 0, 1]
    return torch.tensor(rt + [f, f, c, c], dtype=torch.float32)


def look_at_render_camera(azim_deg, elev_deg, dist=2.0, f=0.75, c=0.5):
    """(25,) = 4x4 c2w (OpenGL, looking at the origin, world up +Z) + 3x3 normalised intrinsics."""
    a, e = math.radians(azim_deg), math.radians(elev_deg)
    pos = torch.tensor([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)],
                       dtype=torch.float64) * dist
    z = pos / pos.norm()
    x = torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), z)
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    E = torch.eye(4, dtype=torch.float64)
    E[:3, 0], E[:3, 1], E[:3, 2], E[:3, 3] = x, y, z, pos
    K = torch.tensor([[f, 0, c], [0, f, c], [0, 0, 1]], dtype=torch.float64)
    return torch.cat([E.reshape(-1), K.reshape(-1)]).to(torch.float32)


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------
def f32_entry(t):
    t = t.detach().to(torch.float32).contiguous()
    return ("F32", list(t.shape), t.numpy().tobytes())


def to64(d):
    return {k: v.to(DTYPE) for k, v in d.items()}


def select(W, *prefixes):
    return {k: v for k, v in W.items() if any(k.startswith(p) for p in prefixes)}


def rel_err(a, ref):
    a = a.to(torch.float64)
    ref = ref.to(torch.float64)
    fin = torch.isfinite(ref)
    diff = (a[fin] - ref[fin]).abs().max().item() if fin.any() else 0.0
    scale = ref[fin].abs().max().item() if fin.any() else 1.0
    return diff, diff / max(scale, 1e-30)


SIZES = {}


def write_case(name, weights, inputs, outputs, extra_meta=None, extra=None, config_text=CONFIG_TEXT):
    tensors = {k: f32_entry(v) for k, v in weights.items()}
    tensors.update({"in." + k: f32_entry(v) for k, v in inputs.items()})
    tensors.update({"out." + k: f32_entry(v) for k, v in outputs.items()})
    if extra:
        tensors.update({k: f32_entry(v) for k, v in extra.items()})
    meta = {"module": name, "config": config_text}
    meta.update(extra_meta or {})
    path = os.path.join(OUT_DIR, name + ".safetensors")
    SIZES[os.path.relpath(path, OUT_DIR)] = golden_io.write(path, tensors, meta)


def report(name, out64, out32):
    for k in out64:
        a, r = rel_err(out32[k], out64[k])
        print(f"  {name:22s} out.{k:18s} fp32-vs-fp64 max abs {a:.3e}  rel-to-max {r:.3e}")


def run_both(fn, W32, inputs32):
    """Run fn(W, inputs) in float64 (reference) and float32; returns (ref rounded to f32 later, f32)."""
    out64 = fn(to64(W32), to64(inputs32))
    out32 = fn(W32, inputs32)
    return out64, out32


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(TINY_DIR, exist_ok=True)
    for f in os.listdir(OUT_DIR):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(OUT_DIR, f))
    cfg = CONFIG
    W = make_weights(cfg)
    nc = cfg["rendering_samples_per_ray"] // 2
    nf = cfg["rendering_samples_per_ray"] // 2

    # tiny checkpoint
    with open(os.path.join(TINY_DIR, "config.json"), "w") as f:
        f.write(CONFIG_TEXT)
    SIZES["tiny/config.json"] = len(CONFIG_TEXT.encode())
    SIZES["tiny/model.safetensors"] = golden_io.write(
        os.path.join(TINY_DIR, "model.safetensors"), {k: f32_entry(v) for k, v in W.items()},
        {"format": "pt", "config": CONFIG_TEXT})

    S_img = cfg["encoder_image_size"]
    image = rand("case/image", (1, 3, S_img, S_img))
    cam_src = canonical_source_camera()[None]
    print("fp32-vs-fp64 (reference = float64 from the float32 weights/inputs, rounded once):")

    # vit_block
    ins = {"x": randn("case/vit_block/x", (1, 1 + NUM_REGISTERS + (S_img // PATCH) ** 2, 48))}
    fn = lambda w, i: {"x": vit_block(w, "encoder.model.blocks.0.", i["x"], cfg["encoder_heads"])}
    o64, o32 = run_both(fn, W, ins)
    report("vit_block", o64, o32)
    write_case("vit_block", select(W, "encoder.model.blocks.0."), ins, o64)

    # encoder
    ins = {"image": image}
    fn = lambda w, i: dict(zip(("features", "pos_embed_resized"), encoder(w, i["image"], cfg)))
    o64, o32 = run_both(fn, W, ins)
    report("encoder", o64, o32)
    write_case("encoder", select(W, "encoder.model."), ins, o64,
               {"interpolate_offset": repr(INTERP_OFFSET), "interpolate_antialias": "1", "patch_size": str(PATCH),
                "num_register_tokens": str(NUM_REGISTERS)})

    # camera_embedder
    ins = {"camera": cam_src}
    fn = lambda w, i: {"embedding": camera_embedder(w, i["camera"])}
    o64, o32 = run_both(fn, W, ins)
    report("camera_embedder", o64, o32)
    write_case("camera_embedder", select(W, "camera_embedder."), ins, o64)

    # decoder_block (cond width 48 != 64: separate q/k/v projections)
    D = cfg["transformer_dim"]
    L = cfg["triplane_low_res"]
    ntok = 3 * L * L
    ins = {"x": randn("case/decoder_block/x", (1, ntok, D)),
           "cond": randn("case/decoder_block/cond", (1, 17, 48)),
           "camera_embedding": randn("case/decoder_block/camera_embedding", (1, 32))}
    fn = lambda w, i: {"x": decoder_block(w, "transformer.layers.0.", i["x"], i["cond"], i["camera_embedding"],
                                          cfg["transformer_heads"])}
    o64, o32 = run_both(fn, W, ins)
    report("decoder_block", o64, o32)
    write_case("decoder_block", select(W, "transformer.layers.0."), ins, o64, {"cond_dim": "48"})

    # decoder_block_shared (cond width 64: packed cross_attn.in_proj_weight)
    Wsh = select(make_weights(cfg, variant="shared", cond_dim=D), "transformer.layers.0.")
    ins = {"x": randn("case/decoder_block_shared/x", (1, ntok, D)),
           "cond": randn("case/decoder_block_shared/cond", (1, 17, D)),
           "camera_embedding": randn("case/decoder_block_shared/camera_embedding", (1, 32))}
    o64, o32 = run_both(fn, Wsh, ins)
    report("decoder_block_shared", o64, o32)
    write_case("decoder_block_shared", Wsh, ins, o64, {"cond_dim": str(D)})

    # upsampler
    ins = {"tokens": randn("case/upsampler/tokens", (1, ntok, D))}
    fn = lambda w, i: {"planes": upsampler(w, i["tokens"], cfg)}
    o64, o32 = run_both(fn, W, ins)
    report("upsampler", o64, o32)
    write_case("upsampler", select(W, "upsampler."), ins, o64)

    # full (computed before nerf/renderer: the renderer renders full's planes)
    ins = {"image": image, "camera": cam_src}
    fn = lambda w, i: dict(zip(("features", "embedding", "tokens", "planes"),
                               forward_planes(w, i["image"], i["camera"], cfg)))
    o64, o32 = run_both(fn, W, ins)
    o64.pop("embedding"), o32.pop("embedding")
    report("full", o64, o32)
    write_case("full", W, ins, o64)
    full_planes = o64["planes"].to(torch.float32)

    # nerf_query
    T = cfg["triplane_dim"]
    H = cfg["triplane_high_res"]
    corners = torch.tensor([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)],
                           dtype=torch.float32)
    pts = rand("case/nerf_query/points", (1, 500, 3), -1.05, 1.05)
    pts[0, :27] = corners
    ins = {"planes": randn("case/nerf_query/planes", (1, 3, T, H, H)), "points": pts}

    def fn(w, i):
        s, c = nerf_raw(w, i["planes"], i["points"])
        return {"sigma": density_act(s), "rgb": c}
    o64, o32 = run_both(fn, W, ins)
    report("nerf_query", o64, o32)
    write_case("nerf_query", select(W, "synthesizer."), ins, o64)

    # renderer
    cam_r = look_at_render_camera(azim_deg=-60.0, elev_deg=25.0)[None]
    ins = {"planes": full_planes, "camera": cam_r}
    aux64 = {}

    def fn(w, i, aux=None):
        rgb, depth, op = render(w, i["planes"], i["camera"][0], RENDER_SIZE, nc, nf, aux)
        return {"rgb": rgb[None], "depth": depth[None], "opacity": op[None]}
    out64 = fn(to64(W), to64(ins), aux64)
    out32 = fn(W, ins)
    report("renderer", out64, out32)
    check_render_margins(aux64)
    R = RENDER_SIZE * RENDER_SIZE
    extra = {"dbg.near": aux64["near"].reshape(1, R, 1), "dbg.far": aux64["far"].reshape(1, R, 1),
             "dbg.ray_directions": aux64["ray_directions"].reshape(1, R, 3),
             "dbg.depths_coarse": aux64["depths_coarse"][None], "dbg.weights_coarse": aux64["weights_coarse"][None],
             "dbg.depths_fine": aux64["depths_fine"][None], "dbg.depths_all": aux64["depths_all"][None],
             "dbg.weights_all": aux64["weights_all"][None],
             "dbg.valid": aux64["valid"].to(torch.float64).reshape(1, R, 1)}
    op = out64["opacity"]
    print(f"  renderer: {int((~aux64['valid']).sum())} of {R} rays miss the box; opacity min {op.min():.3f} "
          f"mean {op.mean():.3f} max {op.max():.3f}; depth range [{out64['depth'].min():.3f}, "
          f"{out64['depth'].max():.3f}]")
    rmeta = {"render_size": str(RENDER_SIZE), "samples_coarse": str(nc), "samples_fine": str(nf),
             "background": "1", "inbox_tolerance": repr(INBOX_TOL)}
    write_case("renderer", select(W, "synthesizer."), ins, out64, rmeta)
    # intermediates of the same render (no weights/inputs): for debugging an implementation step by step
    path = os.path.join(OUT_DIR, "renderer_debug.safetensors")
    SIZES["renderer_debug.safetensors"] = golden_io.write(
        path, {k: f32_entry(v) for k, v in extra.items()}, dict(rmeta, module="renderer_debug"))

    dino_cases()

    total = sum(SIZES.values())
    for k in sorted(SIZES):
        print(f"  {k:32s} {SIZES[k]:9d} bytes")
    print(f"  total {total} bytes ({total / 1e6:.2f} MB)")


def dino_cases():
    """The paper's variant: encoder_dino, full_dino (tiny paper-style model) and nerf_query_deep (10 layers)."""
    cfg = CONFIG_DINO
    W = make_weights(cfg, variant="dino")
    S_img = cfg["encoder_image_size"]
    patch, _, _, pos_grid, interp = enc_params(cfg)
    image = rand("case/dino/image", (1, 3, S_img, S_img))
    meta = {"patch_size": str(patch), "num_register_tokens": "0", "pos_grid": str(pos_grid),
            "interpolation": interp}

    ins = {"image": image}
    fn = lambda w, i: dict(zip(("features", "pos_embed_resized"), encoder(w, i["image"], cfg)))
    o64, o32 = run_both(fn, W, ins)
    report("encoder_dino", o64, o32)
    write_case("encoder_dino", select(W, "encoder.model."), ins, o64, meta, config_text=CONFIG_DINO_TEXT)

    ins = {"image": image, "camera": canonical_source_camera_full()[None]}
    fn = lambda w, i: dict(zip(("features", "embedding", "tokens", "planes"),
                               forward_planes(w, i["image"], i["camera"], cfg)))
    o64, o32 = run_both(fn, W, ins)
    o64.pop("embedding"), o32.pop("embedding")
    report("full_dino", o64, o32)
    write_case("full_dino", W, ins, o64, meta, config_text=CONFIG_DINO_TEXT)

    T, H = cfg["triplane_dim"], cfg["triplane_high_res"]
    pts = rand("case/nerf_query_deep/points", (1, 500, 3), -1.05, 1.05)
    ins = {"planes": randn("case/nerf_query_deep/planes", (1, 3, T, H, H)), "points": pts}

    def fn(w, i):
        s, c = nerf_raw(w, i["planes"], i["points"])
        return {"sigma": density_act(s), "rgb": c}
    o64, o32 = run_both(fn, W, ins)
    report("nerf_query_deep", o64, o32)
    write_case("nerf_query_deep", select(W, "synthesizer."), ins, o64,
               {"nerf_layers": str(cfg["nerf_layers"]), "nerf_hidden_dim": str(cfg["nerf_hidden_dim"])},
               config_text=CONFIG_DINO_TEXT)


def check_render_margins(aux):
    """Assert the case has no knife edges: no sample just outside the box, no near-grazing ray."""
    p = aux["points"]
    m = p.abs().max(dim=-1).values
    bad = (m > 1 + 1e-9) & (m <= 1 + 1e-3)
    assert not bad.any(), f"{int(bad.sum())} samples within (1+1e-9, 1+1e-3] of the box"
    o, d = aux["ray_origins"], aux["ray_directions"]
    inv = 1.0 / d
    lo = torch.where(inv >= 0, torch.full_like(d, -1.0), torch.full_like(d, 1.0))
    gap = ((-lo - o) * inv).min(-1).values - ((lo - o) * inv).max(-1).values
    assert (gap.abs() > 1e-3).all(), "a ray nearly grazes the box"
    assert (d.abs() > 1e-3).all(), "a ray direction has a (near) zero component"


if __name__ == "__main__":
    main()
    import check_model_golden  # noqa: E402
    sys.exit(check_model_golden.main())
