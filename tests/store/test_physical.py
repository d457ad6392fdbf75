"""--pixel-size and --frame-interval: recorded in the store and the report, part of the ingest parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.options import ScanOptions


def test_pixel_size_and_frame_interval_reach_the_store_and_the_report(tmp_path):
    np.save(tmp_path / "s.npy", np.random.default_rng(0).random((3, 32, 16), dtype=np.float32))
    runner = CliRunner()
    args = ["run", str(tmp_path / "s.npy"), str(tmp_path / "out"), "--method", "none", "--json"]
    res = runner.invoke(app, [*args, "--pixel-size", "2.5", "--frame-interval", "0.5"])
    assert res.exit_code == 0, res.output
    group = zarr.open_group(tmp_path / "out" / "s" / "scan.zarr", mode="r")
    assert group.attrs["physical"] == {"pixel_um": {"y": 2.5, "x": 2.5}, "frame_interval_s": 0.5}
    report = json.loads((tmp_path / "out" / "s" / "report.json").read_text())
    assert report["physical"]["space_unit"] == "micrometer" and report["physical"]["time_unit"] == "second"
    res = runner.invoke(app, [*args, "--pixel-size", "3"])  # another scale is another result's metadata
    assert res.exit_code == 1 and "scale" in res.output and "--overwrite" in res.output
    res = runner.invoke(app, ["run", str(tmp_path / "s.npy"), str(tmp_path / "plain"), "--method", "none"])
    plain = json.loads((tmp_path / "plain" / "s" / "report.json").read_text())["physical"]
    assert plain == {"pixel_um": None, "frame_interval_s": None, "space_unit": "pixel", "time_unit": "frame"}


def test_pixel_size_forms():
    assert ScanOptions(pixel_size="2.5,3").scale() == {"pixel_um": {"y": 2.5, "x": 3.0}}
    with pytest.raises(OrpamError, match="--pixel-size"):
        ScanOptions(pixel_size="-1").scale()
    with pytest.raises(OrpamError, match="--frame-interval"):
        ScanOptions(frame_interval=0).scale()
