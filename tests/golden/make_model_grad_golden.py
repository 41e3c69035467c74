#!/usr/bin/python3
"""Whole-model gradient golden data for LrmNative's backward (issue 6): a tiny trainable LRM, one loss, every
parameter's gradient from PyTorch autograd.

Run with Debian's PyTorch (python3-torch 1.13):  /usr/bin/python3 tests/golden/make_model_grad_golden.py
Writes tests/golden/model/tiny-train/{config.json, model.safetensors, gradients.safetensors}; the exact loss and
inputs are specified in tests/golden/model/tiny-train/README.md. The model code is make_model_golden.py's
reference (imported, not copied); only the training-mode render (fine depths without gradient) is defined here.

Weights and inputs are float32 (seeded by crc32(tag)); forward and backward run in float64 from exactly those
values and the results are rounded once to float32. The script also runs the same computation in float32 and
prints, per tensor, how far its gradients are from the float64 reference (a guide for the C# tolerance).
"""
import json
import math
import os
import sys

import torch

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import golden_io  # noqa: E402
import make_model_golden as ref  # noqa: E402

OUT_DIR = os.path.join(HERE, "model", "tiny-train")

# Small dims, every structural feature of OpenLRM v1.1: DINOv2 with registers and LayerScale, a position table
# that must be resized (5x5 -> 4x4, antialiased bicubic), separate q/k/v cross-attention projections (24 != 32).
CONFIG = {
    "camera_embed_dim": 16, "rendering_samples_per_ray": 12, "transformer_dim": 32,
    "transformer_layers": 2, "transformer_heads": 2, "triplane_low_res": 4, "triplane_high_res": 8,
    "triplane_dim": 4, "encoder_type": "dinov2", "encoder_model_name": "dinov2_vits14_reg",
    "encoder_feat_dim": 24, "encoder_freeze": False,
    "encoder_depth": 2, "encoder_heads": 2, "encoder_image_size": 28,
    "encoder_patch_size": 7, "encoder_pos_grid": 5, "nerf_hidden_dim": 16,
}
CONFIG_TEXT = json.dumps(CONFIG, indent=2) + "\n"

# The loss (README): (1/V) sum_v mean((rgb_v - target_v)^2) + MASK_WEIGHT (1/V) sum_v mean((opacity_v - alpha_v)^2)
#                   + TV_WEIGHT * 2 (mean dh^2 + mean dw^2) over the planes.
# TV_WEIGHT is 100x OpenLRM's 5e-4 so that the TV path's share of the plane gradient is well above fp32 noise.
TV_WEIGHT = 0.05
MASK_WEIGHT = 0.5
# Views: (azimuth deg, elevation deg, distance, render size r, patch p, patch x, patch y, background).
# View 0 renders the full 6x6 image (p = r); view 1 a 6x6 patch of a 16x16 render through the patch camera
# (fx' = fx r/p, cx' = (cx r - x)/p, likewise y), on a grey background.
VIEWS = [(-60.0, 25.0, 2.0, 6, 6, 0, 0, 1.0), (30.0, 10.0, 2.2, 16, 6, 5, 7, 0.5)]
FOCAL, PRINCIPAL = 0.75, 0.5


def render_camera(azim, elev, dist, r, p, x, y):
    cam = ref.look_at_render_camera(azim, elev, dist, FOCAL, PRINCIPAL).to(torch.float64)
    k = torch.tensor([[FOCAL * r / p, 0, (PRINCIPAL * r - x) / p],
                      [0, FOCAL * r / p, (PRINCIPAL * r - y) / p],
                      [0, 0, 1]], dtype=torch.float64)
    return torch.cat([cam[:16], k.reshape(-1)]).to(torch.float32)


