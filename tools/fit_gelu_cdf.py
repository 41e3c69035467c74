#!/usr/bin/env python3
"""Fits the polynomial of native/src/fastmath.hpp's normal_cdf (the CPU GELU) and prints its errors.

erfc(z) = exp(-z^2) * t * Q(t), t = 1 / (1 + A z): Q (degree DEG) by iteratively re-weighted least squares on the
relative error of erfcx(z) / t over z in [0, 10] (Chebyshev-spaced in t). Then the float32 evaluation, simulated
step by step as the C++ does it, against float64 truth: Phi(x), GELU(x) = x Phi(x) and GELU'(x) = Phi + x phi.
Needs numpy and scipy (Debian: python3-scipy). Usage: /usr/bin/python3 tools/fit_gelu_cdf.py
"""
import numpy as np
from scipy.special import erfcx, ndtr

A, DEG, ZMAX = 0.3, 8, 10.0


def fit(a=A, deg=DEG, zmax=ZMAX, n=4000):
    tmin = 1 / (1 + a * zmax)
    t = tmin + (1 - tmin) * (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n)))
    z = (1 / t - 1) / a
    target = erfcx(z) / t
    w = np.ones_like(t)
    for _ in range(30):
        v = np.vander(t, deg + 1, increasing=True)
        c, *_ = np.linalg.lstsq(v * (w / target)[:, None], w, rcond=None)
        err = (v @ c - target) / target
        w = w * (1 + 50 * np.abs(err) / np.abs(err).max())
        w /= w.mean()
    return c, np.abs(err).max()


def main():
    c, fit_error = fit()
    f32 = np.float32
    cf = [f32(v) for v in c]
    print(f"Q(t), t = 1/(1 + {A} z), degree {DEG}: relative fit error {fit_error:.3g}")
    print("coefficients, t^0 first (float):")
    for v in cf:
        print(f"    {float(v)!r}f")
    x = np.concatenate([np.linspace(-12, 12, 2000001), -np.logspace(-8, 1.2, 20000), np.logspace(-8, 1.2, 20000)]).astype(f32)
    xd = x.astype(np.float64)
    z = (np.abs(x) * f32(0.70710678118654752)).astype(f32)
    t = (f32(1) / (f32(1) + f32(A) * z)).astype(f32)
    q = cf[-1]
    for v in cf[-2::-1]:
        q = (q * t + v).astype(f32)
    e = np.exp2((-(z * z) * f32(1.4426950408889634)).astype(f32).astype(np.float64)).astype(f32)
    half = (f32(0.5) * e * (t * q)).astype(f32)
    cdf = np.where(x >= 0, f32(1) - half, half).astype(f32)
    gelu = (x * cdf).astype(f32)
    dgelu = (cdf + x * (e * f32(0.3989422804014327))).astype(f32)
    true_cdf = ndtr(xd)
    true_gelu = xd * true_cdf
    true_d = true_cdf + xd * np.exp(-xd * xd / 2) / np.sqrt(2 * np.pi)
    for low in (-3, -5, -8, -12):
        m = (xd > low) & (np.abs(true_gelu) > 1e-30)
        rel = np.max(np.abs(gelu[m] - true_gelu[m]) / np.abs(true_gelu[m]))
        rel_cdf = np.max(np.abs(cdf[m] - true_cdf[m]) / true_cdf[m])
        print(f"x > {low:4d}: max relative error Phi {rel_cdf:.2e}, GELU {rel:.2e}")
    print(f"GELU' max absolute error {np.max(np.abs(dgelu - true_d)):.2e}")


if __name__ == "__main__":
    main()
