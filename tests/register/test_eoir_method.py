"""EOIR inside the engine: a stored displacement, one resampling of the data, refinement, leak check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orpam_pipeline.evaluate.leak import LEAK_THRESHOLD, leak_scores
from orpam_pipeline.geometry import odd_at_even, split
from orpam_pipeline.models.checkpoint import save_checkpoint
from orpam_pipeline.models.eoir import EOIR
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.register.eoir import EOIRMethod, EOIRSettings, line_profile
from orpam_pipeline.register.phase import resample_columns
from orpam_pipeline.register.refine import refine_rows
from orpam_pipeline.store.layout import get_array, open_scan_store
from tests.conftest import make_store, shifted_frames


@pytest.fixture(scope="module")
def identity_checkpoint(tmp_path_factory):
    """An untrained EOIR: zero displacement until refined (the network's plumbing without its training)."""
    torch.manual_seed(0)
    model = EOIR()
    path = tmp_path_factory.mktemp("ckpt") / "eoir.pt"
    save_checkpoint(path, model_config=model.config.to_dict(), model_state=model.state_dict())
    return path


def _method(path, **settings) -> EOIRMethod:
    return EOIRMethod(EOIRSettings(checkpoint=str(path), device="cpu", precision="fp32", **settings))


def test_refinement_recovers_a_known_shift(small_sim):
    frames = shifted_frames(small_sim.frames[:3], 1.3)
    odd, even = split(frames)
    d = refine_rows(even, odd_at_even(odd, frames.shape[-1]), np.zeros_like(even), iterations=6)
    error = np.abs(d[:, 8:-8] - 1.3)
    assert np.median(error) < 0.02 and np.percentile(error, 99) < 0.08, (np.median(error), error.max())


def test_runs_in_the_engine_stores_the_field_and_resamples_the_data(tmp_path, small_sim, identity_checkpoint):
    frames = shifted_frames(small_sim.frames[:4], 1.0)
    store = make_store(tmp_path, frames, chunk_frames=2)
    info = register_store(store, _method(identity_checkpoint, harmonise=False, refine=5))
    group = open_scan_store(store)
    odd, even = split(frames)
    disp = get_array(group, "displacement")[:]
    assert disp.shape == even.shape and info["displacement"] == "field" and info["kind"] == "learned"
    assert np.median(disp[:, 16:-16]) == pytest.approx(1.0, abs=0.15)
    rows = np.arange(frames.shape[1], dtype=np.float32)[None, :, None]
    np.testing.assert_allclose(get_array(group, "registered_even")[:], resample_columns(even, rows + disp), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(get_array(group, "merged")[:][..., 0::2], odd)


def test_identical_halves_give_no_displacement(small_sim, identity_checkpoint):
    frames = shifted_frames(small_sim.frames[:2], 0.0)
    odd, even = split(frames)
    _, disp = _method(identity_checkpoint).apply(odd, even, None)
    assert np.abs(disp).max() < 0.05


def test_noise_in_the_backward_lines_does_not_leak(small_sim, identity_checkpoint):
    odd, _ = split(small_sim.frames[:4])
    noise = np.random.default_rng(0).normal(0.0, 1.0, odd.shape).astype(np.float32)
    registered, _ = _method(identity_checkpoint).apply(odd, noise, None)
    assert leak_scores(registered, noise, odd)["excess"] < LEAK_THRESHOLD


def test_line_profile_is_the_polynomial_fit_of_the_median_along_the_lines():
    rng = np.random.default_rng(3)
    u = np.linspace(-1.0, 1.0, 64)
    smooth = 2.0 + 1.5 * u - 0.8 * u**3
    field = smooth[None, :, None] + rng.normal(0.0, 0.2, (2, 64, 31))
    field[:, :, :3] += 20.0  # a few wild lines: the median ignores them
    profile = line_profile(field.astype(np.float32), 3)
    assert profile.shape == field.shape and np.ptp(profile, axis=2).max() == 0
    np.testing.assert_allclose(profile[:, :, 0], np.broadcast_to(smooth, (2, 64)), atol=0.08)


def test_polynomial_refinement_recovers_a_smooth_profile(small_sim):
    frames = np.array(small_sim.frames[:2], dtype=np.float32)
    odd, _ = split(frames)
    ref = np.ascontiguousarray(odd_at_even(odd, frames.shape[-1]), dtype=np.float32)
    rows = np.arange(frames.shape[1], dtype=np.float32)
    true = (0.8 + 0.6 * np.linspace(-1.0, 1.0, rows.size) ** 2).astype(np.float32)
    even = resample_columns(ref, np.broadcast_to((rows - true)[None, :, None], ref.shape))
    d = refine_rows(even, ref, np.zeros_like(even), iterations=8, degree=3)
    error = np.abs(d[:, 12:-12, 0] - true[12:-12])
    assert np.median(error) < 0.03, np.median(error)


@pytest.mark.parametrize("k", [-5.0, 2.5])
def test_the_shipped_network_finds_a_known_shift_and_refinement_sharpens_it(small_sim, k):
    frames = shifted_frames(small_sim.frames[:3], k)
    odd, even = split(frames)
    inner = slice(24, -24)
    _, net = EOIRMethod(EOIRSettings(device="cpu", precision="fp32", refine=0)).apply(odd, even, None)
    _, refined = EOIRMethod(EOIRSettings(device="cpu", precision="fp32")).apply(odd, even, None)
    assert np.abs(np.median(net[:, inner]) - k) < 0.5
    assert np.abs(np.median(refined[:, inner]) - k) < 0.1


def test_the_shipped_method_does_not_leak_noise(small_sim):
    odd, _ = split(small_sim.frames[:4])
    noise = np.random.default_rng(1).normal(0.0, 1.0, odd.shape).astype(np.float32)
    registered, _ = EOIRMethod(EOIRSettings(device="cpu", precision="fp32")).apply(odd, noise, None)
    assert leak_scores(registered, noise, odd)["excess"] < LEAK_THRESHOLD
