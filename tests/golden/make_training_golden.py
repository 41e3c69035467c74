#!/usr/bin/python3
"""PyTorch golden references for LrmNative's training pieces (issue 6): AdamW + schedule + clipping, losses.

Run with Debian's PyTorch (python3-torch 1.13):  /usr/bin/python3 tests/golden/make_training_golden.py
Writes tests/golden/training/{adamw,losses}.safetensors (format: tests/golden/README.md; contents:
tests/golden/training/README.md). Deterministic: every tensor comes from a torch.Generator seeded by
crc32(tag), torch runs single-threaded; reruns are byte-identical.

adamw: torch.optim.AdamW itself (float32, the reference the C# optimizer must follow) with two parameter
groups (weight decay 0.05 / 0), torch.nn.utils.clip_grad_norm_(max_norm=1) before every step and the
learning rate set per step from the cosine schedule with linear warm-up (formula in the README).
losses: computed in float64 from the float32 inputs with autograd, rounded once to float32.
"""
import math
import os
import sys
import zlib

import torch

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import golden_io  # noqa: E402

OUT_DIR = os.path.join(HERE, "training")

# AdamW settings (LRM appendix B) and a short schedule that has both a warm-up and a cosine phase.
LR, BETA1, BETA2, EPS, WEIGHT_DECAY, MAX_NORM = 4e-4, 0.9, 0.95, 1e-8, 0.05, 1.0
STEPS, WARMUP, MIN_LR = 12, 3, 4e-5

# (name, shape, decays): real checkpoint names (bindings/LrmNative/Model/LrmWeightNames.cs), small shapes.
# Decay rule: tensors of rank >= 2 decay; rank-1 tensors (biases, LayerNorm/ModLN affine, LayerScale) do not.
PARAMS = [
    ("encoder.model.blocks.0.attn.qkv.weight", (12, 4), True),
    ("encoder.model.blocks.0.attn.qkv.bias", (12,), False),
    ("encoder.model.blocks.0.norm1.weight", (4,), False),
    ("encoder.model.blocks.0.ls1.gamma", (4,), False),
    ("transformer.layers.0.norm1.mlp.1.weight", (8, 3), True),
    ("transformer.layers.0.norm1.norm.bias", (4,), False),
    ("pos_embed", (1, 6, 4), True),
    ("upsampler.weight", (4, 2, 2, 2), True),
]
# Gradient magnitude per step: some steps are clipped (global norm > 1), some are not.
GRAD_SCALES = [0.05, 3.0, 0.2, 8.0, 0.01, 1.5, 0.3, 0.02, 5.0, 0.5, 0.1, 2.0]


def gen(tag):
    g = torch.Generator()
    g.manual_seed(zlib.crc32(tag.encode("utf-8")))
    return g


def randn(tag, shape, std=1.0, mean=0.0):
    return (torch.randn(*shape, generator=gen(tag), dtype=torch.float32) * std + mean).to(torch.float32)


def rand(tag, shape, lo=0.0, hi=1.0):
    return (torch.rand(*shape, generator=gen(tag), dtype=torch.float32) * (hi - lo) + lo).to(torch.float32)


def f32(t):
    t = t.detach().to(torch.float32).contiguous()
    return ("F32", list(t.shape), t.numpy().tobytes())


def cosine_lr(step, base=LR, warmup=WARMUP, total=STEPS, minimum=MIN_LR):
    """Learning rate of update number step = 1..total (see tests/golden/training/README.md)."""
    if warmup > 0 and step <= warmup:
        return base * step / warmup
    progress = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
    return minimum + (base - minimum) * 0.5 * (1.0 + math.cos(math.pi * progress))


