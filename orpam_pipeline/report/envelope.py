"""Long per-frame series reduced to bins (mean, min, max) so a plot of thousands of frames stays readable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

MAX_POINTS = 400
"""Series up to this length are drawn point by point; longer ones as an envelope of :data:`BINS` bins."""
BINS = 200


@dataclass(frozen=True)
class Envelope:
    """Per-bin ``mean``, ``low`` (min) and ``high`` (max) at bin centres ``x`` (in element indices)."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def bin_edges(n: int, bins: int) -> np.ndarray:
    """``bins + 1`` integer edges splitting ``range(n)`` into nearly equal, non-empty runs."""
    bins = max(1, min(int(bins), int(n)))
    return np.linspace(0, n, bins + 1).round().astype(np.int64)


def envelope(values: ArrayLike, bins: int = BINS) -> Envelope:
    """NaN-aware mean, min and max of ``values`` per bin of consecutive elements (all-NaN bins give NaN).

    One ``reduceat`` per statistic over all bins (the bins are runs of consecutive elements, never empty).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        empty = np.zeros(0)
        return Envelope(empty, empty, empty, empty)
    edges = bin_edges(v.size, bins)
    starts, stops = edges[:-1], edges[1:]
    finite = np.isfinite(v)
    count = np.add.reduceat(finite.astype(np.int64), starts)
    total = np.add.reduceat(np.where(finite, v, 0.0), starts)
    kept = np.where(finite, v, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    return Envelope((starts + stops - 1) / 2.0, mean, np.fmin.reduceat(kept, starts), np.fmax.reduceat(kept, starts))


def needs_envelope(n: int) -> bool:
    """Whether a series of ``n`` points is drawn as an envelope rather than point by point."""
    return n > MAX_POINTS
