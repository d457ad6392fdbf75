"""Temporal stability metrics (docs/metrics.md): consecutive-frame NCC, TNCC and TNCG.

TNCC is the mean NCC of consecutive frame pairs; TNCG is the mean absolute gap between the
pair NCCs of the odd-only sequence (the physical reference) and of the merged sequence.
Pairs with an undefined NCC (a constant frame) are NaN and are left out of the means
(``nanmean``); a mean over no defined pair is NaN.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike

from .image import _single, consecutive_ncc, ncc_frames


def pair_ncc(stack: ArrayLike) -> np.ndarray:
    """NCC of frames ``(t, t+1)`` within a ``(T, Y, X)`` stack: ``T - 1`` values."""
    arr = np.asarray(stack)
    if arr.ndim != 3:
        raise ValueError(f"stack must be 3-D (T, Y, X), got shape {arr.shape}")
    if arr.shape[0] < 2:
        return np.empty(0, dtype=np.float64)
    return consecutive_ncc(arr)


def pair_ncc_between(a: ArrayLike, b: ArrayLike) -> float:
    """NCC of one consecutive pair, e.g. the last frame of a chunk and the first of the next."""
    return float(ncc_frames(_single(a, "a"), _single(b, "b"))[0])


def _nanmean(x: np.ndarray) -> float:
    """Mean of the non-NaN values; NaN (without a warning) when there are none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(x)) if x.size else float("nan")


def temporal_summary(ncc_odd_pairs: ArrayLike, ncc_merged_pairs: ArrayLike) -> dict[str, float]:
    """TNCC, TNCC of the odd-only reference, TNCG and the signed gap of the means.

    ``tncg`` averages ``|odd - merged|`` over pairs where both are defined; ``tncg_signed`` is
    ``nanmean(odd) - nanmean(merged)`` (positive: the merged sequence is less stable than the
    odd-only one). Pass the unregistered pair NCCs as ``ncc_merged_pairs`` to score the baseline.
    """
    odd = np.asarray(ncc_odd_pairs, dtype=np.float64).reshape(-1)
    merged = np.asarray(ncc_merged_pairs, dtype=np.float64).reshape(-1)
    if odd.shape != merged.shape:
        raise ValueError(f"{odd.size} odd pairs vs {merged.size} merged pairs")
    tncc = _nanmean(merged)
    tncc_odd = _nanmean(odd)
    return {
        "tncc": tncc,
        "tncc_odd": tncc_odd,
        "tncg": _nanmean(np.abs(odd - merged)),
        "tncg_signed": tncc_odd - tncc,
    }
