"""Pixel size and frame interval stated in source files reach the store's ``physical`` attribute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import scipy.io
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.io import open_scan
from orpam_pipeline.io.inspect import inspect_file_report
from orpam_pipeline.io.scan_params import find_frame_interval
from orpam_pipeline.io.spec import ReadSpec
from orpam_pipeline.store.ingest import ingest
from tests.io.conftest import to_matlab, write_h5, write_mat73, write_tiff

STACK = np.random.default_rng(3).integers(0, 4000, size=(3, 8, 6)).astype(np.uint16)


def physical_of(path: Path, out: Path, spec: ReadSpec | None = None, **options: Any) -> dict[str, Any] | None:
    """Ingest ``path`` and return the store's ``physical`` attribute (None when absent)."""
    with open_scan(path, spec=spec) as source:
        store = ingest(source, out, **options).store
    return zarr.open_group(store, mode="r").attrs.asdict().get("physical")


def test_tiff_resolution_tags_in_centimetres(tmp_path):
    path = write_tiff(tmp_path / "s.tif", STACK, resolution=(2000, 4000), resolutionunit="CENTIMETER")
    phys = physical_of(path, tmp_path / "out")
    assert phys["pixel_um"] == {"y": 2.5, "x": 5.0}
    assert phys["found"]["pixel_um_x"] == {"value": 5.0, "from": "TIFF XResolution (ResolutionUnit centimeter)",
                                           "stored": 2000.0}  # fmt: skip
    assert "frame_interval_s" not in phys


@pytest.mark.parametrize("kwargs", [{}, {"resolution": (72, 72), "resolutionunit": "INCH"},
                                    {"resolution": (1, 1), "resolutionunit": "CENTIMETER"}])  # fmt: skip
def test_tiff_default_resolutions_are_not_a_pixel_size(tmp_path, kwargs):
    path = write_tiff(tmp_path / "s.tif", STACK, **kwargs)
    assert physical_of(path, tmp_path / "out") is None


def test_imagej_hyperstack_with_unit_and_frame_interval(tmp_path):
    meta = {"axes": "TYX", "unit": "\\u00B5m", "finterval": 50, "tunit": "ms", "spacing": 3.0}
    path = write_tiff(tmp_path / "s.tif", STACK, imagej=True, resolution=(2.0, 4.0), metadata=meta)
    phys = physical_of(path, tmp_path / "out")
    assert phys["pixel_um"] == {"y": 0.25, "x": 0.5} and phys["frame_interval_s"] == 0.05
    assert phys["found"]["frame_interval_s"]["from"] == "ImageJ finterval (ms)"
    assert phys["found"]["pixel_um_y"]["from"] == "ImageJ YResolution (unit µm)"


def test_ome_tiff_physical_size_and_time_increment(tmp_path):
    meta = {"axes": "TYX", "PhysicalSizeX": 2.5, "PhysicalSizeY": 2.5, "TimeIncrement": 0.5}
    path = write_tiff(tmp_path / "s.ome.tif", STACK, ome=True, metadata=meta)
    phys = physical_of(path, tmp_path / "out")
    assert phys["pixel_um"] == {"y": 2.5, "x": 2.5} and phys["frame_interval_s"] == 0.5
    assert phys["found"]["pixel_um_x"] == {"value": 2.5, "from": "OME PhysicalSizeX (µm)", "stored": "2.5"}


def test_hdf5_dataset_attributes_win_over_the_file_and_other_datasets(tmp_path):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("scan/data", data=STACK)
        ds.attrs.update(dx_um=2.0, dy_um=1.5, frame_interval_s=0.25)
        f.attrs["pixel_size_um"] = 9.0
        f.create_dataset("other", data=STACK).attrs["dt"] = 3.0
    phys = physical_of(path, tmp_path / "out", ReadSpec(variable="scan/data"))
    assert phys["pixel_um"] == {"y": 1.5, "x": 2.0} and phys["frame_interval_s"] == 0.25
    assert phys["found"]["pixel_um_x"]["from"] == "scan/data@dx_um"
    other = physical_of(path, tmp_path / "out2", ReadSpec(variable="other"))
    assert other["pixel_um"] == {"y": 9.0, "x": 9.0} and other["frame_interval_s"] == 3.0


def test_hdf5_file_attributes_and_a_frame_rate(tmp_path):
    path = write_h5(tmp_path / "s.h5", STACK)
    with h5py.File(path, "a") as f:
        f.attrs.update(pixel_size=3.0, fps=4)
    phys = physical_of(path, tmp_path / "out")
    assert phys["pixel_um"] == {"y": 3.0, "x": 3.0} and phys["frame_interval_s"] == 0.25
    assert phys["found"]["frame_interval_s"] == {"value": 0.25, "from": "@fps", "stored": 4}


