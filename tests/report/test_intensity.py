"""Display windows ignore non-finite pixels."""

from __future__ import annotations

import numpy as np

from orpam_pipeline.report.intensity import display_window


def test_display_window_percentiles_of_finite_values() -> None:
    img = np.arange(1001, dtype=np.float64)
    img[:3] = [np.nan, np.inf, -np.inf]
    lo, hi = display_window(img, 0.0, 100.0)
    assert (lo, hi) == (3.0, 1000.0)
    assert display_window(np.full(4, np.nan)) == (0.0, 1.0)
