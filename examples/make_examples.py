#!/usr/bin/python3
"""Draws the bundled example inputs (RGBA PNGs with a transparent background).

Usage: /usr/bin/python3 examples/make_examples.py   (needs python3-numpy and python3-pil)
Deterministic: rerunning writes identical files.

sphere_on_box.png: a red sphere resting on a blue box, seen from the canonical LRM source camera
(on -Y, looking at the origin, z up), ray cast analytically with Lambertian shading.
meshes/table.obj: a small table (a top and four legs, five boxes with vertex colours), the mesh
examples/make_default_examples.sh renders with `lrm dataset render` (an object not made by `lrm dataset synth`).
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


def box(lo, hi):
    """The 8 corners and 12 outward-facing triangles of an axis-aligned box."""
    corners = [(x, y, z) for z in (lo[2], hi[2]) for y in (lo[1], hi[1]) for x in (lo[0], hi[0])]
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    triangles = [t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]
    return corners, triangles


def table_obj():
    """OBJ text of a table: a 1.6 x 1.0 top, 0.12 thick, on four 0.14-wide legs, about 1.1 tall."""
    parts = [((-0.8, -0.5, 0.38), (0.8, 0.5, 0.5), (0.62, 0.40, 0.22))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * 0.62, sy * 0.34
            parts.append(((x - 0.07, y - 0.07, -0.6), (x + 0.07, y + 0.07, 0.38), (0.35, 0.22, 0.12)))
    lines = ["# a table: examples/make_examples.py"]
    faces = []
    offset = 1
    for lo, hi, colour in parts:
        corners, triangles = box(lo, hi)
        lines += [f"v {x:.3f} {y:.3f} {z:.3f} {colour[0]:.2f} {colour[1]:.2f} {colour[2]:.2f}" for x, y, z in corners]
        faces += [f"f {a + offset} {b + offset} {c + offset}" for a, b, c in triangles]
        offset += len(corners)
    return "\n".join(lines + faces) + "\n"


def main():
    Image.fromarray(render(), "RGBA").save(os.path.join(HERE, "sphere_on_box.png"), optimize=False)
    os.makedirs(os.path.join(HERE, "meshes"), exist_ok=True)
    with open(os.path.join(HERE, "meshes", "table.obj"), "w") as f:
        f.write(table_obj())


if __name__ == "__main__":
    main()
