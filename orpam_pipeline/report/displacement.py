"""The displacement of a scan summarised in one streaming pass over its frame chunks.

Per frame: mean, min, max and standard deviation over every stored value (a field's columns
included). For the figures: the profile along Y (a field averaged across its columns) binned over
time into at most :data:`MAX_TIME_BINS` columns, its mean, min and max per row over all frames, and
the profile at one chosen frame.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from orpam_pipeline.report.envelope import bin_edges

MAX_TIME_BINS = 800
"""Columns of the time × Y heat map: frames are averaged in runs when the scan has more."""


@dataclass
class DisplacementSummary:
    """What the report and its figures need of a ``(T, Y)`` or ``(T, Y, n)`` displacement (pixels)."""

    mean: np.ndarray
    min: np.ndarray
    max: np.ndarray
    std: np.ndarray
    heatmap: np.ndarray
    heatmap_edges: np.ndarray
    profile_mean: np.ndarray
    profile_min: np.ndarray
    profile_max: np.ndarray
    frame_profile: np.ndarray | None
    field: bool
    kept: list[np.ndarray]

    def per_frame(self) -> dict[str, list[float]]:
        """The report.json lists (NaN where a frame holds no finite value)."""
        return {k: getattr(self, k).tolist() for k in ("mean", "min", "max", "std")}


def _profiles(block: np.ndarray) -> np.ndarray:
    """``(c, Y)`` profiles of a chunk: a field averaged across its columns (float64)."""
    data = np.asarray(block, dtype=np.float64)
    if data.ndim == 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(data, axis=2)
    return data


def summarise_displacement(
    array: Any,
    n_frames: int,
    chunk: int,
    frame: int | None = None,
    keep: np.ndarray | None = None,
    max_bins: int = MAX_TIME_BINS,
) -> DisplacementSummary:
    """Stream the first ``n_frames`` of ``array`` (zarr or numpy), ``chunk`` frames at a time.

    ``frame`` picks the frame whose profile is kept; ``keep`` (sorted frame indices) the frames kept
    as read, for summaries over a sample.
    """
    if array.ndim not in (2, 3):
        raise ValueError(f"a displacement is (T, Y) or (T, Y, n), got shape {array.shape}")
    height = int(array.shape[1])
    edges = bin_edges(n_frames, max_bins)
    bin_of = np.searchsorted(edges, np.arange(n_frames), side="right") - 1
    sums = np.zeros((edges.size - 1, height))
    counts = np.zeros((edges.size - 1, height))
    stats: dict[str, list[np.ndarray]] = {k: [] for k in ("mean", "min", "max", "std")}
    profile_sum, profile_count = np.zeros(height), np.zeros(height)
    profile_min, profile_max = np.full(height, np.inf), np.full(height, -np.inf)
    frame_profile = None
    keep = np.zeros(0, dtype=np.int64) if keep is None else np.asarray(keep, dtype=np.int64)
    kept: list[np.ndarray] = []
    for start in range(0, n_frames, max(1, int(chunk))):
        stop = min(start + int(chunk), n_frames)
        block = np.asarray(array[start:stop])
        flat = block.reshape(block.shape[0], -1).astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for name, fn in (("mean", np.nanmean), ("min", np.nanmin), ("max", np.nanmax), ("std", np.nanstd)):
                stats[name].append(fn(flat, axis=1))
        prof = _profiles(block)
        ok = np.isfinite(prof)
        clean = np.where(ok, prof, 0.0)
        np.add.at(sums, bin_of[start:stop], clean)
        np.add.at(counts, bin_of[start:stop], ok)
        profile_sum += clean.sum(axis=0)
        profile_count += ok.sum(axis=0)
        profile_min = np.fmin(profile_min, np.where(ok, prof, np.inf).min(axis=0))
        profile_max = np.fmax(profile_max, np.where(ok, prof, -np.inf).max(axis=0))
        if frame is not None and start <= frame < stop:
            frame_profile = prof[frame - start]
        kept.extend(block[t - start] for t in keep[(keep >= start) & (keep < stop)])
    with np.errstate(invalid="ignore", divide="ignore"):
        heatmap = np.where(counts > 0, sums / counts, np.nan)
        profile_mean = np.where(profile_count > 0, profile_sum / profile_count, np.nan)
    unseen = profile_count == 0
    return DisplacementSummary(
        **{k: np.concatenate(v) if v else np.zeros(0) for k, v in stats.items()},
        heatmap=heatmap,
        heatmap_edges=edges,
        profile_mean=profile_mean,
        profile_min=np.where(unseen, np.nan, profile_min),
        profile_max=np.where(unseen, np.nan, profile_max),
        frame_profile=frame_profile,
        field=array.ndim == 3,
        kept=kept,
    )
