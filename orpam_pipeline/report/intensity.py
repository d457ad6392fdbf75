"""Display windows and the mapping of float images to uint8 grey levels."""

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


def to_uint8(image: ArrayLike, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Map ``[lo, hi]`` to ``[0, 255]`` (default: the 0.5/99.5 percentiles), clipping outside.

    Non-finite pixels become 0. A window of zero width gives an all-zero image, so a constant
    frame shows as black rather than failing.
    """
    arr = np.asarray(image, dtype=np.float64)
    if lo is None or hi is None:
        auto_lo, auto_hi = display_window(arr)
        lo = auto_lo if lo is None else lo
        hi = auto_hi if hi is None else hi
    out = np.zeros(arr.shape, dtype=np.uint8)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return out
    finite = np.isfinite(arr)
    scaled = (arr[finite] - lo) * (255.0 / (hi - lo))
    out[finite] = np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)
    return out
