import numpy as np
import pytest

from orpam_pipeline.metrics import ncc_frames
from orpam_pipeline.register import get_method
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.register.phase import _resample, resample_columns, resample_rows
from orpam_pipeline.simulate import SimulationParams, simulate
from orpam_pipeline.store.layout import open_scan_store
from tests.conftest import make_store


def _register(tmp_path, frames, method="phase", **kw):
    store = make_store(tmp_path, frames, **kw)
    register_store(store, get_method(method))
    return open_scan_store(store)


@pytest.mark.parametrize("shift", [0.37, -1.62, 2.85])
def test_phase_recovers_a_constant_subpixel_shift(tmp_path, shift):
    params = SimulationParams.randomised(
        11, frames=8, height=128, width=128, disp_offset=shift, disp_slope=0.0, disp_sine_amp=0.0, disp_drift=0.0
    )
    sim = simulate(params)
    np.testing.assert_allclose(sim.displacement, shift, atol=1e-6)
    group = _register(tmp_path, sim.frames)
    error = group["displacement"][:] - sim.displacement
    assert np.abs(error).max() < 0.1, np.abs(error).max()


def test_phase_recovers_a_profile_varying_along_the_line(tmp_path):
    sim = simulate(SimulationParams.randomised(4, frames=24, height=192, width=160))
    variation = np.ptp(sim.displacement, axis=1).mean()
    assert variation > 0.5, "the test needs a profile that really varies along the line"
    group = _register(tmp_path, sim.frames)
    rms = np.sqrt(np.mean((group["displacement"][:] - sim.displacement) ** 2))
    assert rms < 0.25, rms


def test_phase_beats_both_baselines_against_ground_truth(tmp_path, small_sim):
    scores = {}
    for method in ("none", "copy-odd", "phase"):
        group = _register(tmp_path / method, small_sim.frames, method)
        scores[method] = ncc_frames(group["registered_even/0"][:], small_sim.even_true).mean()
    assert scores["phase"] > scores["copy-odd"] > scores["none"], scores
    assert scores["phase"] > 0.97, scores


def test_resample_rows_integer_shift_is_exact_and_edges_do_not_wrap():
    rng = np.random.default_rng(0)
    lines = rng.random((2, 20, 3)).astype(np.float32)
    pos = np.arange(20)[None, :] + np.full((2, 20), 3.0)
    out = resample_rows(lines, pos)
    np.testing.assert_allclose(out[:, :17], lines[:, 3:], atol=1e-6)
    np.testing.assert_allclose(out[:, 17:], np.repeat(lines[:, -1:], 3, axis=1), atol=1e-6)
    up = resample_rows(lines, np.arange(20)[None, :] - np.full((2, 20), 2.0))
    np.testing.assert_allclose(up[:, :2], np.repeat(lines[:, :1], 2, axis=1), atol=1e-6)


def test_resample_rows_subpixel_matches_a_smooth_signal():
    y = np.arange(64, dtype=np.float64)
    signal = np.sin(2 * np.pi * y / 32.0)
    lines = signal[None, :, None].astype(np.float32)
    out = resample_rows(lines, (y + 0.4)[None, :])[0, 2:-3, 0]
    np.testing.assert_allclose(out, np.sin(2 * np.pi * (y[2:-3] + 0.4) / 32.0), atol=5e-3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_phase_profile_accuracy_across_random_scenes(tmp_path, seed):
    """Thorough: full-size frames, randomised scenes, appearances, profiles and noise."""
    sim = simulate(SimulationParams.randomised(100 + seed, frames=32, height=256, width=256))
    group = _register(tmp_path, sim.frames)
    rms = np.sqrt(np.mean((group["displacement"][:] - sim.displacement) ** 2))
    assert rms < 0.25, rms
    reg = ncc_frames(group["registered_even/0"][:], sim.even_true).mean()
    copy = ncc_frames(sim.frames[..., 0::2][..., :128], sim.even_true).mean()
    assert reg > copy, (reg, copy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int32])
def test_whole_row_resampling_equals_per_sample_resampling(dtype):
    """The profile path gathers whole rows; it must give the per-sample kernel's numbers bit for bit, for
    every input type (integers are weighted as numpy promotes them)."""
    rng = np.random.default_rng(3)
    lines = (rng.standard_normal((3, 40, 7)) * 1000 + 2000).astype(dtype)
    positions = np.arange(40)[None, :] + rng.uniform(-6, 6, size=(3, 40))
    rows = resample_rows(lines, positions)
    per_sample = _resample(lines, np.ascontiguousarray(np.broadcast_to(positions[..., None], lines.shape)))
    assert rows.dtype == per_sample.dtype == np.float32
    assert np.array_equal(rows, per_sample)
    assert np.array_equal(resample_columns(lines, np.broadcast_to(positions[..., None], lines.shape)), per_sample)


def test_a_profile_given_as_a_field_resamples_like_a_field():
    rng = np.random.default_rng(4)
    lines = rng.standard_normal((2, 30, 6)).astype(np.float32)
    profile = (np.arange(30)[None, :] + rng.uniform(-3, 3, size=(2, 30))).astype(np.float32)
    field = np.broadcast_to(profile[..., None], lines.shape)
    assert np.array_equal(resample_columns(lines, field), resample_rows(lines, profile))
    varied = field.copy()
    varied[1, 5, 2] += 0.25
    out = resample_columns(lines, varied)
    assert np.array_equal(out[0], resample_rows(lines, profile)[0]) and not np.array_equal(out, resample_rows(lines, profile))
