"""Formats are declared once: the built-in ones match what their readers yield, and one registered at
run time is discovered and read like any other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from orpam_pipeline.errors import ScanError
from orpam_pipeline.io import (
    FORMATS,
    SUPPORTED_SUFFIXES,
    Format,
    discover_scans,
    open_scan,
    register_format,
    supported_suffixes,
    unregister_format,
)
from orpam_pipeline.io._base import ArrayBackend, Layout, check_dtype, file_size, shape_str
from orpam_pipeline.io.readers import format_of, inspect_file

from .conftest import WRITERS, write_npy

MAGIC = b"TOYRAW"


def write_raw(path: Path, arr: np.ndarray) -> Path:
    """A toy format: one text header line ``TOYRAW <dtype> <dims...>`` and the C-ordered values."""
    header = b" ".join([MAGIC, arr.dtype.str.encode(), *(str(s).encode() for s in arr.shape)]) + b"\n"
    path.write_bytes(header + np.ascontiguousarray(arr).tobytes())
    return path


def _raw_header(path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    with open(path, "rb") as fh:
        line = fh.readline(256)
    words = line.split()
    if not line.endswith(b"\n") or len(words) < 3 or words[0] != MAGIC:
        raise ScanError(path, "not a TOYRAW file")
    return np.dtype(words[1].decode()), tuple(int(w) for w in words[2:]), len(line)


def inspect_raw(path: Path, variable: str | None = None) -> Layout:
    size = file_size(path)
    dtype, shape, offset = _raw_header(path)
    check_dtype(path, dtype)
    if offset + int(np.prod(shape)) * dtype.itemsize != size:
        raise ScanError(path, f"size does not match {shape_str(shape)} {dtype}")
    return Layout(path, "toyraw", None, dtype, shape, tuple(range(len(shape))))


def open_raw(layout: Layout) -> ArrayBackend:
    dtype, shape, offset = _raw_header(layout.path)
    return ArrayBackend(np.memmap(layout.path, dtype=dtype, mode="r", offset=offset, shape=shape), layout.perm)


TOY = Format("toyraw", (".toy",), inspect_raw, open_raw, ("toyraw",))


@pytest.fixture
def toy_format() -> Iterator[Format]:
    register_format(TOY)
    try:
        yield TOY
    finally:
        unregister_format(TOY.name)


@pytest.mark.parametrize("reader", list(WRITERS))
def test_builtin_format_declares_the_reader_its_inspect_yields(tmp_path, reader, float_stack):
    path = WRITERS[reader](tmp_path, float_stack)
    assert inspect_file(path).reader == reader
    assert reader in format_of(path).readers


def test_supported_suffixes_come_from_formats():
    assert SUPPORTED_SUFFIXES == (".npy", ".npz", ".tif", ".tiff", ".h5", ".hdf5", ".mat", ".dat", ".bin", ".raw")
    assert SUPPORTED_SUFFIXES == tuple(s for fmt in FORMATS for s in fmt.suffixes)
    assert supported_suffixes() == SUPPORTED_SUFFIXES


def test_registered_format_is_discovered_and_read(tmp_path, toy_format):
    stack = np.random.default_rng(0).integers(0, 1000, size=(4, 5, 6)).astype(np.uint16)
    frames = np.random.default_rng(1).normal(size=(3, 5, 6))
    write_raw(tmp_path / "stack.toy", stack)
    (tmp_path / "run").mkdir()
    for i, frame in enumerate(frames):
        write_raw(tmp_path / "run" / f"f{i + 1}.toy", frame)
    write_npy(tmp_path / "other.npy", frames)

    assert ".toy" in supported_suffixes()
    entries = {e.name: e for e in discover_scans(tmp_path)}
    assert sorted(entries) == ["other", "run", "stack"]
    assert [p.name for p in entries["run"].paths] == ["f1.toy", "f2.toy", "f3.toy"]

    with open_scan(entries["stack"]) as src:
        assert src.reader == "toyraw" and src.source_dtype == np.uint16 and src.shape == stack.shape
        np.testing.assert_array_equal(src.read(0, 4), stack.astype(np.float32))
        np.testing.assert_array_equal(src.read(2, 3), stack[2:3].astype(np.float32))
    with open_scan(entries["run"]) as src:
        assert src.reader == "frames:toyraw" and src.shape == frames.shape
        np.testing.assert_array_equal(src.read(0, 3), frames.astype(np.float32))
    (tmp_path / "bad.toy").write_bytes(MAGIC + b" <f4 2 2\n" + b"\0" * 5)
    with pytest.raises(ScanError, match="size does not match"):
        open_scan(tmp_path / "bad.toy")


def test_unregistered_format_is_not_read(tmp_path):
    write_raw(tmp_path / "stack.toy", np.zeros((2, 3, 4), np.float32))
    assert ".toy" not in supported_suffixes()
    with pytest.raises(ScanError, match="no scan files found"):
        discover_scans(tmp_path)
    with pytest.raises(ScanError, match="unsupported file type '.toy'"):
        open_scan(tmp_path / "stack.toy")


def test_register_refuses_a_clash(toy_format):
    with pytest.raises(ValueError, match="suffix .npy already belongs to format 'npy'"):
        register_format(Format("other", (".npy",), inspect_raw, open_raw, ("other",)))
    with pytest.raises(ValueError, match="reader mat-v5 already belongs to format 'mat'"):
        register_format(Format("other", (".oth",), inspect_raw, open_raw, ("mat-v5",)))
    with pytest.raises(ValueError, match="name toyraw already belongs"):
        register_format(Format("toyraw", (".oth",), inspect_raw, open_raw, ("other",)))
    with pytest.raises(ValueError, match="lower-case"):
        Format("other", (".RAW",), inspect_raw, open_raw, ("other",))
    with pytest.raises(KeyError):
        unregister_format("npy")
