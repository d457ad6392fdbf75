"""Where to crop a frame for a zoomed figure panel: the window with the strongest comb artefact."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def choose_crop(image: ArrayLike, size: int = 48) -> tuple[int, int, int, int]:
    """Square ``(y0, y1, x0, x1)`` window with the most comb (column-alternation) energy.

    Comb energy of a column is ``|x[:, j] - (x[:, j-1] + x[:, j+1]) / 2|``: large where a line
    disagrees with its two neighbours, which is what a bidirectional offset does. Give it the
    UNREGISTERED merged frame. The window is clipped to the image; with no energy anywhere the
    centre is returned.
    """
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"choose_crop needs a non-empty 2-D image, got shape {arr.shape}")
    arr = np.where(np.isfinite(arr), arr, 0.0)
    h, w = arr.shape
    s = max(1, min(int(size), h, w))
    energy = np.zeros_like(arr)
    if w >= 3:
        energy[:, 1:-1] = np.abs(arr[:, 1:-1] - 0.5 * (arr[:, :-2] + arr[:, 2:]))
    integral = np.zeros((h + 1, w + 1))
    integral[1:, 1:] = energy.cumsum(axis=0).cumsum(axis=1)
    sums = integral[s:, s:] - integral[:-s, s:] - integral[s:, :-s] + integral[:-s, :-s]
    if not np.any(sums > 0):
        y0, x0 = (h - s) // 2, (w - s) // 2
    else:
        y0, x0 = (int(v) for v in np.unravel_index(np.argmax(sums), sums.shape))
    return y0, y0 + s, x0, x0 + s
