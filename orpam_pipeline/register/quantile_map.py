"""Intensity harmonisation by quantiles: per-row quantiles and the monotone map between two quantile sets.

Both give numpy's own numbers bit for bit (``np.quantile``, ``np.interp``) in a fraction of its time,
so methods that harmonise (``phase``, ``eoir``) keep their pinned outputs.
"""

from __future__ import annotations

import numpy as np

LOOKUP_BINS = 1024
"""Equal bins over the knots' range in which :func:`interp_increasing` looks up each value's segment."""
MAX_KNOTS_PER_BIN = 4
"""More knots than this in one bin (knots crowded far from the rest): ``np.interp`` itself is faster."""


def row_quantiles(rows: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """``np.quantile(rows[i], probs)`` (linear method) of every row at once, bit for bit, as float64 ``(t, q)``.

    ``rows`` is ``(t, ...)``: each row is everything after the first axis (a frame). One sort per row
    replaces numpy's per-row partition at 130 order statistics (about 20x faster); the interpolation
    repeats numpy's own arithmetic (``(n - 1) * q``, its two-sided lerp), so the numbers are identical.
    The rows are sorted in the one copy that flattening them makes (a strided view of lines already
    needs it). Rows holding NaN or infinities are left to ``np.quantile``.
    """
    rows = np.asarray(rows)
    ordered = rows.reshape(rows.shape[0], -1)
    if np.may_share_memory(ordered, rows):
        ordered = ordered.copy()
    ordered.sort(axis=1)
    n = ordered.shape[1]
    virtual = (n - 1) * np.asarray(probs, dtype=np.float64)
    below = np.floor(virtual)
    gamma = virtual - below
    lo = below.astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    a, b = ordered[:, lo], ordered[:, hi]
    with np.errstate(invalid="ignore"):  # rows with infinities are redone below
        diff = b - a
        out = np.add(a, diff * gamma)
        np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5, casting="unsafe")
    out = np.asarray(out, dtype=np.float64)
    # -inf sorts first, +inf and NaN last: a row is finite where both its ends are
    for i in np.flatnonzero(~(np.isfinite(ordered[:, 0]) & np.isfinite(ordered[:, -1]))):
        out[i] = np.quantile(rows[i], probs)
    return out


def monotone_map(values: np.ndarray, src_q: np.ndarray, dst_q: np.ndarray) -> np.ndarray:
    """Piecewise-linear map sending quantiles ``src_q`` to ``dst_q``, extended linearly at both ends."""
    xp = np.maximum.accumulate(np.asarray(src_q, dtype=np.float64))
    fp = np.maximum.accumulate(np.asarray(dst_q, dtype=np.float64))
    span = xp[-1] - xp[0]
    if not np.isfinite(span) or span <= 1e-12 * max(1.0, abs(xp[-1])):
        return (values + (np.median(fp) - np.median(xp))).astype(np.float32)
    k = max(2, xp.size // 8)
    # A tail whose quantiles tie (clipped or saturated data) has no slope of its own; the spread
    # added below would make it enormous and send resampling overshoot to absurd values.
    overall = max((fp[-1] - fp[0]) / span, 0.0)
    tied_lo = xp[k] - xp[0] <= 1e-6 * span
    tied_hi = xp[-1] - xp[-1 - k] <= 1e-6 * span
    xp = xp + np.arange(xp.size) * (span * 1e-9)
    lo_slope = overall if tied_lo else max((fp[k] - fp[0]) / (xp[k] - xp[0]), 0.0)
    hi_slope = overall if tied_hi else max((fp[-1] - fp[-1 - k]) / (xp[-1] - xp[-1 - k]), 0.0)
    x = np.asarray(values, dtype=np.float64)
    out = interp_increasing(x, xp, fp)
    below, above = x < xp[0], x > xp[-1]
    out[below] = fp[0] + lo_slope * (x[below] - xp[0])
    out[above] = fp[-1] + hi_slope * (x[above] - xp[-1])
    return out.astype(np.float32)


def interp_increasing(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp(x, xp, fp)`` for strictly increasing ``xp``, bit for bit, about twice as fast on a frame.

    ``np.interp`` bisects the knots for every value. Here each value's segment comes from a table of
    ``LOOKUP_BINS`` equal bins over the knots' range, moved up past the few knots inside its bin, and
    the segment is evaluated with numpy's own expression (``slope * (x - xp[j]) + fp[j]``, slopes as
    ``np.diff(fp) / np.diff(xp)``). Values on a knot, outside the knots, non-finite or giving NaN are
    left to ``np.interp``, as is everything when the knots crowd into a few bins.
    """
    x = np.asarray(x, dtype=np.float64)
    n = xp.size
    lo, hi = float(xp[0]), float(xp[-1])
    if n < 3 or not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        return np.interp(x, xp, fp)
    scale = LOOKUP_BINS / (hi - lo)
    table = np.searchsorted(xp, lo + np.arange(LOOKUP_BINS + 1) / scale, side="right") - 1
    np.clip(table, 0, n - 2, out=table)
    if np.diff(table).max() > MAX_KNOTS_PER_BIN:
        return np.interp(x, xp, fp)
    position = x - lo
    position *= scale
    np.fmax(position, 0, out=position)  # NaN becomes bin 0; such values are redone below
    np.fmin(position, LOOKUP_BINS - 1, out=position)
    j = table[position.astype(np.intp)]
    for _ in range(MAX_KNOTS_PER_BIN + 1):  # a bin start rounded past a knot costs one more step
        up = x >= xp[j + 1]
        up &= j < n - 2
        if not up.any():
            break
        j += up
    base = xp[j]
    slopes = (fp[1:] - fp[:-1]) / (xp[1:] - xp[:-1])
    with np.errstate(invalid="ignore", over="ignore"):
        out = x - base
        out *= slopes[j]
        out += fp[j]
    redo = ~(base < x)
    redo |= ~(x < hi)
    redo |= ~(xp[j + 1] > x)
    redo |= np.isnan(out)
    if redo.any():
        out[redo] = np.interp(x[redo], xp, fp)
    return out
