"""The crop window lands on the comb artefact, is clipped to the frame, and is centred without one."""

from __future__ import annotations

import numpy as np

from orpam_pipeline.report.crop import choose_crop


def _comb(h: int = 64, w: int = 80) -> np.ndarray:
    """A smooth frame with a comb planted in rows 20-39, columns 41-60."""
    yy, xx = np.mgrid[:h, :w]
    comb = np.sin(yy / 7.0) + np.cos(xx / 9.0)
    comb[20:40, 41:61:2] += 3.0
    return comb


def test_choose_crop_finds_planted_comb() -> None:
    comb = _comb()
    y0, y1, x0, x1 = choose_crop(comb, size=16)
    assert y1 - y0 == 16 and x1 - x0 == 16
    assert 20 <= y0 and y1 <= 40 and 41 <= x0 and x1 <= 61
    y0, y1, x0, x1 = choose_crop(comb, size=100)
    assert (y0, y1) == (0, 64) and x1 - x0 == 64 and x1 <= 80
    assert choose_crop(np.zeros((30, 30)), 10) == (10, 20, 10, 20)
