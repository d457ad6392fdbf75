"""phase with block jitter: jumps of the displacement between blocks of lines become a field."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from orpam_pipeline.evaluate.scoring import score_store
from orpam_pipeline.register import engine, get_method, jumps
from orpam_pipeline.register.apply_displacement import (
    apply_displacement,
    apply_displacement_store,
)
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.simulate import (
    Simulation,
    SimulationParams,
    simulate,
    write_simulation,
)
from orpam_pipeline.store.layout import get_array, open_scan_store
from orpam_pipeline.store.resume import ChunkMarkers
from tests.conftest import make_store

JITTER = {"jitter_blocks": 4, "jitter_min": 4.0, "jitter_max": 40.0}
"""Four blocks of lines per frame, jumps of 4 to 40 px between them."""


@pytest.fixture(scope="module")
def jitter_params() -> SimulationParams:
    return SimulationParams.randomised(0, frames=8, height=192, width=160, **JITTER)


@pytest.fixture(scope="module")
def jitter_sim(jitter_params) -> Simulation:
    return simulate(jitter_params)


def _jumps(field: np.ndarray, tolerance: float = 1.0) -> np.ndarray:
    """Where the per-line displacement (mean along Y) changes between neighbouring lines: (T, Xe - 1) bools."""
    lines = field.mean(axis=1)
    return np.abs(np.diff(lines, axis=1)) > tolerance


def _away_from_jumps(truth: np.ndarray, lines: int = 2) -> np.ndarray:
    """(T, Xe) mask of the lines at least ``lines`` lines away from a true jump."""
    jump = _jumps(truth, 0.5)
    keep = np.ones((truth.shape[0], truth.shape[2]), bool)
    for t, j in zip(*np.nonzero(jump)):
        keep[t, max(0, j + 1 - lines) : j + 1 + lines] = False
    return keep


def test_phase_recovers_jumps_between_blocks_of_lines(tmp_path, jitter_sim):
    truth = jitter_sim.displacement
    sizes = np.abs(np.diff(truth[:, 0, :], axis=1))
    sizes = sizes[sizes > 0.5]
    assert sizes.size == 3 * truth.shape[0] and sizes.min() < 10.0 and sizes.max() >= 20.0, sizes
    store = make_store(tmp_path, jitter_sim.frames, chunk_frames=3)
    info = register_store(store, get_method("phase"))
    assert info["displacement"] == "field" and "displacement[t, y, j]" in info["displacement_convention"]
    assert info["plan"]["frames_with_jumps"] == truth.shape[0] and info["plan"]["most_blocks"] == 4
    group = open_scan_store(store)
    assert group.attrs["registration"]["displacement"] == "field"
    found = group["displacement"][:]
    assert found.shape == truth.shape == (8, 192, 80)

    keep = _away_from_jumps(truth)
    err = (found - truth).transpose(0, 2, 1)[keep]
    rms = float(np.sqrt(np.mean(err**2)))
    assert rms < 0.25, rms

    true_jumps, found_jumps = _jumps(truth, 0.5), _jumps(found)
    for t, j in zip(*np.nonzero(true_jumps)):  # every jump is found within a line or two ...
        assert found_jumps[t, max(0, j - 2) : j + 3].any(), (t, j)
    for t, j in zip(*np.nonzero(found_jumps)):  # ... and none is made up
        assert true_jumps[t, max(0, j - 2) : j + 3].any(), (t, j)


def test_without_jump_detection_the_jitter_stays(tmp_path, jitter_sim):
    store = make_store(tmp_path, jitter_sim.frames)
    info = register_store(store, get_method("phase", jumps=False))
    assert info["displacement"] == "profile" and info["params"]["jumps"] is False
    profile = open_scan_store(store)["displacement"][:]
    rms = float(np.sqrt(np.mean((profile[..., None] - jitter_sim.displacement) ** 2)))
    assert rms > 5.0, rms


def test_max_blocks_bounds_the_blocks_per_frame(tmp_path, jitter_sim):
    frames = jitter_sim.frames[:3]
    store = make_store(tmp_path / "two", frames)
    info = register_store(store, get_method("phase", max_blocks=2))
    assert info["displacement"] == "field" and info["plan"]["most_blocks"] == 2
    lines = open_scan_store(store)["displacement"][:].mean(axis=1)
    assert (np.abs(np.diff(lines, axis=1)) > 1.0).sum(axis=1).max() == 1
    one = make_store(tmp_path / "one", frames)
    assert register_store(one, get_method("phase", max_blocks=1))["displacement"] == "profile"


@pytest.mark.parametrize("seed", range(200, 205))
def test_smooth_scans_get_no_jumps(tmp_path, seed):
    sim = simulate(SimulationParams.randomised(seed, frames=6, height=128, width=96))
    store = make_store(tmp_path, sim.frames)
    info = register_store(store, get_method("phase"))
    assert info["displacement"] == "profile" and "frames_with_jumps" not in info["plan"]
    assert open_scan_store(store)["displacement"].shape == (6, 128)


def test_smooth_scan_is_bit_identical_with_and_without_jump_detection(tmp_path, small_sim):
    arrays = []
    for jumps_on in (True, False):
        store = make_store(tmp_path / str(jumps_on), small_sim.frames, chunk_frames=5)
        register_store(store, get_method("phase", jumps=jumps_on))
        group = open_scan_store(store)
        arrays.append({k: get_array(group, k)[:] for k in ("registered_even", "merged", "displacement")})
    for key in arrays[0]:
        np.testing.assert_array_equal(arrays[0][key], arrays[1][key], err_msg=key)


def test_jitter_chunked_equals_whole(tmp_path, jitter_sim):
    frames = jitter_sim.frames[:5]
    results = []
    for chunk in (1, 2, 5):
        store = make_store(tmp_path / str(chunk), frames, chunk_frames=chunk)
        register_store(store, get_method("phase"))
        group = open_scan_store(store)
        assert group["displacement"].chunks == (chunk, 192, 80)
        results.append({k: get_array(group, k)[:] for k in ("registered_even", "merged", "displacement")})
    for other in results[1:]:
        for key in other:
            np.testing.assert_array_equal(other[key], results[0][key], err_msg=key)


def test_the_field_serves_apply_displacement_and_evaluate(tmp_path, jitter_params):
    paths = write_simulation(tmp_path / "sim", jitter_params)
    truth = zarr.open_group(paths.truth, mode="r")
    assert truth["displacement"].shape == (8, 192, 80)
    assert tuple(truth["displacement"].metadata.dimension_names) == ("t", "y", "x")
    frames = np.load(paths.scan)
    store = make_store(tmp_path / "reg", frames, chunk_frames=4)
    register_store(store, get_method("phase"))
    field = open_scan_store(store)["displacement"][:]

    warped = apply_displacement_store(store, paths.scan, tmp_path / "warped.npy")
    assert warped["displacement_shape"] == [8, 192, 80]
    np.testing.assert_array_equal(np.load(tmp_path / "warped.npy"), apply_displacement(frames, field))

    scores = score_store(store, paths.truth)
    assert scores["disp_rms_px"] is not None and scores["disp_rms_px"] < 2.0, scores["disp_rms_px"]
    assert scores["ncc_truth"] > 0.9, scores["ncc_truth"]

    profile_store = make_store(tmp_path / "profile", frames, chunk_frames=4)
    register_store(profile_store, get_method("phase", jumps=False))
    profile_scores = score_store(profile_store, paths.truth)  # a profile is scored against the true field
    assert profile_scores["disp_rms_px"] > 5 * scores["disp_rms_px"]
    assert profile_scores["ncc_truth"] < scores["ncc_truth"]


def _stop_after_first_chunk(stage: str, done: int, total: int) -> None:
    """A progress callback that interrupts registration (as Ctrl-C would) once a chunk is written."""
    if stage == "register" and done >= 1:
        raise KeyboardInterrupt


def _uninterrupted_and_interrupted(tmp_path, frames):
    """Arrays of an uninterrupted phase registration, and a store whose registration stopped after a chunk."""
    want_store = make_store(tmp_path / "want", frames, chunk_frames=2)
    register_store(want_store, get_method("phase"))
    want = {k: get_array(open_scan_store(want_store), k)[:] for k in ("registered_even", "merged", "displacement")}
    store = make_store(tmp_path / "got", frames, chunk_frames=2)
    with pytest.raises(KeyboardInterrupt):
        register_store(store, get_method("phase"), progress=_stop_after_first_chunk)
    assert ChunkMarkers(store, "register").count() >= 1
    return want, store


def test_an_interrupted_field_registration_resumes_bit_identical(tmp_path, jitter_sim):
    want, store = _uninterrupted_and_interrupted(tmp_path, jitter_sim.frames[:6])
    assert open_scan_store(store)["displacement"].shape == (6, 192, 80)

    result = engine.register(store, get_method("phase"), overwrite=False)
    assert result.state == "resumed" and result.chunks_written <= 2
    group = open_scan_store(store)
    for key, value in want.items():
        np.testing.assert_array_equal(get_array(group, key)[:], value, err_msg=key)


def test_a_displacement_array_of_the_wrong_kind_is_replaced_on_resume(tmp_path, jitter_sim):
    """A partial run whose displacement array does not fit the plan's kind is redone from its first chunk."""
    want, store = _uninterrupted_and_interrupted(tmp_path, jitter_sim.frames[:6])
    group = zarr.open_group(store, mode="r+")
    group.create_array("displacement", shape=(6, 192), chunks=(2, 192), dtype="float32", overwrite=True)

    result = engine.register(store, get_method("phase"), overwrite=False)
    assert result.state == "resumed" and result.chunks_written == 3
    group = open_scan_store(store)
    for key, value in want.items():
        np.testing.assert_array_equal(get_array(group, key)[:], value, err_msg=key)


