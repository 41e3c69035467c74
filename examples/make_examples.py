#!/usr/bin/python3
"""Draws the bundled example inputs (RGBA PNGs with a transparent background).

Usage: /usr/bin/python3 examples/make_examples.py   (needs python3-numpy and python3-pil)
Deterministic: rerunning writes identical files.

sphere_on_box.png: a red sphere resting on a blue box, seen from the canonical LRM source camera
(on -Y, looking at the origin, z up), ray cast analytically with Lambertian shading.
"""
import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def render(size=256):
    # Camera at (0, -2, 0) looking along +Y, up +Z; normalised focal 0.75 (OpenLRM's intrinsics).
    f = 0.75 * size
    j, i = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    x = (j - size / 2) / f
    z = -(i - size / 2) / f
    d = np.stack([x, np.ones_like(x), z], -1)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    o = np.array([0.0, -2.0, 0.0])
    t_best = np.full((size, size), np.inf)
    normal = np.zeros((size, size, 3))
    albedo = np.zeros((size, size, 3))

    # Sphere: centre (0, 0, 0.25), radius 0.35.
    c, r = np.array([0.0, 0.0, 0.25]), 0.35
    oc = o - c
    b = (d * oc).sum(-1)
    disc = b * b - (oc @ oc - r * r)
    t = np.where(disc > 0, -b - np.sqrt(np.maximum(disc, 0)), np.inf)
    hit = (t > 0) & (t < t_best)
    p = o + d * t[..., None]
    t_best[hit] = t[hit]
    normal[hit] = ((p - c) / r)[hit]
    albedo[hit] = [0.85, 0.2, 0.15]

    # Box: [-0.45, 0.45] x [-0.45, 0.45] x [-0.5, -0.1] (slab method).
    lo, hi = np.array([-0.45, -0.45, -0.5]), np.array([0.45, 0.45, -0.1])
    with np.errstate(divide="ignore", invalid="ignore"):
        t0 = (lo - o) / d
        t1 = (hi - o) / d
    tmin = np.minimum(t0, t1).max(-1)
    tmax = np.maximum(t0, t1).min(-1)
    hit = (tmax >= tmin) & (tmin > 0) & (tmin < t_best)
    p = o + d * tmin[..., None]
    face = np.argmax(np.stack([np.minimum(np.abs(p[..., k] - lo[k]), np.abs(p[..., k] - hi[k])) < 1e-6 for k in range(3)], -1), -1)
    n = np.zeros_like(p)
    for k in range(3):
        sign = np.where(np.abs(p[..., k] - hi[k]) < np.abs(p[..., k] - lo[k]), 1.0, -1.0)
        n[..., k] = np.where(face == k, sign, 0.0)
    t_best[hit] = tmin[hit]
    normal[hit] = n[hit]
    albedo[hit] = [0.2, 0.35, 0.8]

    light = np.array([-0.4, -0.7, 0.6])
    light /= np.linalg.norm(light)
    shade = 0.25 + 0.75 * np.clip((normal * light).sum(-1), 0, 1)
    rgb = np.clip(albedo * shade[..., None], 0, 1)
    alpha = np.isfinite(t_best).astype(np.float64)
    rgba = np.concatenate([rgb * alpha[..., None], alpha[..., None]], -1)
    return (rgba * 255 + 0.5).astype(np.uint8)


def main():
    Image.fromarray(render(), "RGBA").save(os.path.join(HERE, "sphere_on_box.png"), optimize=False)


if __name__ == "__main__":
    main()
