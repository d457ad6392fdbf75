"""No-reference interleave-artefact score: how much coherent column alternation a merged frame shows.

A misregistered backward line disagrees with its two forward neighbours in the same way all along a
vessel, so the column-alternating residual of the merged frame

    r[:, j] = m[:, j] - (m[:, j-1] + m[:, j+1]) / 2,    c[:, j] = (-1)^j r[:, j]

is a smooth image after demodulation by ``(-1)^j``: it is (minus) the error of the backward lines.
The scene's own curvature along X makes ``r`` smooth and therefore ``c`` alternate, and pixel noise
is white; a ``[1, 2, 1] / 4`` filter along X (zero gain at the alternation frequency) and a small
Gaussian along Y (the fast axis, along which the error is coherent) keep the error and remove most
of both. The score is the energy of the filtered comb divided by the gradient energy of the forward
lines, which no method changes, so scores of different methods on the same frame are comparable.
"""

from __future__ import annotations

import numpy as np

from orpam_pipeline.geometry import FirstLine, fixed_parity

COMB_SIGMA_Y = 1.0
"""Gaussian smoothing of the demodulated comb along the fast axis (px)."""


def comb_image(merged: np.ndarray, first_line: FirstLine = "forward", sigma_y: float = COMB_SIGMA_Y) -> np.ndarray:
    """Filtered demodulated comb ``(T, Y, X-2)`` of merged frames ``(T, Y, X)`` (or one ``(Y, X)``)."""
    m = np.asarray(merged, dtype=np.float64)
    if m.ndim == 2:
        m = m[None]
    if m.shape[-1] < 5:
        raise ValueError(f"the artefact score needs at least 5 columns, got {m.shape[-1]}")
    resid = m[..., 1:-1] - 0.5 * (m[..., :-2] + m[..., 2:])
    sign = np.where((np.arange(1, m.shape[-1] - 1) + fixed_parity(first_line)) % 2 == 0, 1.0, -1.0)
    comb = resid * sign
    comb = 0.25 * comb[..., :-2] + 0.5 * comb[..., 1:-1] + 0.25 * comb[..., 2:]
    return smooth_along_y(comb, sigma_y) if sigma_y > 0 else comb


def smooth_along_y(stack: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of ``(..., Y, X)`` along Y, edges extended: ``scipy.ndimage.gaussian_filter1d(stack,
    sigma, axis=-2, mode="nearest")`` (taps out to 4 σ), here in numpy because importing ``scipy.ndimage`` takes a
    quarter of a CPU-second, which every report would pay for this one small filter."""
    radius = int(4.0 * float(sigma) + 0.5)
    taps = np.exp(-0.5 / (sigma * sigma) * np.arange(-radius, radius + 1) ** 2)
    taps /= taps.sum()
    n = stack.shape[-2]
    padded = np.pad(stack, [(0, 0)] * (stack.ndim - 2) + [(radius, radius), (0, 0)], mode="edge")
    out = taps[radius] * padded[..., radius : radius + n, :]
    pair = np.empty_like(out)
    for k in range(1, radius + 1):  # the taps are symmetric: rows k above and below share one
        np.add(padded[..., radius - k : radius - k + n, :], padded[..., radius + k : radius + k + n, :], out=pair)
        pair *= taps[radius + k]
        out += pair
    return out


def structure_energy(odd: np.ndarray) -> np.ndarray:
    """Per-frame sum of squared finite-difference gradients of the forward lines (in merged pixels)."""
    o = np.asarray(odd, dtype=np.float64)
    if o.ndim == 2:
        o = o[None]
    gy = np.diff(o, axis=-2)
    gx = np.diff(o, axis=-1) / 2.0
    return (gy**2).sum(axis=(-2, -1)) + (gx**2).sum(axis=(-2, -1))


def artefact_scores(
    merged: np.ndarray, odd: np.ndarray, first_line: FirstLine = "forward", sigma_y: float = COMB_SIGMA_Y
) -> np.ndarray:
    """Interleave-artefact score per frame: comb energy / forward-line gradient energy (NaN if flat)."""
    comb = comb_image(merged, first_line, sigma_y)
    energy = (comb**2).sum(axis=(-2, -1))
    structure = structure_energy(odd)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = energy / structure
    out[~(structure > 0)] = np.nan
    return out
