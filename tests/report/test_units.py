"""Pixel size and frame interval from the store's ``physical``; scale bar lengths are 1, 2 or 5 × 10^k."""

from __future__ import annotations

import numpy as np
import pytest

from orpam_pipeline.report.units import Units, format_um, nice_length


def test_units_from_physical() -> None:
    u = Units.from_physical({"pixel_um": {"y": 2.5, "x": 4.0}, "frame_interval_s": 0.5})
    assert (u.pixel_y_um, u.pixel_x_um, u.frame_interval_s) == (2.5, 4.0, 0.5)
    assert u.timed and u.time_label == "time (s)"
    assert np.allclose(u.times(np.arange(3)), [0.0, 0.5, 1.0])
    assert u.displacement_um(2.0) == 5.0
    bare = Units.from_physical(None)
    assert bare == Units() and bare.time_label == "frame" and bare.displacement_um(2.0) is None
    assert np.array_equal(bare.times(np.arange(3)), [0, 1, 2])
    assert Units.from_physical({"pixel_um": None, "frame_interval_s": None}) == Units()
    assert Units.from_physical({"pixel_um": {"y": 0, "x": "a"}, "frame_interval_s": -1}) == Units()
    assert Units.from_physical({"pixel_um": 3}) == Units(3.0, 3.0, None)


@pytest.mark.parametrize(("target", "length"), [(1.0, 1.0), (1.9, 1.0), (2.0, 2.0), (4.99, 2.0), (7.0, 5.0),
                                                (63.0, 50.0), (0.3, 0.2), (12000.0, 10000.0)])  # fmt: skip
def test_nice_length(target: float, length: float) -> None:
    assert nice_length(target) == pytest.approx(length)


def test_nice_length_refuses_nonsense_and_labels() -> None:
    with pytest.raises(ValueError):
        nice_length(0.0)
    assert format_um(50.0) == "50 µm" and format_um(0.5) == "0.5 µm" and format_um(2000.0) == "2 mm"
