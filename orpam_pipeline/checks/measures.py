"""Measurements the checks and ``orpam inspect`` share, each on one 2-D frame ``(Y, X)``.

* :func:`comb_energy`: energy of the alternating-line (comb) residual between neighbouring columns
  or rows, with the filter of :mod:`orpam_pipeline.evaluate.artefact`. Bidirectional lines alternate
  between neighbouring *lines*, so the comb is strong across the line index and weak along the line.
* :func:`line_match`: how well the backward lines match the forward lines as stored and flipped
  along the line (peak normalised cross-correlation over small lags, which absorbs the
  bidirectional shift itself).
* :func:`top_count`: pixels sitting at a flat top (clipped signal).

Frames are cropped to at most :data:`MAX_SIDE` pixels a side (column parity kept), so memory
stays bounded whatever the frame size.
"""

from __future__ import annotations

import numpy as np

from orpam_pipeline.geometry import fixed_parity

MAX_SIDE = 1024
"""Frames are cropped to the central ``MAX_SIDE x MAX_SIDE`` pixels before measuring."""

MIN_COMB = 8
"""Fewest pixels along both axes for a comb measurement (the filter needs five, the ratio more)."""


def centre_crop(frame: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """The central part of ``frame`` as float64; the first column kept has the parity of column 0."""
    f = np.asarray(frame)
    h, w = f.shape
    y0 = max(0, (h - max_side) // 2)
    x0 = max(0, (w - max_side) // 2) // 2 * 2
    return np.asarray(f[y0 : y0 + max_side, x0 : x0 + max_side], dtype=np.float64)


def comb_energy(frame: np.ndarray, across: str = "columns") -> float:
    """Energy of the filtered comb between neighbouring columns (``across="columns"``) or rows.

    NaN when the frame is too small along either axis to tell.
    """
    f = centre_crop(frame)
    if min(f.shape) < MIN_COMB:
        return float("nan")
    from orpam_pipeline.evaluate.artefact import comb_image  # the evaluate package imports the pipeline

    if across == "rows":
        f = f.T
    elif across != "columns":
        raise ValueError(f"across must be 'columns' or 'rows', not {across!r}")
    comb = comb_image(f)
    return float(np.square(comb).sum())


def _peak_correlation(a: np.ndarray, b: np.ndarray, max_lag: int) -> float:
    """Peak over lags ``|k| <= max_lag`` along axis 0 of the NCC of ``a`` and ``b`` summed over columns."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    norm = float(np.sqrt(np.square(a).sum() * np.square(b).sum()))
    if not norm > 0:
        return float("nan")
    n = 2 * a.shape[0]
    cross = np.fft.irfft((np.fft.rfft(a, n, axis=0) * np.conj(np.fft.rfft(b, n, axis=0))).sum(axis=1), n)
    lags = np.fft.fftfreq(n, 1.0 / n)
    return float(cross[np.abs(lags) <= max_lag].max() / norm)


def line_match(frame: np.ndarray, first_line: str = "forward", max_lag: int = 24) -> tuple[float, float]:
    """``(stored, flipped)``: peak correlation of the backward lines with the forward lines as stored
    and flipped along the line (Y). NaN when a line set is constant or the frame too small."""
    f = centre_crop(frame)
    p = fixed_parity(first_line)
    fwd, bwd = f[:, p::2], f[:, 1 - p :: 2]
    n = min(fwd.shape[1], bwd.shape[1])
    if n < 1 or f.shape[0] < MIN_COMB:
        return float("nan"), float("nan")
    fwd, bwd = fwd[:, :n], bwd[:, :n]
    lag = int(min(max_lag, f.shape[0] // 4))
    return _peak_correlation(fwd, bwd, lag), _peak_correlation(fwd, bwd[::-1], lag)


def top_count(frame: np.ndarray, dtype_max: float | None = None) -> tuple[int, float]:
    """``(count, value)``: pixels at the dtype's maximum, else at a flat top (the frame's maximum shared
    by more than one pixel of a non-constant frame); ``(0, max)`` when there is no flat top."""
    f = np.asarray(frame)
    finite = f[np.isfinite(f)]
    if finite.size == 0:
        return 0, float("nan")
    top = float(finite.max())
    if dtype_max is not None and top >= dtype_max:
        return int((finite >= dtype_max).sum()), float(dtype_max)
    if top == float(finite.min()):
        return 0, top
    count = int((finite == top).sum())
    return (count if count > 1 else 0), top
