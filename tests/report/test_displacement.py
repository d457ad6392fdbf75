"""The streaming displacement summary equals numpy over the whole array, for profiles and fields."""

from __future__ import annotations

import numpy as np
import pytest

from orpam_pipeline.report.displacement import summarise_displacement
from orpam_pipeline.report.envelope import bin_edges


@pytest.mark.parametrize("shape", [(37, 12), (37, 12, 5)])
@pytest.mark.parametrize("chunk", [1, 4, 37])
def test_summary_equals_numpy_reference(shape: tuple[int, ...], chunk: int) -> None:
    d = np.random.default_rng(1).normal(2.0, 1.5, shape).astype(np.float32)
    s = summarise_displacement(d, shape[0], chunk, frame=20, keep=np.array([0, 9, 36]), max_bins=8)
    flat = d.reshape(shape[0], -1).astype(np.float64)
    assert np.allclose(s.mean, flat.mean(axis=1)) and np.allclose(s.std, flat.std(axis=1))
    assert np.array_equal(s.min, flat.min(axis=1)) and np.array_equal(s.max, flat.max(axis=1))
    profiles = d.astype(np.float64).mean(axis=2) if d.ndim == 3 else d.astype(np.float64)
    assert s.field == (d.ndim == 3)
    assert np.allclose(s.profile_mean, profiles.mean(axis=0))
    assert np.allclose(s.profile_min, profiles.min(axis=0)) and np.allclose(s.profile_max, profiles.max(axis=0))
    assert np.allclose(s.frame_profile, profiles[20])
    edges = bin_edges(shape[0], 8)
    expected = np.stack([profiles[a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:])])
    assert np.allclose(s.heatmap, expected) and np.array_equal(s.heatmap_edges, edges)
    assert len(s.kept) == 3 and all(np.array_equal(k, d[t]) for k, t in zip(s.kept, (0, 9, 36)))
    assert set(s.per_frame()) == {"mean", "min", "max", "std"} and len(s.per_frame()["mean"]) == shape[0]


def test_a_long_scan_is_binned_and_nan_rows_stay_nan() -> None:
    d = np.tile(np.arange(2000, dtype=np.float32)[:, None], (1, 6))
    d[:, 2] = np.nan
    s = summarise_displacement(d, 2000, 64)
    assert s.heatmap.shape == (800, 6)
    assert np.allclose(s.heatmap[:, 0], [np.arange(a, b).mean() for a, b in zip(s.heatmap_edges[:-1], s.heatmap_edges[1:])])
    assert np.all(np.isnan(s.heatmap[:, 2])) and np.isnan(s.profile_mean[2]) and np.isnan(s.profile_min[2])
    assert np.allclose(s.mean, np.arange(2000)) and s.frame_profile is None
