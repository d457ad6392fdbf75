"""Sequences: shapes, determinism, the displacement convention, geometry and streaming."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
from scipy import ndimage

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.geometry import split
from orpam_pipeline.simulate import (
    SimulationParams,
    displacement_field,
    simulate,
    simulate_blocks,
    trajectories,
)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


SMALL = SimulationParams(frames=5, height=64, width=48, seed=7)


def test_shapes_and_dtypes() -> None:
    for width in (48, 47):
        p = dataclasses.replace(SMALL, width=width)
        sim = simulate(p)
        assert sim.frames.shape == sim.scene.shape == (5, 64, width)
        assert sim.even_true.shape == (5, 64, width // 2)
        assert sim.displacement.shape == (5, 64)
        for a in (sim.frames, sim.scene, sim.even_true, sim.displacement):
            assert a.dtype == np.float32 and np.isfinite(a).all()


def test_same_seed_same_bytes_different_seed_differs() -> None:
    a, b = simulate(SMALL), simulate(SMALL)
    for x, y in ((a.frames, b.frames), (a.scene, b.scene), (a.displacement, b.displacement)):
        assert x.tobytes() == y.tobytes()
    c = simulate(dataclasses.replace(SMALL, seed=8))
    assert not np.array_equal(a.scene, c.scene) and not np.array_equal(a.frames, c.frames)


def test_randomised_params_vary_with_seed() -> None:
    ps = [SimulationParams.randomised(s, frames=4, height=64, width=64) for s in range(6)]
    assert ps[0] == SimulationParams.randomised(0, frames=4, height=64, width=64)
    for field in ("gain", "offset", "gamma", "disp_offset", "shot_noise", "drift_px"):
        assert len({getattr(p, field) for p in ps}) == len(ps), field
    assert len({p.scene for p in ps}) == len(ps)
    assert all(p.seed == s for s, p in enumerate(ps))
    assert SimulationParams.randomised(3, gain=1.0).gain == 1.0


def test_randomised_displacements_are_realistic() -> None:
    for s in range(20):
        p = SimulationParams.randomised(s, frames=200, height=256, width=64)
        d = displacement_field(p)
        assert 1.0 < np.abs(d).mean() < 5.0
        along = np.ptp(d, axis=1)
        assert along.max() < 2.0
        over_time = np.ptp(d.mean(axis=1))
        assert 0.1 < over_time < 1.0
        assert np.abs(np.diff(d, axis=1)).max() < 0.5
        assert np.abs(trajectories(p).drift).max() <= 0.5 + 1e-9


def test_default_comb_is_large() -> None:
    d = displacement_field(SimulationParams(frames=3))
    assert np.abs(d).min() > 2.0


def test_displacement_convention_recovers_even_true() -> None:
    p = SimulationParams(
        frames=3, height=96, width=64, seed=11, disp_offset=3.4, disp_slope=1.2, disp_sine_amp=0.5
    ).ideal()
    sim = simulate(p)
    _, even = split(sim.frames)
    crop = int(np.ceil(np.abs(sim.displacement).max())) + 3
    rows = np.arange(p.height, dtype=np.float64)
    for t in range(p.frames):
        reg = np.empty_like(even[t], dtype=np.float64)
        for j in range(even.shape[-1]):
            reg[:, j] = ndimage.map_coordinates(
                even[t, :, j].astype(np.float64), [rows + sim.displacement[t]], order=3, mode="nearest"
            )
        truth = sim.even_true[t, crop:-crop]
        good = _ncc(reg[crop:-crop], truth)
        raw = _ncc(even[t, crop:-crop], truth)
        assert good > 0.97
        assert good > raw + 0.1
        # the opposite sign must be wrong
        back = [rows - sim.displacement[t]]
        wrong = np.stack(
            [ndimage.map_coordinates(even[t, :, j].astype(np.float64), back, order=3, mode="nearest")
             for j in range(even.shape[-1])],
            axis=1,
        )
        assert _ncc(wrong[crop:-crop], truth) < good - 0.1


def test_columns_follow_geometry_split() -> None:
    p = dataclasses.replace(
        SMALL.ideal(), disp_offset=0.0, disp_slope=0.0, disp_sine_amp=0.0, disp_drift=0.0, gain=2.0, offset=0.5
    )
    sim = simulate(p)
    odd, even = split(sim.frames)
    odd_true, even_true = split(sim.scene)
    np.testing.assert_allclose(odd, odd_true, atol=1e-6)
    np.testing.assert_allclose(even, 2.0 * np.maximum(even_true, 0) + 0.5, atol=1e-5)
    assert np.array_equal(sim.even_true, even_true)


def test_noise_and_appearance_change() -> None:
    sim = simulate(SimulationParams.randomised(5, frames=4, height=64, width=64))
    odd, _ = split(sim.frames)
    resid = odd - sim.scene[..., 0::2]
    assert 0.002 < resid.std() < 0.1
    ideal = simulate(SimulationParams.randomised(5, frames=4, height=64, width=64).ideal())
    np.testing.assert_array_equal(split(ideal.frames)[0], ideal.scene[..., 0::2])


def test_flicker_and_pulsation_change_frames() -> None:
    p = SimulationParams(frames=8, height=48, width=48, seed=2, flicker=0.03, pulse_period=4.0).without_noise()
    sim = simulate(p)
    means = sim.scene.mean(axis=(1, 2))
    assert np.ptp(means) > 0.001
    assert _ncc(sim.scene[0], sim.scene[-1]) > 0.9


def test_blocks_do_not_depend_on_chunking() -> None:
    whole = simulate(SMALL)
    for chunk in (1, 2, 3):
        blocks = list(simulate_blocks(SMALL, chunk))
        assert [b[0] for b in blocks] == list(range(0, SMALL.frames, chunk))
        frames = np.concatenate([b[1] for b in blocks])
        scene = np.concatenate([b[2] for b in blocks])
        disp = np.concatenate([b[3] for b in blocks])
        assert frames.tobytes() == whole.frames.tobytes()
        assert scene.tobytes() == whole.scene.tobytes()
        assert disp.tobytes() == whole.displacement.tobytes()


def test_invalid_params_refused() -> None:
    with pytest.raises(OrpamError, match="too steep"):
        simulate(dataclasses.replace(SMALL, disp_sine_amp=4.0, disp_sine_cycles=3.0))
    with pytest.raises(OrpamError, match="margin"):
        simulate(dataclasses.replace(SMALL, disp_offset=20.0))
    with pytest.raises(OrpamError):
        SimulationParams(frames=0)


def test_params_dict_round_trip() -> None:
    p = SimulationParams.randomised(9, frames=3, height=32, width=32)
    d = json.loads(json.dumps(p.to_dict()))
    assert SimulationParams.from_dict(d) == p
    with pytest.raises(OrpamError, match="unknown"):
        SimulationParams.from_dict({**d, "bogus": 1})


def test_frame_rate() -> None:
    p = SimulationParams(frames=24, seed=1)
    gen = simulate_blocks(p, 8)
    next(gen)
    t = time.perf_counter()
    n = sum(b[1].shape[0] for b in gen)
    per_frame = (time.perf_counter() - t) / n
    assert per_frame < 0.05, f"{per_frame * 1e3:.1f} ms per 256x256 frame"