def render_train(W, planes, camera, S, n_coarse, n_fine, bg, check_margins=False):
    """make_model_golden.render with the importance samples drawn without gradient (EG3D/OpenLRM run
    sample_importance under torch.no_grad): gradients flow through the NeRF values at the samples only."""
    o, d = ref.make_rays(camera, S)
    near, far, _ = ref.box_limits(o, d)
    steps = torch.arange(n_coarse, dtype=camera.dtype) / (n_coarse - 1)
    t_c = near[:, None] + steps[None, :] * (far - near)[:, None]
    sig_c, rgb_c, in_c, _ = ref.query(W, planes, o, d, t_c)
    with torch.no_grad():
        _, _, _, w_c = ref.march(sig_c, rgb_c, in_c, t_c, bg)
        t_f = ref.importance(t_c, w_c, n_fine)
    sig_f, rgb_f, in_f, p_f = ref.query(W, planes, o, d, t_f)
    if check_margins:   # no sample within a hair of the box, no grazing ray: fp32 and fp64 classify alike
        p_c = o[:, None, :] + t_c[..., None] * d[:, None, :]
        ref.check_render_margins({"points": torch.cat([p_c, p_f], 1).detach(), "ray_origins": o, "ray_directions": d})
    t_all = torch.cat([t_c, t_f], dim=1)
    order = torch.sort(t_all, dim=1).indices
    t_all = torch.gather(t_all, 1, order)
    sig_all = torch.gather(torch.cat([sig_c, sig_f], 1), 1, order)
    in_all = torch.gather(torch.cat([in_c, in_f], 1), 1, order)
    rgb_all = torch.gather(torch.cat([rgb_c, rgb_f], 1), 1, order[..., None].expand(-1, -1, 3))
    rgb, _, opacity, _ = ref.march(sig_all, rgb_all, in_all, t_all, bg)
    return rgb.reshape(S, S, 3), opacity.reshape(S, S, 1)


def tv(planes):
    dh = planes[..., 1:, :] - planes[..., :-1, :]
    dw = planes[..., :, 1:] - planes[..., :, :-1]
    return (dh * dh).mean() + (dw * dw).mean()


