"""--keep-volume: the depth profiles beside the MAP, and the MAP's registration applied to them."""

from __future__ import annotations

import json

import numpy as np
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.register.apply_displacement import apply_displacement


def test_keep_volume_stores_the_profiles_and_registers_them_like_the_map(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", str(tmp_path / "sim"), "--raw", "--frames", "3", "--size", "48", "32",
                              "--depth-samples", "48", "--seed", "8"])  # fmt: skip
    assert res.exit_code == 0, res.output
    args = ["run", str(tmp_path / "sim" / "scans"), str(tmp_path / "out"), "--axes", "tzyx", "--keep-volume", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    store = tmp_path / "out" / "sim-0008" / "scan.zarr"
    group = zarr.open_group(store, mode="r")
    volume, frames = group["volume/0"][:], group["frames/0"][:]
    assert volume.shape == (3, 48, 48, 32) and group["volume/0"].metadata.dimension_names == ("t", "z", "y", "x")
    np.testing.assert_allclose(volume.max(axis=1), frames, rtol=1e-5)  # the MAP is the profiles' maximum
    expected = apply_displacement(volume, group["displacement"][:], "forward")
    np.testing.assert_array_equal(group["volume_registered/0"][:], expected)
    np.testing.assert_array_equal(group["volume_registered/0"][..., 0::2], volume[..., 0::2])
    stages = group.attrs["stages"]
    assert stages["volume"]["complete"] and stages["volume_register"]["complete"]
    again = json.loads(runner.invoke(app, args).stdout)  # a rerun finds everything complete
    assert again["scans"][0]["status"] == "skipped"


def test_keep_volume_needs_a_depth_axis(tmp_path):
    np.save(tmp_path / "s.npy", np.random.default_rng(0).random((2, 16, 8), dtype=np.float32))
    res = CliRunner().invoke(app, ["run", str(tmp_path / "s.npy"), str(tmp_path / "out"), "--keep-volume"])
    assert res.exit_code == 1 and "--keep-volume needs A-line data" in res.output
