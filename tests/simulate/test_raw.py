"""``orpam simulate --raw``: A-line volumes whose envelope MAP is the simulated frames; end to end through
``orpam run --axes tzyx`` to a registered store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.simulate import SimulationParams, simulate, write_simulation
from orpam_pipeline.simulate.raw import RawParams
from orpam_pipeline.store.layout import store_arrays

P = SimulationParams.randomised(6, frames=4, height=64, width=48)
RAW = RawParams(depth_samples=64)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_raw_volumes_and_their_truth(tmp_path):
    paths = write_simulation(tmp_path, P, raw=RAW, chunk_frames=3)
    scan = np.load(paths.scan)
    assert scan.dtype == np.uint16 and scan.shape == (4, 64, 64, 48)
    assert abs(np.median(scan) - 32768) < 5
    truth = zarr.open_group(paths.truth, mode="r")
    clean = np.maximum(simulate(P.without_noise()).frames, 0)
    np.testing.assert_array_equal(truth["amplitude"][:], clean)
    ordinary = simulate(P)
    np.testing.assert_array_equal(truth["displacement"][:], ordinary.displacement)
    np.testing.assert_array_equal(truth["even_true"][:], ordinary.even_true)
    depth = truth["depth"][:]
    lo, hi = RAW.depth_range()
    assert lo - 1e-3 <= depth.min() and depth.max() <= hi + 1e-3 and depth.max() - depth.min() > 4
    attrs = dict(truth.attrs)
    assert attrs["scan_shape"] == [4, 64, 64, 48] and attrs["axes"] == "tzyx" and attrs["raw"]["carrier_mhz"] == 50.0
    again = write_simulation(tmp_path / "again", P, raw=RAW)
    assert np.load(again.scan).tobytes() == scan.tobytes()


def test_pulses_must_fit_in_depth():
    with pytest.raises(OrpamError, match="do not fit"):
        RawParams(depth_samples=24)


def test_run_on_a_raw_simulation_recovers_the_map_and_registers(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", str(tmp_path / "sim"), "--raw", "--frames", "4", "--size", "64", "48",
                              "--depth-samples", "64", "--seed", "6"])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["run", str(tmp_path / "sim" / "scans"), str(tmp_path / "out"), "--axes", "tzyx",
                              "--sampling-rate", "250", "--speed-of-sound", "1540", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    [scan] = json.loads(res.output)["scans"]
    assert scan["ok"] and scan["report"]["ncc_mean"] > scan["report"]["ncc_mean_unregistered"]
    group = zarr.open_group(tmp_path / "out" / "sim-0006" / "scan.zarr", mode="r")
    truth = zarr.open_group(tmp_path / "sim" / "truth" / "sim-0006.zarr", mode="r")
    score = ncc(group["frames/0"][:], truth["amplitude"][:])
    assert score >= 0.98, score
    assert {"frames", "depth_map", "registered_even", "merged", "displacement"} <= set(store_arrays(group))
    assert group.attrs["physical"]["depth_um_per_sample"] == pytest.approx(1540 / 250)
    assert not group.attrs.get("warnings"), group.attrs["warnings"]
