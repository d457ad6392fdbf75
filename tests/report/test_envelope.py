"""Bins of a long series: mean, min and max per bin, checked against a plain loop."""

from __future__ import annotations

import numpy as np

from orpam_pipeline.report.envelope import MAX_POINTS, bin_edges, envelope, needs_envelope


def test_bin_edges_cover_every_element_once() -> None:
    for n, bins in ((2000, 200), (7, 200), (401, 200), (1, 5)):
        edges = bin_edges(n, bins)
        assert edges[0] == 0 and edges[-1] == n and np.all(np.diff(edges) >= 1)
        assert edges.size - 1 == min(n, bins)


def test_envelope_matches_a_loop_and_ignores_non_finite() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=2000)
    v[[5, 17, 900]] = [np.nan, np.inf, -np.inf]
    v[1000:1010] = np.nan
    env = envelope(v, 200)
    edges = bin_edges(v.size, 200)
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        chunk = v[a:b][np.isfinite(v[a:b])]
        assert env.x[i] == (a + b - 1) / 2
        if chunk.size:
            assert np.isclose(env.mean[i], chunk.mean()) and env.low[i] == chunk.min() and env.high[i] == chunk.max()
        else:
            assert np.isnan(env.mean[i]) and np.isnan(env.low[i]) and np.isnan(env.high[i])
    assert np.isnan(env.mean[100])


def test_only_long_series_are_binned() -> None:
    assert not needs_envelope(MAX_POINTS) and needs_envelope(MAX_POINTS + 1)
    assert envelope([]).x.size == 0
