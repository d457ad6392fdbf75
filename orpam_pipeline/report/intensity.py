"""The grey-level display window of an image: percentiles of its finite values."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def display_window(image: ArrayLike, low_pct: float = 0.5, high_pct: float = 99.5) -> tuple[float, float]:
    """Percentile window of the finite values; ``(0, 1)`` when there are none."""
    arr = np.asarray(image, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [low_pct, high_pct])
    return float(lo), float(hi)
