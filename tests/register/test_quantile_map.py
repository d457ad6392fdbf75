"""The batched sort-based quantiles give exactly np.quantile's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from orpam_pipeline.register.phase import row_quantiles

PROBS = np.linspace(0.005, 0.995, 65)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 64, 1001, 32768])
def test_identical_to_np_quantile(dtype, n):
    rng = np.random.default_rng(n)
    rows = (rng.standard_normal((5, n)) * 10.0 ** rng.integers(-3, 4, (5, 1))).astype(dtype)
    rows[1] = np.round(rows[1])  # ties
    rows[2] = rows[2, 0]  # constant
    got = row_quantiles(rows, PROBS)
    want = np.stack([np.quantile(r, PROBS) for r in rows])
    assert got.dtype == np.float64 and np.array_equal(got, want)


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
    want = np.stack([np.quantile(f, PROBS) for f in even])
    assert np.array_equal(row_quantiles(even.reshape(3, -1), PROBS), want)
