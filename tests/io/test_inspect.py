"""``orpam inspect``: arrays in the user's order, what the readers do, the axes guess and the suggested
command, on .npy, MATLAB v5, HDF5, a 4-D volume with an oscillating depth axis and a directory."""

from __future__ import annotations

import json
import tracemalloc

import h5py
import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.io.axes_guess import depth_score
from orpam_pipeline.io.inspect import inspect_path


@pytest.fixture(scope="module")
def frames(small_sim) -> np.ndarray:
    return np.asarray(small_sim.frames[:5])


def volume(frames: np.ndarray, depth: int = 160) -> np.ndarray:
    """``(T, Z, Y, X)`` raw A-lines: each MAP pixel times a band-pass pulse along depth, plus noise."""
    z = np.arange(depth)
    pulse = np.exp(-(((z - depth / 2) / 10.0) ** 2)) * np.sin(2 * np.pi * z / 7.0)
    vol = frames[:, None] * pulse[None, :, None, None]
    return (vol + np.random.default_rng(0).normal(0, 0.01, vol.shape)).astype(np.float32)


def only_scan(result: dict) -> dict:
    [scan] = result["scans"]
    return scan


def test_a_plain_numpy_scan_needs_no_options(tmp_path, frames):
    np.save(tmp_path / "s.npy", frames)
    scan = only_scan(inspect_path(tmp_path / "s.npy"))
    assert scan["format"] == "npy" and scan["order"] == "numpy"
    [array] = scan["arrays"]
    assert array["shape"] == list(frames.shape) and array["dtype"] == "float32"
    assert array["range"] == pytest.approx([float(frames.min()), float(frames.max())]) and array["range_from"] == "all values"
    assert scan["reading"] == {"ok": True, "reader": "npy", "variable": None, "frames": 5,
                               "frame_shape": list(frames.shape[1:]), "depth_axis": None}  # fmt: skip
    assert scan["axes"]["letters"] == "tyx" and scan["axes"]["lines"] == "columns"
    assert scan["frames"] == {"frames": 5, "frame_shape": list(frames.shape[1:]), "depth": None}
    assert scan["suggestion"]["options"] == {}
    assert scan["suggestion"]["command"] == f"orpam run {tmp_path / 's.npy'} OUT"


def test_lines_stored_as_rows_suggest_scan_lines_rows(tmp_path, frames):
    np.save(tmp_path / "r.npy", frames.transpose(0, 2, 1))
    scan = only_scan(inspect_path(tmp_path / "r.npy"))
    assert scan["axes"]["letters"] == "txy" and scan["axes"]["lines"] == "rows"
    assert scan["axes"]["comb_between_rows"] > 10 * scan["axes"]["comb_between_columns"]
    assert scan["suggestion"]["options"] == {"scan_lines": "rows"}
    assert scan["suggestion"]["command"].endswith("OUT --scan-lines rows")
    assert scan["frames"]["frame_shape"] == list(frames.shape[1:])


def test_matlab_v5_is_shown_in_matlab_order_with_its_struct_metadata(tmp_path, frames):
    scipy.io.savemat(tmp_path / "lab.mat", {"img": np.moveaxis(frames, 0, -1), "dx": 1.5,
                                            "params": {"fs": 2.5e8, "step_um": 2.0, "operator": "A. N."}})  # fmt: skip
    scan = only_scan(inspect_path(tmp_path / "lab.mat"))
    assert scan["format"] == "mat-v5" and scan["order"] == "matlab"
    assert [a["name"] for a in scan["arrays"]] == ["img"] and scan["arrays"][0]["shape"] == [*frames.shape[1:], 5]
    assert scan["arrays"][0]["dtype"] == "single"
    assert scan["metadata"] == {"dx": 1.5, "params.fs": 2.5e8, "params.step_um": 2.0, "params.operator": "A. N."}
    assert scan["physical"] == ["dx", "params.fs", "params.step_um"]
    assert scan["axes"]["letters"] == "yxt" and scan["suggestion"]["options"] == {}
    assert scan["reading"]["frames"] == 5 and scan["reading"]["variable"] == "img"


