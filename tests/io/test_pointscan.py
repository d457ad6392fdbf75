"""Point scans (``--positions``): a simulated A-line volume ``(T, Z, Y, X)`` written again point by point
(A-lines ``(N, Z)`` with jittered stage positions) must ingest to the frames the volume gives with
``--axes tzyx``, bit for bit, in every container and pattern; what cannot be a grid is one line."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.errors import OrpamError, ScanError
from orpam_pipeline.io import ReadSpec, open_scan
from orpam_pipeline.io.grid import GridError, build_grid
from orpam_pipeline.io.inspect import inspect_path
from orpam_pipeline.io.reduce import Reduction
from orpam_pipeline.io.scan_params import find_scan_params
from orpam_pipeline.options import ScanOptions
from orpam_pipeline.repair import repair_store
from orpam_pipeline.simulate import SimulationParams, write_simulation
from orpam_pipeline.simulate.raw import RawParams
from orpam_pipeline.store.ingest import ingest
from tests.io.conftest import write_mat73

FAST, SLOW = 2.5, 5.0
runner = CliRunner()


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The simulated ``(T, Z, Y, X)`` uint16 volume (3 frames of 32 x 16, 64 depth samples) and its file."""
    root = tmp_path_factory.mktemp("pointscan")
    sim = write_simulation(root, SimulationParams.randomised(5, frames=3, height=32, width=16),
                           raw=RawParams(depth_samples=64))  # fmt: skip
    return sim.scan, np.load(sim.scan)


@pytest.fixture(scope="module")
def reference(volume, tmp_path_factory) -> dict[str, np.ndarray]:
    """Frames and depth maps of the volume read with ``--axes tzyx``."""
    store = _ingest(volume[0], tmp_path_factory.mktemp("ref"), ReadSpec(axes="tzyx"))
    group = zarr.open_group(store, mode="r")
    return {"frames": group["frames/0"][:], "depth_map": group["depth_map/0"][:]}


