"""Display windows ignore non-finite pixels; to_uint8 clips to the window and maps NaN to black."""

from __future__ import annotations

import numpy as np

from orpam_pipeline.report.intensity import display_window, to_uint8


def test_display_window_percentiles_of_finite_values() -> None:
    img = np.arange(1001, dtype=np.float64)
    img[:3] = [np.nan, np.inf, -np.inf]
    lo, hi = display_window(img, 0.0, 100.0)
    assert (lo, hi) == (3.0, 1000.0)
    assert display_window(np.full(4, np.nan)) == (0.0, 1.0)


def test_to_uint8_window_and_nan() -> None:
    img = np.linspace(0, 1, 1000).reshape(20, 50)
    img[0, 0] = np.nan
    img[0, 1] = np.inf
    out = to_uint8(img, 0.0, 1.0)
    assert out[0, 0] == 0 and out[0, 1] == 0
    assert out[-1, -1] == 255 and out[10, 0] == round(img[10, 0] * 255)
    auto = to_uint8(img)
    assert auto.dtype == np.uint8 and auto.max() == 255 and auto.min() == 0
    assert np.all(to_uint8(np.full((3, 3), 2.0)) == 0)
    assert np.all(to_uint8(np.full((3, 3), np.nan)) == 0)