def test_matlab_lines_as_rows(tmp_path, frames):
    scipy.io.savemat(tmp_path / "rows.mat", {"img": np.moveaxis(frames.transpose(0, 2, 1), 0, -1)})
    scan = only_scan(inspect_path(tmp_path / "rows.mat"))
    assert scan["axes"]["letters"] == "xyt" and scan["suggestion"]["options"] == {"scan_lines": "rows"}


def test_hdf5_attributes_and_several_datasets(tmp_path, frames):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["acq/scan"] = frames
        f["acq/scan"].attrs["pixel_size_um"] = 2.5
        f["acq/reference"] = frames[:2] * 2
        f["acq/laser_rate"] = 10000.0
        f.attrs["operator"] = "lab"
    scan = only_scan(inspect_path(tmp_path / "d.h5"))
    assert {a["name"] for a in scan["arrays"]} == {"acq/scan", "acq/reference"}
    assert scan["metadata"] == {"@operator": "lab", "acq/scan@pixel_size_um": 2.5, "acq/laser_rate": 10000.0}
    assert set(scan["physical"]) == {"acq/scan@pixel_size_um", "acq/laser_rate"}
    assert not scan["reading"]["ok"] and "--variable" in scan["reading"]["error"]
    assert scan["suggestion"]["options"] == {"variable": "acq/scan"}
    assert "--variable acq/scan" in scan["suggestion"]["command"]
    assert scan["axes"]["letters"] == "tyx"


@pytest.mark.parametrize("kind", ["npy", "mat"])
def test_a_4d_volume_with_an_oscillating_depth_axis(tmp_path, frames, kind):
    vol = volume(frames)
    if kind == "npy":
        np.save(tmp_path / "v.npy", vol)
        path, letters, depth_axis = tmp_path / "v.npy", "tzyx", 1
    else:
        scipy.io.savemat(tmp_path / "v.mat", {"raw": np.transpose(vol, (1, 2, 3, 0))})  # MATLAB (Z, Y, X, T)
        path, letters, depth_axis = tmp_path / "v.mat", "zyxt", 1
    scan = only_scan(inspect_path(path))
    assert not scan["reading"]["ok"] and "depth" in scan["reading"]["error"]
    assert scan["axes"]["letters"] == letters
    scores = scan["axes"]["depth_scores"]
    assert max(s for s in scores if s is not None) == scores[letters.index("z")] > 100
    assert scan["frames"] == {"frames": 5, "frame_shape": list(frames.shape[1:]), "depth": 160}
    assert scan["suggestion"]["options"] == {"axes": letters, "depth_axis": depth_axis}
    assert scan["suggestion"]["command"].endswith(f"OUT --axes {letters}")
    assert scan["suggestion"]["equivalent"].endswith(f"OUT --depth-axis {depth_axis}")


def test_a_volume_with_lines_as_rows_names_every_axis(tmp_path, frames):
    np.save(tmp_path / "v.npy", volume(frames.transpose(0, 2, 1)))
    scan = only_scan(inspect_path(tmp_path / "v.npy"))
    assert scan["axes"]["letters"] == "tzxy"
    assert scan["suggestion"]["options"] == {"axes": "tzxy", "depth_axis": 1, "scan_lines": "rows"}
    assert scan["suggestion"]["equivalent"].endswith("--depth-axis 1 --scan-lines rows")


def test_depth_score_tells_band_pass_from_image_axes():
    rng = np.random.default_rng(1)
    z = np.arange(256)
    band = np.sin(2 * np.pi * z / 9.0) * np.exp(-(((z - 128) / 20.0) ** 2))
    assert depth_score(band[None] * rng.random((16, 1)) + rng.normal(0, 0.01, (16, 256))) > 50
    assert depth_score(rng.normal(size=(16, 256))) < 3
    smooth = np.cumsum(rng.normal(size=(16, 256)), axis=1)
    assert depth_score(smooth) < 3