def acquire(vol: np.ndarray, *, first: int = 1, unidirectional: bool = False, slow: int = 1, jitter: float = 0.1,
            frame_column: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The volume taken point by point: A-lines ``(N, Z)`` in acquisition order and stage positions ``(N, 2|3)``.

    Lines are the volume's columns in order (line ``x`` at slow position ``x``, or ``X - 1 - x`` when
    ``slow < 0``), swept along y toward increasing positions when ``first`` > 0 (then alternating unless
    ``unidirectional``); positions scatter by ``jitter`` of a step; frames repeat the pattern.
    """
    t_n, _, y_n, x_n = vol.shape
    order = []
    for t in range(t_n):
        for x in range(x_n):
            way = first if unidirectional else first * (-1) ** x
            order += [(t, y, x) for y in (range(y_n) if way > 0 else range(y_n - 1, -1, -1))]
    o = np.array(order)
    lines = vol[o[:, 0], :, o[:, 1], o[:, 2]]
    level = o[:, 2] if slow > 0 else x_n - 1 - o[:, 2]
    pos = np.stack([12.0 + FAST * o[:, 1], -4.0 + SLOW * level], axis=1)
    pos += jitter * np.random.default_rng(seed).uniform(-1, 1, pos.shape) * [FAST, SLOW]
    if frame_column:
        pos = np.concatenate([pos, o[:, :1].astype(np.float64)], axis=1)
    return lines, pos


def _ingest(path: Path, out: Path, spec: ReadSpec, **kw: object) -> Path:
    with open_scan(path, spec=spec) as source:
        return ingest(source, out, **kw).store  # type: ignore[arg-type]


def _group(path: Path, out: Path, spec: ReadSpec | None = None, **kw: object) -> zarr.Group:
    return zarr.open_group(_ingest(path, out, spec or ReadSpec(positions="pos_map"), **kw), mode="r")


def _same(group: zarr.Group, reference: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(group["frames/0"][:], reference["frames"])
    np.testing.assert_array_equal(group["depth_map/0"][:], reference["depth_map"])


# -- the grid ---------------------------------------------------------------------------------------


def _grid_of(shape: tuple[int, int, int], **kw: object) -> tuple:
    vol = np.zeros((shape[0], 2, shape[1], shape[2]))
    return acquire(vol, **kw)[1]


@pytest.mark.parametrize("kw, pattern, first_line", [
    ({}, "serpentine", "forward"),
    ({"first": -1}, "serpentine", "backward"),
    ({"slow": -1}, "serpentine", "forward"),
    ({"unidirectional": True}, "unidirectional", "forward"),
    ({"unidirectional": True, "first": -1, "slow": -1}, "unidirectional", "backward"),
    ({"jitter": 0.24}, "serpentine", "forward"),
])  # fmt: skip
def test_grid_puts_every_a_line_at_its_place(kw, pattern, first_line):
    t, y, x = 3, 9, 6
    grid = build_grid(_grid_of((t, y, x), **kw))
    assert (grid.frames, grid.rows, grid.cols) == (t, y, x)
    assert grid.pattern == pattern and grid.first_line == first_line and grid.frames_from == "repeats"
    assert grid.step == pytest.approx((FAST, SLOW), rel=0.02) and grid.fast == 0
    assert grid.slow_sign == kw.get("slow", 1)
    vol = np.arange(t * y * x, dtype=np.float64).reshape(t, 1, y, x) * np.ones((1, 2, 1, 1))
    lines = acquire(vol, **kw)[0][:, 0].astype(np.int64)
    assembled = np.empty(t * y * x, dtype=np.int64)
    for f in range(t):
        part = slice(grid.starts[f], grid.starts[f + 1])
        assembled[f * y * x + grid.flat[part]] = lines[part]
    np.testing.assert_array_equal(assembled.reshape(t, y, x), vol[:, 0])


def test_grid_finds_the_fast_axis_in_either_column_and_frames_from_an_index_column():
    pos = _grid_of((2, 8, 5))[:, ::-1]
    grid = build_grid(pos)
    assert grid.fast == 1 and grid.slow == 0 and (grid.rows, grid.cols, grid.frames) == (8, 5, 2)
    indexed = build_grid(_grid_of((4, 8, 5), frame_column=True))
    assert indexed.frames == 4 and indexed.frames_from == "frame index column"
    assert indexed.third_column == "frame index"
    timed = _grid_of((2, 8, 5))
    timed = np.concatenate([timed, np.cumsum(np.full((len(timed), 1), 0.37), axis=0)], axis=1)
    grid = build_grid(timed)
    assert grid.third_column == "time" and grid.frames == 2 and grid.frames_from == "repeats"


@pytest.mark.parametrize("change, message", [
    (lambda p: np.delete(p, [11, 50], axis=0), r"^2 grid positions of 2 frames have no A-line \(first: frame 0, fast index"),
    (lambda p: p[:-1], r"^1 grid position of 2 frames have no A-line \(first: frame 1"),
    (lambda p: np.where(np.arange(len(p))[:, None] == 13, p + [0.45 * FAST, 0], p), "lies 0.4. steps off the fast grid"),
    (lambda p: p[:7], "only 7 positions"),
    (lambda p: np.where(np.arange(len(p))[:, None] == 3, np.nan, p), "position 3 is not finite"),
    (lambda p: np.repeat(p, 2, axis=0), "do not change between most consecutive A-lines"),
    (lambda p: np.c_[p, np.arange(len(p)) % 7 * 3.0], "third column moves"),
])  # fmt: skip
def test_what_is_not_a_grid_is_one_line(change, message):
    with pytest.raises(GridError, match=message) as err:
        build_grid(change(_grid_of((2, 8, 5))))
    assert "\n" not in str(err.value)


def test_directions_must_alternate_or_repeat():
    pos = _grid_of((1, 8, 5))
    line = slice(2 * 8, 3 * 8)
    pos[line] = pos[line][::-1]  # the third line runs the same way as the second
    with pytest.raises(GridError, match=r"line directions \(\+ - - - \+\) neither alternate"):
        build_grid(pos)
    two = np.concatenate([_grid_of((1, 8, 5)), _grid_of((1, 8, 5), first=-1)])
    with pytest.raises(GridError, match="the lines of frame 1 run in other directions than those of frame 0"):
        build_grid(two)


# -- reading and ingest -----------------------------------------------------------------------------


def test_npz_point_scan_ingests_to_the_volume_frames(tmp_path, volume, reference):
    lines, pos = acquire(volume[1])
    np.savez(tmp_path / "ps.npz", raw_data=lines, pos_map=pos)
    group = _group(tmp_path / "ps.npz", tmp_path / "out")
    _same(group, reference)
    attrs = dict(group.attrs)
    assert attrs["conventions"]["first_line"] == "forward" and "warnings" not in attrs
    record = attrs["stages"]["ingest"]["params"]
    assert record["positions"] == "pos_map" and record["variable"] == "raw_data" and record["reader"] == "npz"
    point = attrs["source"]["point_scan"]
    assert point["pattern"] == "serpentine" and point["frames"] == 3 and point["frames_from"] == "repeats"
    assert point["step"] == pytest.approx([FAST, SLOW], rel=0.02) and point["found"] == {}
    assert "physical" not in attrs


def test_mat_v5_with_structs_fills_sampling_rate_and_pixel_size(tmp_path, volume, reference):
    lines, pos = acquire(volume[1], seed=3)
    scipy.io.savemat(tmp_path / "ps.mat", {
        "raw_data": lines.T,  # MATLAB users store A-lines as columns: (Z, N)
        "pos_map": pos, "scan_params": {"step_x_um": FAST, "step_y_um": SLOW, "n_lines": 16},
        "daq_params": {"fs": 250e6, "gain_db": 20.0},
    })  # fmt: skip
    group = _group(tmp_path / "ps.mat", tmp_path / "out")
    _same(group, reference)
    attrs = dict(group.attrs)
    assert attrs["physical"] == {"sampling_rate_mhz": 250.0, "pixel_um": {"y": FAST, "x": SLOW}}
    assert attrs["stages"]["ingest"]["params"]["map"]["sampling_rate_mhz"] == 250.0
    found = attrs["source"]["point_scan"]["found"]
    assert found["sampling_rate_mhz"] == {"value": 250.0, "from": "daq_params.fs", "stored": 250e6}
    assert attrs["source"]["point_scan"]["pixel_um"]["from"] == "scan_params.step_x_um, scan_params.step_y_um"
    given = ReadSpec(positions="pos_map", reduction=Reduction(sampling_rate=500.0, speed_of_sound=1500.0))
    physical = dict(_group(tmp_path / "ps.mat", tmp_path / "given", given).attrs)["physical"]
    assert physical["sampling_rate_mhz"] == 500.0 and physical["depth_um_per_sample"] == 3.0


def test_mat_v73_and_hdf5_with_a_units_attribute(tmp_path, volume, reference):
    lines, pos = acquire(volume[1], seed=4)
    path = tmp_path / "ps73.mat"
    write_mat73(path, {"raw_data": lines.T.copy(), "pos_map": pos})
    _same(_group(path, tmp_path / "o73"), reference)
    with h5py.File(tmp_path / "ps.h5", "w") as f:
        f.create_dataset("acq/alines", data=lines)
        f.create_dataset("acq/pos_map", data=pos / 1000.0).attrs["units"] = "mm"
        f.attrs["sampling_rate_hz"] = 250e6
    group = _group(tmp_path / "ps.h5", tmp_path / "oh5", ReadSpec(positions="acq/pos_map"))
    _same(group, reference)
    physical = dict(group.attrs)["physical"]
    assert physical["sampling_rate_mhz"] == 250.0
    assert physical["pixel_um"]["y"] == pytest.approx(FAST, rel=0.02)
    assert physical["pixel_um"]["x"] == pytest.approx(SLOW, rel=0.02)


@pytest.mark.parametrize("writer", ["npz", "mat-v5", "mat-v7.3"])
def test_a_lines_over_several_axes_count_in_the_file_order(tmp_path, volume, reference, writer):
    lines, pos = acquire(volume[1])
    n1 = 2 * 32  # two lines of 32 per row of the array: the A-line index spans (N1, N2)
    if writer == "npz":
        np.savez(tmp_path / "ps.npz", raw_data=lines.reshape(-1, n1, lines.shape[1]), pos_map=pos)
        path = tmp_path / "ps.npz"
    else:  # MATLAB counts column-major: A-line i1 + N1 * i2 is raw_data(i1, i2, :)
        mat = lines.reshape(-1, n1, lines.shape[1]).transpose(1, 0, 2)
        path = tmp_path / "ps.mat"
        if writer == "mat-v5":
            scipy.io.savemat(path, {"raw_data": mat, "pos_map": pos})
        else:
            write_mat73(path, {"raw_data": np.ascontiguousarray(mat), "pos_map": pos})
    _same(_group(path, tmp_path / "out"), reference)


def test_first_line_backward_slow_axis_decreasing_and_a_frame_index_column(tmp_path, volume, reference):
    lines, pos = acquire(volume[1], first=-1, slow=-1, frame_column=True)
    vol_back = np.ascontiguousarray(volume[1][:, :, ::-1])  # the same scene, lines swept the other way
    np.save(tmp_path / "back.npy", vol_back)
    ref = _group(tmp_path / "back.npy", tmp_path / "ref", ReadSpec(axes="tzyx"), first_line="backward")
    np.savez(tmp_path / "ps.npz", raw_data=acquire(vol_back, first=-1, slow=-1)[0], pos_map=pos)
    group = _group(tmp_path / "ps.npz", tmp_path / "out")
    _same(group, {"frames": ref["frames/0"][:], "depth_map": ref["depth_map/0"][:]})
    attrs = dict(group.attrs)
    assert attrs["conventions"]["first_line"] == "backward"
    assert attrs["source"]["point_scan"]["frames_from"] == "frame index column"
    assert attrs["source"]["point_scan"]["slow_direction"] == "decreasing"
    assert lines.shape == (3 * 32 * 16, 64)


def test_an_explicit_first_line_must_agree_with_the_positions(tmp_path, volume):
    lines, pos = acquire(volume[1][:1])
    np.savez(tmp_path / "ps.npz", raw_data=lines, pos_map=pos)
    with pytest.raises(ScanError, match="--first-line backward contradicts the positions") as err:
        _ingest(tmp_path / "ps.npz", tmp_path / "out", ReadSpec(positions="pos_map"), first_line="backward")
    assert "\n" not in str(err.value) and str(tmp_path / "ps.npz") in str(err.value)


def test_unidirectional_scan_warns_and_still_ingests(tmp_path, volume, reference):
    lines, pos = acquire(volume[1], unidirectional=True)
    np.savez(tmp_path / "ps.npz", raw_data=lines, pos_map=pos)
    group = _group(tmp_path / "ps.npz", tmp_path / "out")
    _same(group, reference)
    [warning] = dict(group.attrs)["warnings"]
    assert warning["code"] == "unidirectional-scan" and warning["stage"] == "ingest"
    assert "no backward lines" in warning["message"]


def test_missing_positions_and_mismatched_counts_are_one_line_naming_the_file(tmp_path, volume):
    lines, pos = acquire(volume[1])
    np.savez(tmp_path / "gap.npz", raw_data=np.delete(lines, [40, 41, 42], axis=0), pos_map=np.delete(pos, [40, 41, 42], axis=0))
    with pytest.raises(ScanError, match=r"gap.npz: positions 'pos_map': 3 grid positions of 3 frames have no A-line "
                                        r"\(first: frame 0, fast index") as err:  # fmt: skip
        open_scan(tmp_path / "gap.npz", spec=ReadSpec(positions="pos_map"))
    assert "\n" not in str(err.value)
    np.savez(tmp_path / "n.npz", raw_data=lines[:-1], pos_map=pos)
    with pytest.raises(ScanError, match=r"n.npz: no array holds the 1536 A-lines of positions 'pos_map'"):
        open_scan(tmp_path / "n.npz", spec=ReadSpec(positions="pos_map"))
    with pytest.raises(ScanError, match=r"n.npz: A-lines 'raw_data' of shape \(1535, 64\) do not match the 1536 "
                                        r"positions of 'pos_map'"):  # fmt: skip
        open_scan(tmp_path / "n.npz", spec=ReadSpec(positions="pos_map", variable="raw_data"))
    with pytest.raises(ScanError, match=r"n.npz: no array 'pos' in the file"):
        open_scan(tmp_path / "n.npz", spec=ReadSpec(positions="pos"))
    np.save(tmp_path / "one.npy", lines)
    with pytest.raises(ScanError, match="one.npy: a .npy file holds a single array"):
        open_scan(tmp_path / "one.npy", spec=ReadSpec(positions="pos_map"))


def test_only_the_a_lines_of_the_frames_asked_for_are_read(tmp_path, volume, reference):
    lines, pos = acquire(volume[1])
    np.savez(tmp_path / "ps.npz", raw_data=lines, pos_map=pos)
    with open_scan(tmp_path / "ps.npz", spec=ReadSpec(positions="pos_map")) as source:
        asked: list[tuple[int, int]] = []
        backend = source._backend
        block = backend.block
        backend.block = lambda axis, a, b: asked.append((a, b)) or block(axis, a, b)  # type: ignore[method-assign]
        frames = source.read(1, 2)
    per_frame = 32 * 16
    assert asked and all(per_frame <= a and b <= 2 * per_frame for a, b in asked)
    np.testing.assert_array_equal(frames, reference["frames"][1:2])


def test_options_that_do_not_apply_to_point_scans_are_refused():
    for kw, flag in (({"axes": "tzyx"}, "--axes"), ({"depth_axis": 1}, "--depth-axis"),
                     ({"scan_lines": "rows"}, "--scan-lines rows"), ({"reverse_backward": True}, "--reverse-backward")):  # fmt: skip
        with pytest.raises(OrpamError, match=f"--positions .*; {flag} does not apply"):
            ScanOptions(positions="pos_map", **kw)


def test_scan_params_by_name_and_unit():
    found = find_scan_params({"daq.Fs": 1.25, "scan@dx": 0.002, "scan.dy_mm": 0.004, "cfg.sampling_rate_MHz": 400,
                              "pos@units": "mm", "scan.step": "fine", "scan.stepsize": [5.0]})  # fmt: skip
    assert found["sampling_rate_mhz"].value == 400.0 and found["sampling_rate_mhz"].name == "cfg.sampling_rate_MHz"
    assert found["step_x_um"].value == 0.002 and found["step_y_um"].value == 4.0
    assert found["positions_unit_um"].value == 1000.0 and found["step_um"].value == 5.0
    assert find_scan_params({"a.fs": 2.5e9})["sampling_rate_mhz"].value == 2500.0
    assert find_scan_params({"a.fs": 2.5})["sampling_rate_mhz"].value == 2500.0


# -- repair, discovery, inspect and the command line -----------------------------------------------


def test_repair_rereads_a_damaged_chunk_from_the_point_scan(tmp_path, volume):
    lines, pos = acquire(volume[1], first=-1)
    np.savez(tmp_path / "ps.npz", raw_data=lines, pos_map=pos)
    store = _ingest(tmp_path / "ps.npz", tmp_path / "out", ReadSpec(positions="pos_map"), chunk_frames=1)
    before = zarr.open_group(store, mode="r")["frames/0"][:]
    chunk = store / "frames" / "0" / "c" / "1" / "0" / "0"
    chunk.write_bytes(b"\0" * 16)
    result = repair_store(store)
    assert result.chunks_recomputed and not result.remaining
    np.testing.assert_array_equal(zarr.open_group(store, mode="r")["frames/0"][:], before)


def test_inspect_names_the_positions_table_and_suggests_positions(tmp_path, volume):
    lines, pos = acquire(volume[1])
    scipy.io.savemat(tmp_path / "ps.mat", {"raw_data": lines.T, "pos_map": pos, "daq_params": {"fs": 250e6}})
    [scan] = inspect_path(tmp_path / "ps.mat")["scans"]
    assert scan["point_scan"]["positions"] == "pos_map" and scan["point_scan"]["alines"] == "raw_data"
    assert scan["point_scan"]["count"] == 1536 and scan["point_scan"]["pattern"] == "serpentine"
    assert scan["frames"] == {"frames": 3, "frame_shape": [32, 16], "depth": 64}
    assert scan["suggestion"]["options"] == {"positions": "pos_map"}
    assert scan["suggestion"]["command"] == f"orpam run {tmp_path / 'ps.mat'} OUT --positions pos_map"
    res = runner.invoke(app, ["inspect", str(tmp_path / "ps.mat")])
    assert res.exit_code == 0 and "point scan: positions table pos_map beside the 1536 A-lines raw_data" in res.output


def test_an_image_beside_a_table_that_gives_no_grid_is_inspected_as_usual(tmp_path, volume):
    image = volume[1][0, 32].astype(np.float32)
    table = np.random.default_rng(0).normal(size=(32, 2))
    np.savez(tmp_path / "img.npz", img=image, galvo=table)
    [scan] = inspect_path(tmp_path / "img.npz")["scans"]
    assert scan["point_scan"]["positions"] == "galvo" and "error" in scan["point_scan"]
    assert scan["suggestion"]["options"] == {"variable": "img"} and scan["axes"] is not None


def test_orpam_ingest_with_positions_on_a_directory(tmp_path, volume, reference):
    src = tmp_path / "lab"
    src.mkdir()
    lines, pos = acquire(volume[1])
    scipy.io.savemat(src / "a.mat", {"raw_data": lines, "pos_map": pos})
    np.savez(src / "b.npz", raw_data=lines, pos_map=pos)
    res = runner.invoke(app, ["ingest", str(src), str(tmp_path / "out"), "--positions", "pos_map"])
    assert res.exit_code == 0, res.output
    for name in ("a", "b"):
        _same(zarr.open_group(tmp_path / "out" / name / "scan.zarr", mode="r"), reference)
    res = runner.invoke(app, ["ingest", str(src / "a.mat"), str(tmp_path / "o2"), "--positions", "pos_map",
                              "--axes", "tzyx"])  # fmt: skip
    assert res.exit_code == 1 and "--axes does not apply" in res.output and "Traceback" not in res.output
