"""Every reader returns the stored values exactly as float32 (T, Y, X), lazily where it can."""

from __future__ import annotations

import numpy as np
import pytest

from orpam_pipeline.io import ReadSpec, open_scan, sha256_file
from orpam_pipeline.io.reduce import Reduction

from .conftest import WRITERS, to_matlab, write_h5, write_mat5, write_mat73, write_npy, write_tiff


@pytest.mark.parametrize("fmt", list(WRITERS))
@pytest.mark.parametrize("which", ["float", "int"])
def test_round_trip(tmp_path, fmt, which, float_stack, int_stack):
    arr = float_stack if which == "float" else int_stack
    path = WRITERS[fmt](tmp_path, arr)
    before = sha256_file(path)
    want = arr.astype(np.float32)
    with open_scan(path) as src:
        assert src.reader == fmt
        assert src.shape == arr.shape
        assert src.source_dtype == arr.dtype
        full = src.read(0, arr.shape[0])
        assert full.dtype == np.float32 and full.flags.c_contiguous
        np.testing.assert_array_equal(full, want)
        np.testing.assert_array_equal(src.read(1, 3), want[1:3])
        np.testing.assert_array_equal(src.read(arr.shape[0] - 1, arr.shape[0]), want[-1:])
        assert src.read(2, 2).shape == (0,) + arr.shape[1:]
        with pytest.raises(ValueError):
            src.read(0, arr.shape[0] + 1)
        prov = src.provenance()
    assert prov["files"][0]["sha256"] == before == sha256_file(path)
    assert prov["reader"] == fmt and prov["shape"] == list(arr.shape)


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_single_frame_file(tmp_path, fmt):
    frame = np.arange(30, dtype=np.float64).reshape(5, 6) - 7
    path = WRITERS[fmt](tmp_path, frame)
    with open_scan(path) as src:
        assert src.shape == (1, 5, 6)
        np.testing.assert_array_equal(src.read(0, 1)[0], frame.astype(np.float32))


def test_matlab_v73_matches_npy(tmp_path, float_stack):
    arr_yxt = to_matlab(float_stack)
    mat = write_mat73(tmp_path / "scan.mat", {"img": arr_yxt})
    npy = write_npy(tmp_path / "scan.npy", float_stack)
    with open_scan(mat) as a, open_scan(npy) as b:
        assert a.reader == "mat-v7.3" and a.variable == "img"
        assert a.source_shape == arr_yxt.shape[::-1]
        np.testing.assert_array_equal(a.read(0, 5), b.read(0, 5))
        np.testing.assert_array_equal(a.read(2, 4), b.read(2, 4))


def test_matlab_v5_matches_npy(tmp_path, float_stack):
    mat = write_mat5(tmp_path / "scan.mat", float_stack, fs=50.0, label="abc")
    npy = write_npy(tmp_path / "scan.npy", float_stack)
    with open_scan(mat) as a, open_scan(npy) as b:
        assert a.reader == "mat-v5" and a.variable == "img"
        assert a.source_shape == (6, 7, 5)
        np.testing.assert_array_equal(a.read(0, 5), b.read(0, 5))


def test_matlab_v73_2d_and_skipped_entries(tmp_path):
    frame = np.random.default_rng(2).normal(size=(4, 6))
    path = write_mat73(
        tmp_path / "f.mat",
        {"img": frame, "name": np.frombuffer(b"a\0b\0c\0", np.uint16).reshape(1, 3).copy(), "flag": np.ones((3, 3), np.uint8)},
        classes={"name": "char", "flag": "logical"},
    )
    import h5py

    with h5py.File(path, "a") as f:
        f.create_group("#refs#").create_dataset("a", data=np.zeros((8, 8)))
    with open_scan(path) as src:
        assert src.variable == "img" and src.shape == (1, 4, 6)
        np.testing.assert_array_equal(src.read(0, 1)[0], frame.astype(np.float32))


def test_named_variable(tmp_path, float_stack):
    path = write_mat5(tmp_path / "two.mat", float_stack, other=to_matlab(float_stack * 2))
    with open_scan(path, variable="other") as src:
        np.testing.assert_array_equal(src.read(0, 5), (float_stack * 2).astype(np.float32))
    h5 = tmp_path / "g.h5"
    import h5py

    with h5py.File(h5, "w") as f:
        f.create_dataset("grp/a", data=float_stack)
        f.create_dataset("grp/b", data=float_stack + 1)
    with open_scan(h5, variable="/grp/b") as src:
        assert src.variable == "grp/b"
        np.testing.assert_array_equal(src.read(0, 1), (float_stack[:1] + 1).astype(np.float32))