def test_a_directory_lists_every_scan_with_a_command(tmp_path, frames):
    root = tmp_path / "lab"
    (root / "session").mkdir(parents=True)
    for i, frame in enumerate(frames):
        np.save(root / "session" / f"f{i}.npy", frame.T)
    np.save(root / "stack.npy", frames)
    result = inspect_path(root)
    assert result["kind"] == "directory"
    scans = {s["name"]: s for s in result["scans"]}
    assert set(scans) == {"session", "stack"}
    session = scans["session"]
    assert session["files"] == 5 and session["axes"]["letters_per_file"] == "xy"
    assert session["suggestion"]["command"] == f"orpam run {root / 'session'} OUT --scan-lines rows"
    assert session["frames"]["frames"] == 5 and session["first_file"]["arrays"][0]["shape"] == list(frames.shape[1:][::-1])
    assert scans["stack"]["suggestion"]["options"] == {}
    assert "command" not in result, "the scans need different options"


def test_the_cli_prints_and_dumps_json(tmp_path, frames):
    np.save(tmp_path / "s.npy", frames.transpose(0, 2, 1))
    runner = CliRunner()
    res = runner.invoke(app, ["inspect", str(tmp_path / "s.npy")], terminal_width=300)
    assert res.exit_code == 0, res.output
    assert "axes (guess, in the file's order): txy" in res.output and "--scan-lines rows" in res.output
    res = runner.invoke(app, ["inspect", str(tmp_path / "s.npy"), "--json"])
    assert json.loads(res.stdout)["command"].endswith("--scan-lines rows")
    res = runner.invoke(app, ["inspect", str(tmp_path / "missing.npy")])
    assert res.exit_code == 1 and res.output.count("\n") == 1


def test_inspect_reads_a_bounded_sample(tmp_path):
    big = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(64, 512, 512))
    big[:] = np.random.default_rng(0).random((1, 512, 512), dtype=np.float32)
    del big
    tracemalloc.start()
    scan = only_scan(inspect_path(tmp_path / "big.npy"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert scan["arrays"][0]["range_from"].startswith("a sample of")
    assert peak < 24 * 2**20, f"peak {peak / 2**20:.0f} MiB for a 64 MiB file"


@pytest.mark.parametrize("fmt", ["npy", "npz", "tiff", "hdf5", "mat-v5", "mat-v7.3"])
@pytest.mark.parametrize("rows", [False, True])
def test_every_format_in_the_users_order(tmp_path, frames, fmt, rows):
    from tests.io.conftest import to_matlab, write_h5, write_mat5, write_mat73, write_npz, write_tiff

    data = frames.transpose(0, 2, 1) if rows else frames
    path = {
        "npy": lambda: (np.save(tmp_path / "s.npy", data), tmp_path / "s.npy")[1],
        "npz": lambda: write_npz(tmp_path / "s.npz", data),
        "tiff": lambda: write_tiff(tmp_path / "s.tif", data),
        "hdf5": lambda: write_h5(tmp_path / "s.h5", data),
        "mat-v5": lambda: write_mat5(tmp_path / "s.mat", data),
        "mat-v7.3": lambda: write_mat73(tmp_path / "s.mat", {"img": to_matlab(data)}, {"img": "single"}),
    }[fmt]()
    scan = only_scan(inspect_path(path))
    matlab = fmt.startswith("mat")
    assert scan["order"] == ("matlab" if matlab else "numpy")
    assert scan["scan"]["shape"] == list(to_matlab(data).shape if matlab else data.shape)
    conventional = "yxt" if matlab else "tyx"
    swapped = conventional.translate(str.maketrans("xy", "yx"))
    assert scan["axes"]["letters"] == (swapped if rows else conventional)
    assert scan["suggestion"]["options"] == ({"scan_lines": "rows"} if rows else {})
    assert scan["reading"]["ok"] and scan["reading"]["frames"] == 5
    assert scan["frames"]["frame_shape"] == list(frames.shape[1:])
