"""Writers for every supported format, shared by the io tests."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import tifffile

MATLAB_73_HEADER = (
    b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
).ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"


def write_npy(path: Path, arr: np.ndarray) -> Path:
    np.save(path, arr)
    return path


def write_npz(path: Path, arr: np.ndarray, key: str = "frames", **extra: np.ndarray) -> Path:
    np.savez(path, **{key: arr}, **extra)
    return path


def write_tiff(path: Path, arr: np.ndarray, **kwargs: object) -> Path:
    if not kwargs.get("imagej"):
        kwargs.setdefault("photometric", "minisblack")
    tifffile.imwrite(path, arr, **kwargs)
    return path


def write_h5(path: Path, arr: np.ndarray, name: str = "data", **kwargs: object) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=arr, **kwargs)
    return path


def to_matlab(arr_tyx: np.ndarray) -> np.ndarray:
    """Pipeline ``(T, Y, X)`` (or 2-D ``(Y, X)``) as MATLAB's ``(Y, X, T)``."""
    return arr_tyx if arr_tyx.ndim == 2 else np.moveaxis(arr_tyx, 0, -1)


def write_mat5(path: Path, arr_tyx: np.ndarray, name: str = "img", **extra: object) -> Path:
    scipy.io.savemat(path, {name: to_matlab(arr_tyx), **extra})
    return path


def write_mat73(path: Path, variables: dict[str, np.ndarray], classes: dict[str, str] | None = None) -> Path:
    """An HDF5 file laid out as MATLAB -v7.3 writes it: 512-byte userblock header, column-major data."""
    classes = classes or {}
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr_matlab in variables.items():
            ds = f.create_dataset(name, data=np.transpose(arr_matlab))
            cls = classes.get(name, "double" if arr_matlab.dtype == np.float64 else str(arr_matlab.dtype))
            ds.attrs["MATLAB_class"] = np.bytes_(cls)
    with open(path, "r+b") as fh:
        fh.write(MATLAB_73_HEADER.ljust(512, b"\x00"))
    return path


WRITERS = {
    "npy": lambda p, a: write_npy(p / "s.npy", a),
    "npz": lambda p, a: write_npz(p / "s.npz", a),
    "tiff": lambda p, a: write_tiff(p / "s.tif", a),
    "hdf5": lambda p, a: write_h5(p / "s.h5", a),
    "mat-v5": lambda p, a: write_mat5(p / "s.mat", a),
    "mat-v7.3": lambda p, a: write_mat73(p / "s.mat", {"img": to_matlab(a)}),
}


@pytest.fixture
def float_stack() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(5, 6, 7))


@pytest.fixture
def int_stack() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 4000, size=(4, 6, 9)).astype(np.uint16)