def test_fortran_npy_and_big_endian(tmp_path, float_stack):
    path = write_npy(tmp_path / "f.npy", np.asfortranarray(float_stack.astype(">f8")))
    with open_scan(path) as src:
        np.testing.assert_array_equal(src.read(0, 5), float_stack.astype(np.float32))


ABS = Reduction("abs")
"""max |x|: the MAP of earlier releases (``--map-method abs``); envelope is tested in test_reduce.py."""


def test_depth_axis_4d(tmp_path):
    rng = np.random.default_rng(3)
    raw = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)  # (T, Z, Y, X)
    want = np.abs(raw).max(axis=1)
    for path in (write_npy(tmp_path / "v.npy", raw), write_h5(tmp_path / "v.h5", raw)):
        with open_scan(path, spec=ReadSpec(depth_axis=1, reduction=ABS)) as src:
            assert src.shape == (3, 5, 6)
            np.testing.assert_array_equal(src.read(0, 3), want)
            np.testing.assert_array_equal(src.read(1, 2), want[1:2])
    mat = write_mat73(tmp_path / "v.mat", {"raw": np.moveaxis(raw, 0, -1).astype(np.float64)})
    with open_scan(mat, spec=ReadSpec(depth_axis=1, reduction=ABS)) as src:
        np.testing.assert_array_equal(src.read(0, 3), want)


def test_depth_axis_int_no_overflow(tmp_path):
    raw = np.array([[[-32768, 5], [3, -2]], [[7, 1], [-9, 0]]], dtype=np.int16)  # (Z, Y, X)
    with open_scan(write_npy(tmp_path / "v.npy", raw), spec=ReadSpec(depth_axis=0, reduction=ABS)) as src:
        assert src.shape == (1, 2, 2)
        np.testing.assert_array_equal(src.read(0, 1)[0], [[32768, 5], [9, 2]])


def test_tiff_hyperstack_depth(tmp_path):
    raw = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    path = write_tiff(tmp_path / "h.tif", raw, imagej=True, metadata={"axes": "TZYX"})
    with open_scan(path, spec=ReadSpec(depth_axis=1, reduction=ABS)) as src:
        np.testing.assert_array_equal(src.read(1, 2), raw[1:2].max(axis=1).astype(np.float32))


def test_h5_reads_only_requested_frames(tmp_path, float_stack):
    """A corrupted middle chunk does not stop reading the other frames: only they are touched."""
    path = write_h5(tmp_path / "c.h5", float_stack, chunks=(1, 6, 7), compression="gzip")
    import h5py

    with h5py.File(path, "r") as f:
        offset = f["data"].id.get_chunk_info(2).byte_offset
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 16)
    with open_scan(path) as src:
        np.testing.assert_array_equal(src.read(0, 2), float_stack[:2].astype(np.float32))
        np.testing.assert_array_equal(src.read(3, 5), float_stack[3:].astype(np.float32))
        with pytest.raises(Exception) as err:
            src.read(2, 3)
        assert "c.h5" in str(err.value) and "\n" not in str(err.value)


def test_tiff_reads_only_requested_pages(tmp_path, float_stack, monkeypatch):
    path = write_tiff(tmp_path / "s.tif", float_stack.astype(np.float32))
    import tifffile

    calls = []
    real = tifffile.TiffFile.asarray

    def spy(self, key=None, **kw):
        calls.append(list(key))
        return real(self, key=key, **kw)

    monkeypatch.setattr(tifffile.TiffFile, "asarray", spy)
    with open_scan(path) as src:
        calls.clear()
        src.read(2, 4)
    assert calls == [[2, 3]]


def test_provenance_is_json(tmp_path, float_stack):
    import json

    path = write_npy(tmp_path / "p.npy", float_stack)
    with open_scan(path) as src:
        prov = json.loads(json.dumps(src.provenance()))
    assert prov["files"] == [{"path": str(path.resolve()), "size": path.stat().st_size, "sha256": sha256_file(path)}]
    assert prov["source_dtype"] == "float64" and prov["source_shape"] == [5, 6, 7] and prov["variable"] is None


def test_matlab_v73_saved_as_h5_keeps_matlab_orientation(tmp_path, float_stack):
    path = write_mat73(tmp_path / "renamed.h5", {"img": to_matlab(float_stack)})
    with open_scan(path) as src:
        assert src.reader == "mat-v7.3"
        np.testing.assert_array_equal(src.read(0, 5), float_stack.astype(np.float32))


def test_mat5_compact_storage_reports_matlab_class(tmp_path):
    ints = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)  # small integers: scipy may store compactly
    path = write_mat5(tmp_path / "c.mat", ints)
    with open_scan(path) as src:
        assert src.source_dtype == np.float64
        np.testing.assert_array_equal(src.read(0, 2), ints.astype(np.float32))
