"""MATLAB ``.mat`` files: v4/v5/v7 through scipy.io (loaded whole), v7.3 through h5py (lazy).

MATLAB arrays are ``(Y, X, T)`` in MATLAB's words; the pipeline sees ``(T, Y, X)`` (last axis moved
first, see :func:`orpam_pipeline.io.hdf5.matlab_perm`). scipy.io cannot read part of a variable,
so a v5 variable is loaded once when the scan is opened; ``whosmat`` alone does not prove the file
whole, loading the data does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from scipy.io.matlab import matfile_version

from ..errors import ScanError
from ._base import ArrayBackend, Layout, VarInfo, check_dtype, choose_variable, file_size, nbytes_of, one_line, shape_str
from .hdf5 import MATLAB_NUMERIC, inspect_hdf5, matlab_perm, open_hdf5

DEFLATE_MAX_RATIO = 1100


def mat_version(path: Path) -> tuple[int, int]:
    """``(0, x)`` v4, ``(1, x)`` v5/v7, ``(2, x)`` v7.3; ScanError for anything else."""
    file_size(path)
    try:
        with open(path, "rb") as fh:
            major, minor = matfile_version(fh)
    except Exception as exc:
        raise ScanError(path, f"not a MATLAB .mat file: {one_line(exc)}") from None
    if major not in (0, 1, 2):
        raise ScanError(path, f"unknown MATLAB file version {major}.{minor}")
    return int(major), int(minor)


def _inspect_v5(path: Path, variable: str | None, reader: str) -> Layout:
    size = file_size(path)
    try:
        listing = scipy.io.whosmat(str(path))
    except Exception as exc:
        raise ScanError(path, f"cannot read MATLAB header (truncated or corrupt?): {one_line(exc)}") from None
    infos = [VarInfo(name, tuple(int(s) for s in shape), cls, cls in MATLAB_NUMERIC) for name, shape, cls in listing]
    chosen = choose_variable(path, infos, variable)
    if chosen.kind not in MATLAB_NUMERIC:
        raise ScanError(path, f"variable {chosen.name!r} has MATLAB class {chosen.kind!r}; need a numeric array")
    dtype = np.dtype(np.float64 if chosen.kind == "double" else np.float32 if chosen.kind == "single" else chosen.kind)
    need = nbytes_of(chosen.shape, dtype)
    if need > DEFLATE_MAX_RATIO * size + 4096:
        claim = f"{shape_str(chosen.shape)} {chosen.kind} ({need} bytes)"
        raise ScanError(path, f"header claims {claim}, impossible in a {size}-byte file")
    return Layout(path, reader, chosen.name, dtype, chosen.shape, matlab_perm(len(chosen.shape), column_major=False))


def inspect_mat(path: Path, variable: str | None = None) -> Layout:
    """Variable names, classes and shapes only (v5 ``whosmat`` or v7.3 HDF5 metadata)."""
    major, _ = mat_version(path)
    if major == 2:
        return inspect_hdf5(path, variable, matlab=True)
    return _inspect_v5(path, variable, "mat-v4" if major == 0 else "mat-v5")


def open_mat(layout: Layout) -> ArrayBackend:
    """v7.3: lazy h5py slicing. v4/v5: the chosen variable is loaded whole, once.

    scipy returns v5 data in its storage type (MATLAB may store a double array as uint8); the
    values are exact and ``source_dtype`` reports the MATLAB class. ``mat_dtype=True`` is avoided
    because it silently drops the imaginary part of complex data.
    """
    if layout.reader == "mat-v7.3":
        return open_hdf5(layout)
    path = layout.path
    try:
        data = scipy.io.loadmat(str(path), variable_names=[layout.variable])
        array = data[layout.variable]
    except Exception as exc:
        raise ScanError(path, f"cannot read variable {layout.variable!r} (truncated or corrupt?): {one_line(exc)}") from None
    if not isinstance(array, np.ndarray):
        raise ScanError(path, f"variable {layout.variable!r} is not an array")
    check_dtype(path, array.dtype)
    if tuple(array.shape) != layout.source_shape:
        got, said = shape_str(array.shape), shape_str(layout.source_shape)
        raise ScanError(path, f"variable {layout.variable!r} has shape {got}, header said {said}")
    return ArrayBackend(array, layout.perm, dtype=layout.source_dtype)