def adamw_case():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(randn(f"adamw/param/{n}", s, 0.5)) for n, s, _ in PARAMS]
    initial = [p.detach().clone() for p in params]
    decay = [p for p, (_, _, d) in zip(params, PARAMS) if d]
    no_decay = [p for p, (_, _, d) in zip(params, PARAMS) if not d]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(BETA1, BETA2), eps=EPS)
    tensors = {}
    norms, lrs = [], []
    for (n, _, _), p in zip(PARAMS, initial):
        tensors[f"param.{n}"] = f32(p)
    for step in range(1, STEPS + 1):
        for (n, s, _), p in zip(PARAMS, params):
            g = randn(f"adamw/grad/{step}/{n}", s, GRAD_SCALES[step - 1] / math.sqrt(sum(math.prod(q[1]) for q in PARAMS)))
            tensors[f"grad.{step}.{n}"] = f32(g)
            p.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(params, MAX_NORM)
        lr = cosine_lr(step)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        norms.append(float(total))
        lrs.append(lr)
        for (n, _, _), p in zip(PARAMS, params):
            tensors[f"out.{step}.{n}"] = f32(p)
    for (n, _, _), p in zip(PARAMS, params):
        state = opt.state[p]
        tensors[f"out.exp_avg.{n}"] = f32(state["exp_avg"])
        tensors[f"out.exp_avg_sq.{n}"] = f32(state["exp_avg_sq"])
    tensors["out.total_norm"] = f32(torch.tensor(norms, dtype=torch.float32))
    tensors["out.lr"] = ("F64", [STEPS], torch.tensor(lrs, dtype=torch.float64).numpy().tobytes())
    clipped = sum(1 for x in norms if x > MAX_NORM)
    print(f"adamw: {STEPS} steps, {clipped} clipped, norms {min(norms):.3g}..{max(norms):.3g}")
    meta = {"steps": str(STEPS), "lr": repr(LR), "beta1": repr(BETA1), "beta2": repr(BETA2), "eps": repr(EPS),
            "weight_decay": repr(WEIGHT_DECAY), "max_norm": repr(MAX_NORM), "warmup": str(WARMUP),
            "min_lr": repr(MIN_LR), "names": ",".join(n for n, _, _ in PARAMS),
            "decay_names": ",".join(n for n, _, d in PARAMS if d)}
    return golden_io.write(os.path.join(OUT_DIR, "adamw.safetensors"), tensors, meta)


def tv_loss(planes):
    """OpenLRM's squared total variation of planes (..., H, W): mean Δh² + mean Δw²."""
    dh = planes[..., 1:, :] - planes[..., :-1, :]
    dw = planes[..., :, 1:] - planes[..., :, :-1]
    return (dh * dh).mean() + (dw * dw).mean()


def losses_case():
    tensors = {}
    cases = {
        "mse": (randn("loss/mse/pred", (2, 5, 7, 3), 0.3, 0.5), rand("loss/mse/target", (2, 5, 7, 3)),
                lambda a, b: ((a - b) ** 2).mean()),
        "mask": (rand("loss/mask/opacity", (2, 5, 7, 1)), (rand("loss/mask/alpha", (2, 5, 7, 1)) > 0.5).to(torch.float32),
                 lambda a, b: ((a - b) ** 2).mean()),
    }
    for name, (x, y, fn) in cases.items():
        x64 = x.to(torch.float64).requires_grad_(True)
        loss = fn(x64, y.to(torch.float64))
        loss.backward()
        tensors[f"{name}.input"] = f32(x)
        tensors[f"{name}.target"] = f32(y)
        tensors[f"{name}.loss"] = ("F64", [], loss.detach().numpy().tobytes())
        tensors[f"{name}.grad"] = f32(x64.grad)
    planes = randn("loss/tv/planes", (2, 3, 4, 6, 5))
    p64 = planes.to(torch.float64).requires_grad_(True)
    loss = tv_loss(p64)
    loss.backward()
    tensors["tv.input"] = f32(planes)
    tensors["tv.loss"] = ("F64", [], loss.detach().numpy().tobytes())
    tensors["tv.grad"] = f32(p64.grad)
    return golden_io.write(os.path.join(OUT_DIR, "losses.safetensors"), tensors, {"module": "losses"})


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    sizes = {"adamw.safetensors": adamw_case(), "losses.safetensors": losses_case()}
    for k, v in sizes.items():
        print(f"  {k:24s} {v:8d} bytes")


if __name__ == "__main__":
    main()