def run(W32, inputs, dtype):
    """Forward + loss + backward in dtype; returns (outputs, parameter grads, intermediate grads)."""
    W = {k: v.to(dtype).requires_grad_(k != "encoder.model.mask_token") for k, v in W32.items()}
    image, cam_src = inputs["image"].to(dtype), inputs["source_camera"].to(dtype)
    feats, _ = ref.encoder(W, image, CONFIG)
    emb = ref.camera_embedder(W, cam_src)
    tokens = ref.transformer(W, feats, emb, CONFIG)
    planes = ref.upsampler(W, tokens, CONFIG)
    for t in (feats, emb, tokens, planes):
        t.retain_grad()
    nc = nf = CONFIG["rendering_samples_per_ray"] // 2
    outs = {"features": feats, "camera_embedding": emb, "tokens": tokens, "planes": planes}
    mse, mask = 0.0, 0.0
    for v, (_, _, _, _, p, _, _, bg) in enumerate(VIEWS):
        rgb, opacity = render_train(W, planes, inputs[f"camera.{v}"].to(dtype)[0], p, nc, nf, bg,
                                    check_margins=dtype == torch.float64)
        mse = mse + ((rgb - inputs[f"target_rgb.{v}"].to(dtype)[0]) ** 2).mean()
        mask = mask + ((opacity - inputs[f"target_alpha.{v}"].to(dtype)[0]) ** 2).mean()
        outs[f"rgb.{v}"], outs[f"opacity.{v}"] = rgb[None], opacity[None]
    mse, mask = mse / len(VIEWS), mask / len(VIEWS)
    tv_value = tv(planes)
    loss = mse + MASK_WEIGHT * mask + TV_WEIGHT * tv_value
    loss.backward()
    losses = {"loss": loss, "loss_mse": mse, "loss_mask": mask, "loss_tv": tv_value}
    grads = {k: v.grad for k, v in W.items() if v.grad is not None}
    inner = {k: outs[k].grad for k in ("features", "camera_embedding", "tokens", "planes")}
    return {k: v.detach() for k, v in outs.items()}, losses, grads, inner


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    W = ref.make_weights(CONFIG, variant="tiny-train")
    S_img = CONFIG["encoder_image_size"]
    inputs = {"image": ref.rand("train/image", (1, 3, S_img, S_img)),
              "source_camera": ref.canonical_source_camera()[None]}
    for v, (az, el, dist, r, p, x, y, _) in enumerate(VIEWS):
        inputs[f"camera.{v}"] = render_camera(az, el, dist, r, p, x, y)[None]
        inputs[f"target_rgb.{v}"] = ref.rand(f"train/target_rgb/{v}", (1, p, p, 3))
        inputs[f"target_alpha.{v}"] = (ref.rand(f"train/target_alpha/{v}", (1, p, p, 1)) > 0.5).to(torch.float32)

    out64, loss64, grad64, inner64 = run(W, inputs, torch.float64)
    out32, loss32, grad32, inner32 = run(W, inputs, torch.float32)
    unused = sorted(set(W) - set(grad64))
    assert unused == ["encoder.model.mask_token"], unused

    worst = 0.0
    print("fp32 vs fp64 gradients, ||g32 - g64|| / ||g64|| per tensor (worst 8):")
    rows = []
    for k in sorted(grad64):
        n = grad64[k].norm().item()
        e = (grad32[k].to(torch.float64) - grad64[k]).norm().item() / max(n, 1e-300)
        rows.append((e, k, n))
        worst = max(worst, e)
    for e, k, n in sorted(rows, reverse=True)[:8]:
        print(f"  {e:.2e}  |g| {n:.3e}  {k}")
    print(f"  worst {worst:.2e}; losses fp64 {', '.join(f'{k} {v.item():.6f}' for k, v in loss64.items())}")
    zero = [k for e, k, n in rows if n == 0]
    assert not zero, f"parameters with an all-zero gradient: {zero}"

    with open(os.path.join(OUT_DIR, "config.json"), "w") as f:
        f.write(CONFIG_TEXT)
    sizes = {"config.json": len(CONFIG_TEXT)}
    sizes["model.safetensors"] = golden_io.write(
        os.path.join(OUT_DIR, "model.safetensors"), {k: ref.f32_entry(v) for k, v in W.items()},
        {"format": "pt", "config": CONFIG_TEXT})
    tensors = {"grad." + k: ref.f32_entry(v) for k, v in grad64.items()}
    tensors.update({"in." + k: ref.f32_entry(v) for k, v in inputs.items()})
    tensors.update({"out." + k: ref.f32_entry(v) for k, v in out64.items()})
    tensors.update({"grad_out." + k: ref.f32_entry(v) for k, v in inner64.items()})
    tensors.update({"out." + k: ("F64", [], v.detach().numpy().tobytes()) for k, v in loss64.items()})
    meta = {"module": "model_grad", "config": CONFIG_TEXT, "tv_weight": repr(TV_WEIGHT),
            "mask_weight": repr(MASK_WEIGHT), "views": str(len(VIEWS)),
            "backgrounds": ",".join(repr(v[7]) for v in VIEWS), "render_sizes": ",".join(str(v[4]) for v in VIEWS),
            "samples_coarse": str(CONFIG["rendering_samples_per_ray"] // 2),
            "samples_fine": str(CONFIG["rendering_samples_per_ray"] // 2),
            "inbox_tolerance": repr(ref.INBOX_TOL), "fp32_worst_relative": f"{worst:.3e}"}
    sizes["gradients.safetensors"] = golden_io.write(os.path.join(OUT_DIR, "gradients.safetensors"), tensors, meta)
    n_params = sum(v.numel() for k, v in W.items() if k != "encoder.model.mask_token")
    print(f"  {n_params} trainable parameters")
    for k, v in sizes.items():
        print(f"  tiny-train/{k:24s} {v:9d} bytes")
    assert sum(sizes.values()) < 2_000_000


if __name__ == "__main__":
    main()