# -- the pieces ---------------------------------------------------------------------------------------


def _step_correlation(shifts: np.ndarray, reach: int, noise: float, seed: int) -> np.ndarray:
    """Synthetic per-line correlations peaking at ``shifts`` (integers) with Gaussian noise."""
    rng = np.random.default_rng(seed)
    lags = np.arange(-reach, reach + 1)[:, None]
    peaks = np.exp(-0.5 * ((lags - shifts[None, :]) / 1.2) ** 2)
    return 0.8 * peaks + noise * rng.standard_normal(peaks.shape)


def test_segmentation_finds_steps_and_keeps_a_flat_line_whole():
    shifts = np.repeat([3.0, 27.0, -6.0, -2.0], [20, 5, 30, 25])
    corr = _step_correlation(shifts, 40, 0.05, 0)
    starts = jumps.merge_blocks(corr, jumps.segment(jumps.line_shifts(corr)), jump_min=2.0)
    np.testing.assert_array_equal(jumps.refine_boundaries(corr, starts), [0, 20, 25, 55])
    np.testing.assert_allclose(jumps.block_shifts(corr, np.array([0, 20, 25, 55])), [3, 27, -6, -2], atol=0.3)

    flat = _step_correlation(np.full(80, 4.0), 40, 0.1, 1)
    flat[:, 40] = _step_correlation(np.array([-30.0]), 40, 0.1, 2)[:, 0]  # one bad line
    assert jumps.merge_blocks(flat, jumps.segment(jumps.line_shifts(flat)), jump_min=2.0).tolist() == [0]


def test_steps_below_jump_min_are_joined():
    corr = _step_correlation(np.repeat([3.0, 4.0], [30, 30]), 20, 0.02, 3)
    starts = jumps.segment(jumps.line_shifts(corr))
    assert jumps.merge_blocks(corr, starts, jump_min=2.0).tolist() == [0]
    assert jumps.merge_blocks(corr, starts, jump_min=0.5).tolist() == [0, 30]


def test_two_way_fit_separates_profile_and_offsets():
    profile = np.linspace(-1.0, 1.5, 9)
    offsets = np.array([0.0, 12.5, -30.25])
    shifts = profile[None, :] + offsets[:, None]
    shifts[1, 4] += 9.0  # one bad window
    weights = np.ones_like(shifts)
    weights[2, :3] = 0.0  # windows a block could not measure
    got_profile, got_offsets, window_weight, misfit = jumps.fit_offsets(shifts, weights, reference=0)
    np.testing.assert_allclose(got_offsets, offsets, atol=0.05)
    np.testing.assert_allclose(got_profile, profile, atol=0.05)
    assert window_weight.tolist() == [2, 2, 2, 3, 3, 3, 3, 3, 3]
    assert misfit.max() < 0.1
