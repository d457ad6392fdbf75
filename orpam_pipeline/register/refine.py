"""Test-time refinement of a displacement along Y: a few Gauss-Newton steps on the line profile.

Given the backward lines ``even`` (t, Y, C), the forward lines matched to them ``odd`` (t, Y, C) and a
displacement ``d`` (t, Y, C), each step resamples the backward lines at ``y + d``, fits one gain and
offset per frame (least squares), and solves for the correction ``δ(y)`` shared by every line of a
row that best explains the residual to first order:

    δ(y) = - Σ_x a·g·r / (Σ_x (a·g)² + ε),   r = a·warp(even, d) + b - odd,   g = ∂warp/∂y,

with both sums smoothed along Y by a Gaussian of ``smooth_rows`` rows (the line-profile prior: the
offset between the two scan directions varies slowly along the line) and the step bounded to ±1 px.
The correction is the same for every line of a row, so block jitter that a field carries is kept.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from orpam_pipeline.register.phase import resample_columns

MAX_STEP = 1.0


def _gain_offset(warped: np.ndarray, centred_fixed: np.ndarray, fixed_mean: np.ndarray,
                 scratch: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the least-squares gain (at least 1e-3) and offset from ``warped`` to the fixed lines, given
    as ``centred_fixed`` (float64, their frame mean ``fixed_mean`` taken off); ``scratch``: two float64 arrays of
    ``warped``'s shape to work in."""
    centred, product = scratch
    wm = warped.mean(axis=(1, 2), keepdims=True, dtype=np.float64)
    np.subtract(warped, wm, out=centred)
    cov = np.multiply(centred, centred_fixed, out=product).mean(axis=(1, 2), keepdims=True)
    var = np.power(centred, 2, out=product).mean(axis=(1, 2), keepdims=True)
    a = np.maximum(cov / np.maximum(var, 1e-12), 1e-3)
    return a, fixed_mean - a * wm


def _basis(height: int, degree: int) -> np.ndarray:
    u = np.linspace(-1.0, 1.0, height)
    return np.polynomial.legendre.legvander(u, degree)


def _polynomial_step(num: np.ndarray, den: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Per frame, the correction ``basis @ c`` minimising ``Σ_y den·δ² + 2·num·δ`` (num, den: (t, Y))."""
    a = np.einsum("ty,yk,yl->tkl", den, basis, basis)
    b = -np.einsum("ty,yk->tk", num, basis)
    a += np.eye(basis.shape[1])[None] * (1e-9 * np.trace(a, axis1=1, axis2=2)[:, None, None] + 1e-12)
    return np.einsum("yk,tk->ty", basis, np.linalg.solve(a, b[..., None])[..., 0])


def refine_rows(even: np.ndarray, odd: np.ndarray, displacement: np.ndarray, iterations: int,
                smooth_rows: float = 4.0, degree: int | None = None) -> np.ndarray:  # fmt: skip
    """``displacement`` (t, Y, C) after ``iterations`` Gauss-Newton steps (float32 images, float64 sums).

    With ``degree`` the correction of each step is a polynomial of that degree in Y fitted to every row
    at once (a stronger prior than the Gaussian smoothing, for profiles the network already shaped).
    """
    e = np.ascontiguousarray(even, dtype=np.float32)
    f = np.asarray(odd, dtype=np.float32)
    d = np.array(displacement, dtype=np.float32)
    shape = d.shape
    if d.ndim == 3 and (d == d[..., :1]).all():  # a profile: one position per row, resampled as whole rows
        d = np.ascontiguousarray(d[..., :1])
    rows = np.arange(e.shape[1], dtype=np.float32)[None, :, None]
    slope = np.gradient(e, axis=1).astype(np.float32, copy=False)
    scale = np.maximum(f.std(axis=(1, 2), dtype=np.float64), 1e-12)[:, None]  # per frame: blocks of any size agree
    basis = None if degree is None else _basis(e.shape[1], degree)
    fixed_mean = f.mean(axis=(1, 2), keepdims=True, dtype=np.float64)
    centred_fixed = f - fixed_mean
    scratch = (np.empty(e.shape), np.empty(e.shape))
    r, j = np.empty(e.shape, dtype=np.float32), np.empty(e.shape, dtype=np.float32)
    for _ in range(int(iterations)):
        positions = rows + d
        warped = resample_columns(e, positions)
        grad = resample_columns(slope, positions)
        a, b = _gain_offset(warped, centred_fixed, fixed_mean, scratch)
        work = np.multiply(a, warped, out=scratch[0])
        work += b
        work -= f
        np.copyto(r, work, casting="same_kind")
        np.copyto(j, np.multiply(a, grad, out=scratch[0]), casting="same_kind")
        num = np.einsum("tyc,tyc->ty", j, r, dtype=np.float64)
        den = np.einsum("tyc,tyc->ty", j, j, dtype=np.float64) + 1e-6 * scale**2 * e.shape[2]
        if basis is not None:
            step = _polynomial_step(num, den, basis)
        else:
            step = -gaussian_filter1d(num, smooth_rows, axis=1, mode="nearest") / gaussian_filter1d(
                den, smooth_rows, axis=1, mode="nearest")
        d = d + np.clip(step, -MAX_STEP, MAX_STEP).astype(np.float32)[..., None]
    return np.ascontiguousarray(np.broadcast_to(d, shape))