def test_mat_v5_scan_params_struct(tmp_path):
    path = tmp_path / "s.mat"
    scipy.io.savemat(path, {"img": to_matlab(STACK.astype(np.float64)),
                            "scan_params": {"step_size_um": 2.5, "frame_rate_hz": 5.0}})  # fmt: skip
    phys = physical_of(path, tmp_path / "out")
    assert phys["pixel_um"] == {"y": 2.5, "x": 2.5} and phys["frame_interval_s"] == 0.2
    assert phys["found"]["frame_interval_s"]["from"] == "scan_params.frame_rate_hz"


def test_mat_v5_per_axis_steps_follow_matlab_order(tmp_path):
    path = tmp_path / "s.mat"
    scipy.io.savemat(path, {"img": to_matlab(STACK.astype(np.float64)), "dx_um": 2.0, "dy_um": 1.0})
    assert physical_of(path, tmp_path / "out")["pixel_um"] == {"y": 1.0, "x": 2.0}


def test_mat_v73_per_axis_steps_follow_matlab_order(tmp_path):
    variables = {"img": to_matlab(STACK.astype(np.float64)), "dx_um": np.array([[2.0]]),
                 "dy_um": np.array([[1.0]]), "dt_ms": np.array([[40.0]])}  # fmt: skip
    path = write_mat73(tmp_path / "s.mat", variables)
    phys = physical_of(path, tmp_path / "out")
    assert phys["pixel_um"] == {"y": 1.0, "x": 2.0} and phys["frame_interval_s"] == pytest.approx(0.04)


def test_transposed_on_ingest_swaps_the_pixel_size(tmp_path):
    path = write_tiff(tmp_path / "s.tif", STACK, resolution=(2000, 4000), resolutionunit="CENTIMETER")
    rows = physical_of(path, tmp_path / "rows", scan_lines="rows")
    assert rows["pixel_um"] == {"y": 5.0, "x": 2.5}
    assert rows["found"]["pixel_um_y"]["from"] == "TIFF XResolution (ResolutionUnit centimeter)"
    named = physical_of(path, tmp_path / "axes", ReadSpec(axes="txy"))
    assert named["pixel_um"] == rows["pixel_um"] and named["found"] == rows["found"]


def test_axes_that_put_a_stated_axis_elsewhere_record_no_pixel_size(tmp_path):
    path = write_h5(tmp_path / "s.h5", np.random.default_rng(0).normal(size=(2, 40, 8, 6)))
    with h5py.File(path, "a") as f:
        f["data"].attrs.update(dx_um=2.0, dy_um=1.0)
    assert physical_of(path, tmp_path / "tzyx", ReadSpec(axes="tzyx"))["pixel_um"] == {"y": 1.0, "x": 2.0}
    assert physical_of(path, tmp_path / "tyzx", ReadSpec(axes="tyzx")) is None  # the file's rows are read as depth


def test_given_pixel_size_wins_and_keeps_the_found_frame_interval(tmp_path):
    meta = {"axes": "TYX", "unit": "micron", "finterval": 0.5}
    path = write_tiff(tmp_path / "s.tif", STACK, imagej=True, resolution=(2.0, 2.0), metadata=meta)
    res = CliRunner().invoke(app, ["ingest", str(path), str(tmp_path / "out"), "--pixel-size", "7"])
    assert res.exit_code == 0, res.output
    phys = zarr.open_group(tmp_path / "out" / "s" / "scan.zarr", mode="r").attrs["physical"]
    assert phys["pixel_um"] == {"y": 7.0, "x": 7.0} and phys["frame_interval_s"] == 0.5
    assert set(phys["found"]) == {"frame_interval_s"}


def test_files_without_metadata_get_no_physical(tmp_path):
    for path in (write_h5(tmp_path / "s.h5", STACK), write_tiff(tmp_path / "s.tif", STACK)):
        assert physical_of(path, tmp_path / path.suffix[1:]) is None


def test_frames_directory_takes_the_first_files_pixel_size(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        write_tiff(folder / f"f{i}.tif", STACK[i], resolution=(4000, 4000), resolutionunit="CENTIMETER")
    assert physical_of(folder, tmp_path / "out")["pixel_um"] == {"y": 2.5, "x": 2.5}


def test_frame_interval_names_units_and_rates():
    assert find_frame_interval({"frame_interval_ms": 50}).value == 0.05
    assert find_frame_interval({"acq.frame_rate_khz": 0.5}).value == 0.002
    assert find_frame_interval({"a.dt": 4e-9}) is None  # a digitiser's sample interval, not a frame interval
    assert find_frame_interval({"fs": 250e6, "dt_um": 3}) is None


def test_inspect_shows_what_the_file_states(tmp_path):
    path = write_tiff(tmp_path / "s.tif", STACK, resolution=(2000, 4000), resolutionunit="CENTIMETER")
    stated = inspect_file_report(path)["stated"]
    assert stated["pixel_um"] == {"y": 2.5, "x": 5.0} and "frame_interval_s" not in stated
    assert inspect_file_report(write_tiff(tmp_path / "p.tif", STACK))["stated"] == {}
