"""Units of the evaluation: the artefact score's noise behaviour, the leak inputs, the leak check."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from orpam_pipeline.evaluate import artefact_scores, leak_check, unrelated_frames
from orpam_pipeline.evaluate.leak import LEAK_THRESHOLD
from orpam_pipeline.geometry import interleave, split
from orpam_pipeline.register import get_method
from orpam_pipeline.register.base import RegistrationMethod
from orpam_pipeline.simulate import SimulationParams, simulate
from tests.conftest import make_store

NOISE_BOUND_1X = 0.05
"""Largest rise of a perfectly registered frame's score from the simulator's own noise level."""
NOISE_BOUND_3X = 0.2
"""Largest rise at three times that noise (a 1 px misregistration scores above 0.3 even then)."""


def _perfect_and_shifted(seed: int, noise: float) -> tuple[float, float]:
    """Mean artefact score of the true even lines (with noise) and of the same shifted by 1 px along Y."""
    p = SimulationParams.randomised(seed, frames=4, height=96, width=96).without_noise()
    sim = simulate(p)
    odd, _ = split(sim.frames)
    rng = np.random.default_rng(seed)
    sd = noise * 0.02
    odd = odd + sd * rng.standard_normal(odd.shape)
    even = sim.even_true + sd * rng.standard_normal(sim.even_true.shape)
    shifted = ndimage.shift(even, (0, 1, 0), order=1, mode="nearest")
    return (
        float(np.mean(artefact_scores(interleave(odd, even), odd))),
        float(np.mean(artefact_scores(interleave(odd, shifted), odd))),
    )


@pytest.mark.parametrize("seed", [0, 3])
def test_noise_alone_raises_the_artefact_score_only_a_little(seed):
    clean, clean_shift = _perfect_and_shifted(seed, 0.0)
    noisy, _ = _perfect_and_shifted(seed, 1.0)
    very_noisy, very_noisy_shift = _perfect_and_shifted(seed, 3.0)
    assert clean < 0.02
    assert noisy - clean < NOISE_BOUND_1X
    assert very_noisy - clean < NOISE_BOUND_3X
    assert clean_shift > 0.3 and very_noisy_shift > 0.3
    assert very_noisy_shift > very_noisy


def test_artefact_score_is_zero_for_a_smooth_scene_and_nan_for_flat_frames():
    y, x = np.mgrid[0:32, 0:32].astype(float)
    smooth = np.sin(y / 5.0) + np.cos(x / 7.0)
    assert artefact_scores(smooth, smooth[:, 0::2])[0] < 1e-3
    assert np.isnan(artefact_scores(np.ones((16, 16)), np.ones((16, 8)))[0])


def test_unrelated_inputs_keep_the_odd_lines_and_replace_the_even_lines(small_sim):
    frames = small_sim.frames[:4]
    partners = small_sim.frames[12:16]
    inputs = unrelated_frames(frames, partners, seed=1)
    odd, even = split(frames)
    for modified in inputs.values():
        np.testing.assert_array_equal(split(modified)[0], odd)
    np.testing.assert_array_equal(split(inputs["far"])[1], split(partners)[1][:, ::-1])
    noise = split(inputs["noise"])[1]
    np.testing.assert_allclose(noise.mean(axis=(1, 2)), even.mean(axis=(1, 2)), atol=0.02)
    np.testing.assert_allclose(noise.std(axis=(1, 2)), even.std(axis=(1, 2)), rtol=0.05)
    again = unrelated_frames(frames, partners, seed=1)["noise"]
    np.testing.assert_array_equal(again, inputs["noise"])


class _HalfCopy(RegistrationMethod):
    """A cheat that blends the fixed image into its output."""

    name = "half-copy"
    kind = "test"

    def apply(self, odd, even, plan_rows):
        return (0.5 * even / (even.std() + 1e-9) + 0.5 * odd[..., : even.shape[-1]] / (odd.std() + 1e-9)), None


def test_leak_check_catches_a_partial_copy_and_passes_identity(tmp_path, small_sim):
    store = make_store(tmp_path, small_sim.frames[:8])
    cheat = leak_check(store, _HalfCopy, n_frames=8, work_dir=tmp_path)
    assert not cheat["passed"] and cheat["excess"] > 0.4
    honest = leak_check(store, lambda: get_method("none"), n_frames=8, work_dir=tmp_path)
    assert honest["passed"] and abs(honest["excess"]) < 1e-6
    assert set(honest["inputs"]) == {"far", "noise"} and honest["threshold"] == LEAK_THRESHOLD
    assert not any(p.name.startswith(".leak-") for p in tmp_path.iterdir())


def test_phase_cannot_turn_noise_into_the_fixed_image(tmp_path, small_sim):
    store = make_store(tmp_path, small_sim.frames[:8])
    result = leak_check(store, lambda: get_method("phase"), n_frames=8, work_dir=tmp_path)
    assert result["inputs"]["noise"]["excess"] < 0.05
    assert result["passed"]



@pytest.mark.parametrize("shape", [(3, 1, 5), (2, 2, 7), (4, 3, 3), (1, 9, 4), (5, 64, 62), (64, 30)])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.7])
def test_smoothing_along_y_is_scipys_gaussian_filter_with_nearest_edges(shape, sigma):
    from orpam_pipeline.evaluate.artefact import smooth_along_y

    a = np.random.default_rng(7).normal(size=shape) * 100 + 7
    ref = ndimage.gaussian_filter1d(a, sigma, axis=-2, mode="nearest")
    np.testing.assert_allclose(smooth_along_y(a, sigma), ref, rtol=0, atol=1e-13 * np.abs(ref).max())
