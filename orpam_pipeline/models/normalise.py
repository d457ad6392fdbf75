"""Intensity normalisation shared by training and inference of the learned methods.

Each (moving, fixed) frame pair is scaled by the fixed frame's robust range (0.5th to 99.5th
percentile), so the network always sees the target appearance in about [0, 1] whatever the
lab's units, and its output is mapped back with the same numbers.
"""

from __future__ import annotations

import numpy as np

LOW_PCT, HIGH_PCT = 0.5, 99.5


def frame_scale(fixed: np.ndarray) -> np.ndarray:
    """Per-frame ``(low, span)`` of ``fixed`` (t, Y, X) as a (t, 2) float32 array; span is never 0."""
    flat = fixed.reshape(fixed.shape[0], -1)
    lo, hi = np.percentile(flat, [LOW_PCT, HIGH_PCT], axis=1)
    span = hi - lo
    span = np.where(np.isfinite(span) & (span > 0), span, 1.0)
    return np.stack([lo, span], axis=1).astype(np.float32)


def normalise_pair(moving: np.ndarray, fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale both images of each frame by the fixed frame's robust range; returns (m, f, scale)."""
    scale = frame_scale(fixed)
    lo, span = scale[:, 0, None, None], scale[:, 1, None, None]
    m = ((moving - lo) / span).astype(np.float32)
    f = ((fixed - lo) / span).astype(np.float32)
    return m, f, scale


def denormalise(image: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalise_pair` for network outputs in the fixed image's units."""
    return (image * scale[:, 1, None, None] + scale[:, 0, None, None]).astype(np.float32)
