"""Static scene: shape, range, determinism, pulsation and speed."""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage

from orpam_pipeline.simulate import Scene, SceneParams, render_scene


def _scene(seed: int, size: int = 96, **kw: float) -> Scene:
    return render_scene(size, size, np.random.default_rng(seed), SceneParams(**kw), margin=8)


def test_shape_range_and_margin() -> None:
    s = render_scene(80, 60, np.random.default_rng(0), margin=10)
    assert s.base.shape == s.pulsed.shape == (100, 80)
    assert s.base.dtype == np.float32 and s.margin == 10
    assert s.base.min() >= 0.0 and 0.5 < s.base.max() < 1.2
    assert np.percentile(s.base, 50) < 0.4, "mostly dark background, vessels bright"


def test_deterministic_per_rng_and_seed_dependent() -> None:
    a, b, c = _scene(3), _scene(3), _scene(4)
    assert np.array_equal(a.base, b.base) and np.array_equal(a.pulsed, b.pulsed)
    assert not np.array_equal(a.base, c.base)


def test_pulsed_scene_has_wider_vessels() -> None:
    s = _scene(1, pulse_dilation=0.15)
    diff = s.pulsed.astype(np.float64) - s.base
    assert diff.max() > 0.02
    assert diff.mean() > 0, "dilation adds signal on average"
    still = _scene(1, pulse_dilation=0.0)
    assert np.array_equal(still.base, still.pulsed)


def test_has_structure_at_several_calibres() -> None:
    s = _scene(2, size=192)
    img = s.base.astype(np.float64)
    bright = img > 0.5
    assert 0.02 < bright.mean() < 0.6
    fine = np.abs(img - ndimage.gaussian_filter(img, 2.0))
    assert fine.mean() > 0.01, "thin vessels / capillaries give fine detail"


def test_fast_enough() -> None:
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    render_scene(256, 256, rng, margin=16)
    assert time.perf_counter() - t < 1.5
