"""The quantile map's fast paths give numpy's numbers bit for bit: batched sort-based quantiles equal
np.quantile, the table-driven interpolation equals np.interp; and the map does its job."""

from __future__ import annotations

import numpy as np
import pytest

from orpam_pipeline.register.quantile_map import interp_increasing, monotone_map, row_quantiles

PROBS = np.linspace(0.005, 0.995, 65)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 64, 1001, 32768])
def test_identical_to_np_quantile(dtype, n):
    rng = np.random.default_rng(n)
    rows = (rng.standard_normal((5, n)) * 10.0 ** rng.integers(-3, 4, (5, 1))).astype(dtype)
    rows[1] = np.round(rows[1])  # ties
    rows[2] = rows[2, 0]  # constant
    before = rows.copy()
    got = row_quantiles(rows, PROBS)
    want = np.stack([np.quantile(r, PROBS) for r in rows])
    assert got.dtype == np.float64 and np.array_equal(got, want)
    assert np.array_equal(rows, before)  # sorted in a copy, never in place


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # np.quantile's own, on infinities
def test_rows_with_nan_or_inf_as_np_quantile():
    rng = np.random.default_rng(0)
    rows = rng.random((4, 50), dtype=np.float32)
    rows[1, 7] = np.nan
    rows[2, 3] = np.inf
    rows[3, 9] = -np.inf
    want = np.stack([np.quantile(r, PROBS) for r in rows])
    assert np.array_equal(row_quantiles(rows, PROBS), want, equal_nan=True)


def test_strided_frames_as_measured():
    frames = np.random.default_rng(1).random((3, 40, 31), dtype=np.float32)
    even = frames[..., 1::2]
    before = frames.copy()
    want = np.stack([np.quantile(f, PROBS) for f in even])
    assert np.array_equal(row_quantiles(even, PROBS), want)
    assert np.array_equal(row_quantiles(even.reshape(3, -1), PROBS), want)
    assert np.array_equal(row_quantiles(frames, PROBS), np.stack([np.quantile(f, PROBS) for f in frames]))
    assert np.array_equal(frames, before)


def test_monotone_map_undoes_gain_offset_and_gamma():
    rng = np.random.default_rng(1)
    odd = rng.gamma(2.0, 0.2, size=20000)
    even = 0.7 * odd**1.2 + 0.05
    probs = np.linspace(0.005, 0.995, 65)
    mapped = monotone_map(even, np.quantile(even, probs), np.quantile(odd, probs))
    inside = (odd > np.quantile(odd, 0.01)) & (odd < np.quantile(odd, 0.99))
    assert np.abs(mapped - odd)[inside].max() < 0.02
    assert np.all(np.diff(monotone_map(np.linspace(-1, 5, 200), np.quantile(even, probs), np.quantile(odd, probs))) >= 0)


def test_intensity_map_of_clipped_data_stays_in_range():
    """Saturated uint16 data tie the top quantiles; the map's extension must not explode on overshoot."""
    src = np.concatenate([np.linspace(0, 60000, 40), np.full(25, 65535.0)])
    dst = np.linspace(0, 65535.0, 65)  # the forward lines are not saturated where the backward ones are
    out = monotone_map(np.array([65535.0, 65600.0, 66000.0, -50.0]), src, dst)
    assert np.all(np.abs(out) < 1e5), out
    clipped_low = monotone_map(np.array([-30.0]), np.concatenate([np.zeros(30), np.linspace(1, 100, 35)]),
                               np.linspace(0, 120, 65))  # fmt: skip
    assert -200 < clipped_low[0] <= 0


