"""Every bad input is a one-line ScanError naming the offending file, raised before big allocations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from orpam_pipeline.errors import ScanError
from orpam_pipeline.io import open_scan, sha256_file

from .conftest import to_matlab, write_h5, write_mat5, write_mat73, write_npy, write_npz, write_tiff

STACK = np.random.default_rng(5).normal(size=(6, 16, 18))


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _npy_header(path: Path, shape: tuple[int, ...], descr: str = "<f4", payload: bytes = b"") -> Path:
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(payload)
    return path


def _empty(suffix: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / f"empty{suffix}"
        p.write_bytes(b"")
        return p

    return make


def _text(suffix: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / f"text{suffix}"
        p.write_text("this is a lab notebook entry, not data\n" * 10)
        return p

    return make


def _h5_corrupt_last_chunk(d: Path) -> Path:
    """Opens fine and the header is intact: only reading the last frame shows the damage."""
    p = write_h5(d / "badchunk.h5", STACK, chunks=(1, 16, 18), compression="gzip")
    with h5py.File(p, "r") as f:
        info = f["data"].id.get_chunk_info(STACK.shape[0] - 1)
    with open(p, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\x00" * info.size)
    return p


def _sparse_h5(d: Path) -> Path:
    p = d / "huge.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("data", shape=(2, 20000, 20000), dtype="f4", chunks=(1, 64, 64))
    return p


def _complex_v73(d: Path) -> Path:
    p = d / "cplx73.mat"
    write_mat73(p, {"img": np.zeros((4, 5, 2))})
    with h5py.File(p, "a") as f:
        del f["img"]
        dt = np.dtype([("real", "<f8"), ("imag", "<f8")])
        ds = f.create_dataset("img", shape=(2, 5, 4), dtype=dt)
        ds.attrs["MATLAB_class"] = np.bytes_("double")
    return p


CASES: dict[str, tuple[Callable[[Path], Path], dict, str]] = {
    "empty-npy": (_empty(".npy"), {}, "empty file (0 bytes)"),
    "empty-npz": (_empty(".npz"), {}, "empty file (0 bytes)"),
    "empty-tif": (_empty(".tif"), {}, "empty file (0 bytes)"),
    "empty-h5": (_empty(".h5"), {}, "empty file (0 bytes)"),
    "empty-mat": (_empty(".mat"), {}, "empty file (0 bytes)"),
    "text-npy": (_text(".npy"), {}, "not a NumPy .npy file"),
    "text-npz": (_text(".npz"), {}, "not a .npz"),
    "text-tif": (_text(".tiff"), {}, "not a readable TIFF"),
    "text-h5": (_text(".hdf5"), {}, "cannot open as HDF5"),
    "text-mat": (_text(".mat"), {}, "not a MATLAB .mat file"),
    "trunc-npy": (lambda d: _truncate(write_npy(d / "t.npy", STACK), 0.6), {}, "truncated"),
    "trunc-npz": (lambda d: _truncate(write_npz(d / "t.npz", STACK), 0.6), {}, "t.npz"),
    "trunc-tif": (lambda d: _truncate(write_tiff(d / "t.tif", STACK), 0.6), {}, "t.tif"),
    "trunc-h5": (lambda d: _truncate(write_h5(d / "t.h5", STACK), 0.6), {}, "t.h5"),
    "trunc-mat5": (lambda d: _truncate(write_mat5(d / "t.mat", STACK), 0.9), {}, "cannot read variable 'img'"),
    "trunc-mat73": (lambda d: _truncate(write_mat73(d / "t.mat", {"img": to_matlab(STACK)}), 0.6), {}, "t.mat"),
    "corrupt-last-chunk-h5": (_h5_corrupt_last_chunk, {}, "cannot read frame 5"),
    "1d-npy": (lambda d: write_npy(d / "v.npy", np.arange(10.0)), {}, "1-D array of shape (10,)"),
    "1d-h5": (lambda d: write_h5(d / "v.h5", np.arange(10.0)), {}, "no 2-D/3-D numeric array"),
    "0d-npy": (lambda d: write_npy(d / "z.npy", np.float64(3)), {}, "0-D array"),
    "zero-axis-npy": (lambda d: write_npy(d / "z.npy", np.zeros((0, 4, 5))), {}, "zero-length axis"),
    "zero-axis-h5": (lambda d: write_h5(d / "z.h5", np.zeros((3, 0, 5))), {"variable": "data"}, "zero-length axis"),
    "one-column": (lambda d: write_npy(d / "c.npy", np.zeros((3, 8, 1))), {}, "only 1 column(s)"),
    "complex-npy": (lambda d: write_npy(d / "c.npy", STACK.astype(complex)), {}, "unsupported dtype complex128"),
    "bool-npy": (lambda d: write_npy(d / "b.npy", STACK > 0), {}, "unsupported dtype bool"),
    "object-npy": (lambda d: _npy_header(d / "o.npy", (2, 3, 4), "|O"), {}, "unsupported dtype object"),
    "complex-h5": (lambda d: write_h5(d / "c.h5", STACK.astype(complex)), {}, "unsupported dtype complex128"),
    "complex-mat5": (lambda d: write_mat5(d / "c.mat", STACK.astype(complex)), {}, "unsupported dtype complex128"),
    "complex-mat73": (_complex_v73, {}, "unsupported dtype complex"),
    "string-npz": (lambda d: write_npz(d / "s.npz", np.array([["a", "b"], ["c", "d"]])), {}, "unsupported dtype <U1"),
    "rgb-tif": (lambda d: write_tiff(d / "rgb.tif", np.zeros((8, 9, 3), np.uint8), photometric="rgb"), {}, "multi-sample"),
    "huge-frame-npy": (lambda d: _npy_header(d / "big.npy", (1, 20000, 20000)), {}, "truncated: header promises"),
    "huge-frame-h5": (_sparse_h5, {}, "exceeds the limit of 2**28 pixels"),
    "mat-missing-variable": (lambda d: write_mat5(d / "m.mat", STACK), {"variable": "nope"}, "no variable 'nope' in the file (has: img (16, 18, 6) double)"),
    "mat73-missing-variable": (lambda d: write_mat73(d / "m.mat", {"img": to_matlab(STACK)}), {"variable": "nope"}, "has: img (16, 18, 6) double"),
    "npz-missing-key": (lambda d: write_npz(d / "m.npz", STACK), {"variable": "nope"}, "no array 'nope'"),
    "npz-several": (lambda d: write_npz(d / "two.npz", STACK, other=STACK), {}, "pass --variable"),
    "h5-several": (lambda d: _two_h5(d), {}, "pass --variable"),
    "mat-several": (lambda d: write_mat5(d / "two.mat", STACK, other=to_matlab(STACK)), {}, "pass --variable"),
    "mat-cell": (lambda d: _cell_mat(d), {"variable": "c"}, "MATLAB class 'cell'"),
    "mat73-char": (lambda d: write_mat73(d / "ch.mat", {"s": np.ones((3, 4), np.uint16)}, {"s": "char"}), {"variable": "s"}, "MATLAB class 'char'"),
    "4d-no-depth": (lambda d: write_npy(d / "raw.npy", np.zeros((2, 3, 4, 5))), {}, "--depth-axis"),
    "5d": (lambda d: write_npy(d / "raw.npy", np.zeros((2, 2, 3, 4, 5))), {"depth_axis": 1}, "too many axes"),
    "2d-with-depth": (lambda d: write_npy(d / "f.npy", np.zeros((4, 5))), {"depth_axis": 0}, "already a frame"),
    "depth-out-of-range": (lambda d: write_npy(d / "f.npy", np.zeros((3, 4, 5))), {"depth_axis": 3}, "out of range"),
    "npy-with-variable": (lambda d: write_npy(d / "f.npy", STACK), {"variable": "x"}, "does not apply"),
    "missing-file": (lambda d: d / "gone.npy", {}, "cannot open"),
}


def _two_h5(d: Path) -> Path:
    p = write_h5(d / "two.h5", STACK)
    with h5py.File(p, "a") as f:
        f.create_dataset("grp/other", data=STACK[0])
    return p


def _cell_mat(d: Path) -> Path:
    p = d / "cell.mat"
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0], cell[0, 1] = np.zeros((3, 3)), "x"
    scipy.io.savemat(p, {"c": cell})
    return p


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_scan_error(tmp_path, case):
    make, kwargs, expected = CASES[case]
    path = make(tmp_path)
    before = sha256_file(path) if path.exists() else None
    with pytest.raises(ScanError) as err:
        with open_scan(path, **kwargs) as src:
            src.read(0, src.shape[0])
    msg = str(err.value)
    assert "\n" not in msg and "\r" not in msg
    assert path.name in msg
    assert err.value.path.name == path.name
    assert expected in msg, msg
    if before is not None:
        assert sha256_file(path) == before


def test_truncated_hdf5_can_look_like_hdf5(tmp_path):
    p = _truncate(write_mat73(tmp_path / "t.mat", {"img": to_matlab(STACK)}), 0.6)
    assert h5py.is_hdf5(p)
    with pytest.raises(ScanError, match="t.mat"):
        open_scan(p)


def test_truncated_mat5_passes_whosmat(tmp_path):
    p = _truncate(write_mat5(tmp_path / "t.mat", STACK), 0.9)
    assert scipy.io.whosmat(str(p))
    with pytest.raises(ScanError, match="t.mat"):
        open_scan(p)


@pytest.mark.parametrize("writer", [write_npy, write_h5, write_tiff])
def test_nan_frame_named_on_read(tmp_path, writer):
    data = STACK.astype(np.float32)
    data[3, 2, 2] = np.nan
    data[3, 0, 0] = np.inf
    data[5, 1, 1] = np.nan
    suffix = {write_npy: "npy", write_h5: "h5", write_tiff: "tif"}[writer]
    path = writer(tmp_path / f"nan.{suffix}", data)
    with open_scan(path) as src:
        np.testing.assert_array_equal(src.read(0, 3), data[:3])
        with pytest.raises(ScanError) as err:
            src.read(2, 6)
    assert str(err.value) == f"{path}: frame 3: 2 non-finite values (NaN/Inf)"


def test_float64_overflowing_float32_is_non_finite(tmp_path):
    data = np.ones((2, 3, 4))
    data[1, 0, 0] = 1e300
    with open_scan(write_npy(tmp_path / "o.npy", data)) as src:
        with pytest.raises(ScanError, match="frame 1: 1 non-finite"):
            src.read(0, 2)


def test_open_after_close_is_refused(tmp_path):
    src = open_scan(write_npy(tmp_path / "a.npy", STACK))
    src.close()
    with pytest.raises(ValueError):
        src.read(0, 1)


TRUNCATABLE = {
    "npy": lambda d: write_npy(d / "a.npy", STACK),
    "npz": lambda d: write_npz(d / "a.npz", STACK),
    "npz-compressed": lambda d: (np.savez_compressed(d / "a.npz", x=STACK), d / "a.npz")[1],
    "tif": lambda d: write_tiff(d / "a.tif", STACK.astype(np.float32)),
    "tif-zlib": lambda d: write_tiff(d / "a.tif", STACK.astype(np.float32), compression="zlib"),
    "tif-imagej": lambda d: write_tiff(d / "a.tif", STACK.astype(np.float32), imagej=True),
    "h5": lambda d: write_h5(d / "a.h5", STACK),
    "h5-chunked": lambda d: write_h5(d / "a.h5", STACK, chunks=(1, 16, 18), compression="gzip"),
    "mat5": lambda d: write_mat5(d / "a.mat", STACK),
    "mat5-compressed": lambda d: (scipy.io.savemat(d / "a.mat", {"img": to_matlab(STACK)}, do_compression=True), d / "a.mat")[1],
    "mat73": lambda d: write_mat73(d / "a.mat", {"img": to_matlab(STACK)}),
}


@pytest.mark.parametrize("fmt", list(TRUNCATABLE))
@pytest.mark.parametrize("keep", [0.2, 0.5, 0.8, 0.95])
def test_truncation_never_silent(tmp_path, fmt, keep):
    """A cut file either fails with a ScanError naming it or (cut in trailing padding) reads exactly."""
    path = _truncate(TRUNCATABLE[fmt](tmp_path), keep)
    try:
        with open_scan(path) as src:
            out = src.read(0, src.shape[0])
    except ScanError as err:
        assert path.name in str(err) and "\n" not in str(err)
    else:
        np.testing.assert_array_equal(out, STACK.astype(np.float32))
