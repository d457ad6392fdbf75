"""Headerless binary files: dtype, shape and order from the user, the size checked, C and F order."""

from __future__ import annotations

import numpy as np
import pytest

from orpam_pipeline.errors import OrpamError, ScanError
from orpam_pipeline.io import ReadSpec, discover_scans, open_scan
from orpam_pipeline.io.binary import RawLayout, parse_shape
from orpam_pipeline.options import RunOptions


def _spec(dtype: str, shape: tuple[int, ...], order: str = "C", **kw: object) -> ReadSpec:
    return ReadSpec(raw=RawLayout(dtype=dtype, shape=shape, order=order), **kw)  # type: ignore[arg-type]


def test_c_order_reads_like_the_npy_it_would_be(tmp_path):
    stack = np.random.default_rng(0).integers(0, 4000, size=(4, 6, 5)).astype(np.uint16)
    path = tmp_path / "s.raw"
    stack.tofile(path)
    with open_scan(path, spec=_spec("uint16", (4, 6, 5))) as src:
        assert src.reader == "binary" and src.shape == (4, 6, 5) and src.axes_used == "tyx"
        np.testing.assert_array_equal(src.read(1, 3), stack[1:3].astype(np.float32))
        assert src.provenance()["order"] == "C"


def test_a_volume_with_axes(tmp_path):
    volume = (32768 + 300 * np.random.default_rng(1).normal(size=(40, 6, 5))).astype("<u2")  # (Z, Y, X)
    path = tmp_path / "v.dat"
    volume.tofile(path)
    np.save(tmp_path / "v.npy", volume)
    with open_scan(path, spec=_spec("<u2", (40, 6, 5), axes="zyx")) as src, \
            open_scan(tmp_path / "v.npy", spec=ReadSpec(axes="zyx")) as ref:  # fmt: skip
        assert src.shape == (1, 6, 5)
        np.testing.assert_array_equal(src.read(0, 1), ref.read(0, 1))


def test_f_order_is_matlab_fwrite(tmp_path):
    matlab = np.random.default_rng(2).normal(size=(6, 5, 3)).astype(np.float32)  # MATLAB (Y, X, T)
    path = tmp_path / "m.bin"
    path.write_bytes(matlab.tobytes(order="F"))  # what fwrite(fid, A, 'single') writes
    with open_scan(path, spec=_spec("float32", (6, 5, 3), "F")) as src:
        assert src.shape == (3, 6, 5) and src.axes_used == "yxt"
        np.testing.assert_array_equal(src.read(0, 3), np.moveaxis(matlab, -1, 0))
    with open_scan(path, spec=_spec("float32", (6, 5, 3), "F", axes="xyt")) as src:
        np.testing.assert_array_equal(src.read(0, 3), np.moveaxis(matlab, -1, 0).transpose(0, 2, 1))


def test_missing_or_wrong_layout_is_one_line(tmp_path):
    path = tmp_path / "s.raw"
    np.zeros((4, 6, 5), np.uint16).tofile(path)
    cases = [
        (ReadSpec(), "pass --dtype"),
        (ReadSpec(raw=RawLayout(dtype="uint16")), "needs --shape"),
        (_spec("uint16", (4, 6, 6)), "file holds 240 bytes but --dtype uint16 x --shape 4,6,6 is 288 bytes"),
        (_spec("float32", (4, 6, 5)), "file holds 240 bytes but --dtype float32 x --shape 4,6,5 is 480 bytes"),
    ]
    for spec, problem in cases:
        with pytest.raises(ScanError) as err:
            open_scan(path, spec=spec)
        assert problem in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_options_parse_and_refuse():
    assert parse_shape("384,2000,2000") == (384, 2000, 2000)
    assert RunOptions(dtype="uint16", shape="4, 6,5", order="F").read_spec().raw == RawLayout("uint16", (4, 6, 5), "F")
    for kw, problem in [({"dtype": "complex64"}, "integer or real"), ({"dtype": "nonsense"}, "not a NumPy type"),
                        ({"shape": "4,x6"}, "comma list"), ({"shape": "0,5"}, "at least 1"), ({"order": "K"}, "C or F")]:  # fmt: skip
        with pytest.raises(OrpamError, match=problem):
            RunOptions(**kw)


def test_binary_files_are_discovered(tmp_path):
    for name in ("a.dat", "b.bin", "c.RAW"):
        np.zeros((2, 4, 3), np.uint8).tofile(tmp_path / name)
    names = [e.name for e in discover_scans(tmp_path, raw=RawLayout(dtype="uint8", shape=(2, 4, 3)))]
    assert names == ["a", "b", "c"]
