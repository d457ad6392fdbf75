"""Temporal metrics on stacks with a known answer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from orpam_pipeline.metrics import ncc, pair_ncc, pair_ncc_between, temporal_summary


def test_identical_frames() -> None:
    frame = np.random.default_rng(0).random((16, 12))
    stack = np.repeat(frame[None], 6, axis=0)
    pairs = pair_ncc(stack)
    assert pairs.shape == (5,)
    assert np.allclose(pairs, 1.0, atol=1e-12)
    s = temporal_summary(pairs, pairs)
    assert s["tncc"] == pytest.approx(1.0) and s["tncc_odd"] == pytest.approx(1.0)
    assert s["tncg"] == 0.0 and s["tncg_signed"] == 0.0


def test_pairs_match_loop_and_boundary() -> None:
    rng = np.random.default_rng(1)
    stack = np.cumsum(rng.random((7, 10, 9)), axis=0)
    pairs = pair_ncc(stack)
    assert np.allclose(pairs, [ncc(stack[t], stack[t + 1]) for t in range(6)], atol=1e-12)
    chunked = np.concatenate(
        [pair_ncc(stack[:4]), [pair_ncc_between(stack[3], stack[4])], pair_ncc(stack[4:])]
    )
    assert np.allclose(chunked, pairs, atol=1e-12)
    assert pair_ncc(stack[:1]).shape == (0,)


def test_known_gap_and_nan_handling() -> None:
    odd = np.array([0.9, 0.9, 0.9, np.nan])
    merged = np.array([0.8, 0.7, 1.0, 0.5])
    s = temporal_summary(odd, merged)
    assert s["tncc"] == pytest.approx(0.75)
    assert s["tncc_odd"] == pytest.approx(0.9)
    assert s["tncg"] == pytest.approx((0.1 + 0.2 + 0.1) / 3)
    assert s["tncg_signed"] == pytest.approx(0.15)


def test_empty_and_all_nan_are_nan_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for arr in (np.empty(0), np.array([np.nan, np.nan])):
            s = temporal_summary(arr, arr)
            assert all(np.isnan(v) for v in s.values())
    with pytest.raises(ValueError):
        temporal_summary([1.0], [1.0, 2.0])


def test_constant_frame_pair_is_nan() -> None:
    stack = np.random.default_rng(2).random((4, 8, 8))
    stack[2] = 3.0
    pairs = pair_ncc(stack)
    assert np.isfinite(pairs[0]) and np.isnan(pairs[1]) and np.isnan(pairs[2])