def _frame_and_knots(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A frame of values and its quantile knots as ``monotone_map`` builds them (strictly increasing)."""
    x = (rng.gamma(rng.uniform(0.3, 3.0), 1.0, size=(64, 48)) * 10.0 ** rng.uniform(-3, 4)).astype(np.float32)
    if kind == "zeros":
        x[x < np.quantile(x, 0.3)] = 0
    elif kind == "clipped":
        x = np.minimum(x, np.quantile(x, 0.9))
    elif kind == "counts":
        x = np.round(x)
    elif kind == "outliers":
        x.flat[:20] *= 1e4
    xp = np.maximum.accumulate(np.quantile(x, PROBS))
    xp = xp + np.arange(xp.size) * ((xp[-1] - xp[0]) * 1e-9)
    fp = np.maximum.accumulate(np.quantile(x * rng.uniform(0.5, 2.0) + rng.uniform(-1, 1), PROBS))
    return x.astype(np.float64), xp, fp


@pytest.mark.parametrize("kind", ["plain", "zeros", "clipped", "counts", "outliers"])
def test_interp_increasing_is_np_interp(kind):
    rng = np.random.default_rng(len(kind))
    for _ in range(40):
        x, xp, fp = _frame_and_knots(rng, kind)
        x.flat[:6] = [np.nan, np.inf, -np.inf, xp[0], xp[-1], xp[7]]  # non-finite and on knots
        assert np.array_equal(interp_increasing(x, xp, fp), np.interp(x, xp, fp), equal_nan=True)


def test_interp_increasing_at_bin_edges_and_crowded_knots():
    """Values just either side of every lookup bin's edge, and knots crowded into one bin (np.interp's path)."""
    xp = np.cumsum(np.random.default_rng(2).uniform(0.1, 2.0, 65))
    fp = np.sqrt(xp)
    edges = xp[0] + np.arange(1025) * ((xp[-1] - xp[0]) / 1024)
    x = np.concatenate([np.nextafter(edges, -np.inf), edges, np.nextafter(edges, np.inf), xp])
    assert np.array_equal(interp_increasing(x, xp, fp), np.interp(x, xp, fp))
    crowded = np.concatenate([np.linspace(0.0, 1e-3, 64), [10.0]])
    y = np.random.default_rng(3).uniform(-1.0, 11.0, 5000)
    assert np.array_equal(interp_increasing(y, crowded, np.arange(65.0)), np.interp(y, crowded, np.arange(65.0)))


def test_monotone_map_fast_path_equals_the_np_interp_map():
    """The map as it was written with np.interp and np.where, bit for bit."""

    def reference(values, src_q, dst_q):
        xp = np.maximum.accumulate(np.asarray(src_q, dtype=np.float64))
        fp = np.maximum.accumulate(np.asarray(dst_q, dtype=np.float64))
        span = xp[-1] - xp[0]
        if not np.isfinite(span) or span <= 1e-12 * max(1.0, abs(xp[-1])):
            return (values + (np.median(fp) - np.median(xp))).astype(np.float32)
        k = max(2, xp.size // 8)
        overall = max((fp[-1] - fp[0]) / span, 0.0)
        tied_lo, tied_hi = xp[k] - xp[0] <= 1e-6 * span, xp[-1] - xp[-1 - k] <= 1e-6 * span
        xp = xp + np.arange(xp.size) * (span * 1e-9)
        lo_slope = overall if tied_lo else max((fp[k] - fp[0]) / (xp[k] - xp[0]), 0.0)
        hi_slope = overall if tied_hi else max((fp[-1] - fp[-1 - k]) / (xp[-1] - xp[-1 - k]), 0.0)
        out = np.interp(values, xp, fp)
        out = np.where(values < xp[0], fp[0] + lo_slope * (values - xp[0]), out)
        out = np.where(values > xp[-1], fp[-1] + hi_slope * (values - xp[-1]), out)
        return out.astype(np.float32)

    rng = np.random.default_rng(4)
    for kind in ["plain", "zeros", "clipped", "counts", "outliers"] * 8:
        x, _, _ = _frame_and_knots(rng, kind)
        values = x.astype(np.float32)
        src, dst = np.quantile(values, PROBS), np.quantile(values * rng.uniform(0.5, 2.0) + 0.3, PROBS)
        assert np.array_equal(monotone_map(values, src, dst), reference(values, src, dst))
