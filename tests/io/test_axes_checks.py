"""A wrong depth axis and an unnamed A-line volume are caught as warnings; MAP scans raise none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from orpam_pipeline.checks import recorded_warnings
from orpam_pipeline.checks.axes import OSCILLATING, oscillation_score
from orpam_pipeline.io import ReadSpec, open_scan
from orpam_pipeline.simulate import SimulationParams, simulate
from orpam_pipeline.simulate.raw import RawParams, RawVolumes
from orpam_pipeline.store.ingest import ingest


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    """One simulated A-line volume (Z, Y, X) uint16."""
    return RawVolumes(SimulationParams.randomised(3, frames=1, height=64, width=48), RawParams(depth_samples=64)).frame(0)[0]


def _warnings(tmp_path: Path, array: np.ndarray, name: str, spec: ReadSpec = ReadSpec()) -> list:
    path = tmp_path / f"{name}.npy"
    np.save(path, array)
    with open_scan(path, spec=spec) as source:
        store = ingest(source, tmp_path / "out").store
    return recorded_warnings(zarr.open_group(store, mode="r"))


def test_right_axes_raise_nothing(tmp_path, volume):
    assert _warnings(tmp_path, volume, "right", ReadSpec(axes="zyx")) == []
    assert _warnings(tmp_path, volume, "alias", ReadSpec(depth_axis=0)) == []


@pytest.mark.parametrize("spec", [ReadSpec(axes="yzx"), ReadSpec(axes="yxz"), ReadSpec(depth_axis=2)])
def test_a_wrong_depth_axis_is_suspect(tmp_path, volume, spec):
    [finding] = _warnings(tmp_path, volume, "wrong", spec)
    assert finding.code == "depth-axis-suspect" and finding.stage == "ingest"
    assert "--axes" in finding.message and "axis 0" in finding.message and "(64, 64, 48)" in finding.message


def test_a_depth_axis_without_signal_is_suspect(tmp_path):
    smooth = np.random.default_rng(0).random((48, 40, 36)).cumsum(axis=0)  # no carrier along any axis
    [finding] = _warnings(tmp_path, smooth, "smooth", ReadSpec(axes="zyx"))
    assert finding.code == "depth-axis-suspect" and "no oscillating" in finding.message


@pytest.mark.parametrize(("order", "axis", "suggest"), [((0, 1, 2), 0, "zyx"), ((1, 2, 0), 2, "yxz")])
def test_an_unnamed_volume_asks_for_axes(tmp_path, volume, order, axis, suggest):
    [finding] = _warnings(tmp_path, np.ascontiguousarray(volume.transpose(order)), "vol")
    assert finding.code == "axes-unnamed"
    assert f"axis {axis} oscillates" in finding.message and f"--axes {suggest}" in finding.message


@pytest.mark.parametrize("seed", range(4))
def test_map_scans_raise_no_false_alarm(tmp_path, seed):
    frames = simulate(SimulationParams.randomised(seed, frames=48, height=64, width=64)).frames
    assert _warnings(tmp_path, frames, f"map{seed}") == []
    scores = [oscillation_score(np.moveaxis(frames, a, -1).reshape(-1, frames.shape[a])) for a in range(3)]
    assert max(scores) < OSCILLATING / 2


def test_short_axes_are_not_judged():
    assert oscillation_score(np.ones((10, 16))) is None


def test_a_resumed_ingest_still_judges_every_frame(tmp_path, volume):
    from orpam_pipeline.repair import _remove_chunk, _reopen_stage
    from orpam_pipeline.checks import WARNINGS_ATTR

    path = tmp_path / "vol.npy"
    np.save(path, volume)
    with open_scan(path) as source:
        store = ingest(source, tmp_path / "out", chunk_frames=8).store
    group = zarr.open_group(store, mode="r+")
    group.attrs[WARNINGS_ATTR] = []
    _remove_chunk(store, "frames/0", 3)
    _reopen_stage(group, store, "ingest", {3})
    with open_scan(path) as source:
        result = ingest(source, tmp_path / "out", chunk_frames=8)
    assert result.state == "resumed" and result.chunks_written == 1
    assert [w.code for w in recorded_warnings(zarr.open_group(store, mode="r"))] == ["axes-unnamed"]
