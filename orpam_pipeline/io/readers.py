"""Choosing the reader by file suffix: header-only inspection and opening of one file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ScanError
from ._base import FileScanSource, Layout, check_frame_memory, one_line, plan_frames
from .hdf5 import inspect_hdf5, open_hdf5
from .matlab import inspect_mat, open_mat
from .numpy_files import inspect_npy, inspect_npz, open_npy, open_npz
from .tiff import inspect_tiff, open_tiff

SUPPORTED_SUFFIXES: tuple[str, ...] = (".npy", ".npz", ".tif", ".tiff", ".h5", ".hdf5", ".mat")

_INSPECT: dict[str, Callable[[Path, str | None], Layout]] = {
    ".npy": inspect_npy,
    ".npz": inspect_npz,
    ".tif": inspect_tiff,
    ".tiff": inspect_tiff,
    ".h5": inspect_hdf5,
    ".hdf5": inspect_hdf5,
    ".mat": inspect_mat,
}

_OPEN: dict[str, Callable[[Layout], Any]] = {
    "npy": open_npy,
    "npz": open_npz,
    "tiff": open_tiff,
    "hdf5": open_hdf5,
    "mat-v4": open_mat,
    "mat-v5": open_mat,
    "mat-v7.3": open_mat,
}


def is_supported(path: Path) -> bool:
    """Whether the suffix (case-insensitive) names a format we read."""
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def inspect_file(path: Path, variable: str | None = None) -> Layout:
    """Header-only look at one file: which array, its dtype, stored shape and orientation."""
    path = Path(path)
    inspect = _INSPECT.get(path.suffix.lower())
    if inspect is None:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        raise ScanError(path, f"unsupported file type {path.suffix or '(no suffix)'!r} (supported: {supported})")
    try:
        return inspect(path, variable)
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(path, f"cannot read header: {type(exc).__name__}: {one_line(exc)}") from None


def open_file(
    path: Path,
    name: str | None = None,
    variable: str | None = None,
    depth_axis: int | None = None,
    verify: bool = True,
) -> FileScanSource:
    """Open one file as a scan; ``verify`` proves it readable by decoding its first and last frames."""
    path = Path(path)
    layout = inspect_file(path, variable)
    plan = plan_frames(path, layout.pipeline_shape, depth_axis)
    check_frame_memory(path, layout, plan)
    try:
        backend = _OPEN[layout.reader](layout)
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(path, f"cannot open: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    source = FileScanSource(name or path.stem, layout, plan, backend, depth_axis)
    if not verify:
        return source
    try:
        source.verify()
    except BaseException:
        source.close()
        raise
    return source
