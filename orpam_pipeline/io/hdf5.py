"""HDF5 (``.h5``/``.hdf5``) and MATLAB v7.3 (HDF5 inside) readers through h5py slicing.

MATLAB writes column-major, so an array MATLAB calls ``(Y, X, T)`` appears in h5py as ``(T, X, Y)``.
The pipeline orientation of a MATLAB array is its MATLAB shape with the last axis moved first
(``(Y, X, T)`` -> ``(T, Y, X)``; a 2-D ``(Y, X)`` stays ``(Y, X)``), the same rule as for v5 files.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..errors import ScanError
from ._base import ArrayBackend, Layout, VarInfo, check_dtype, choose_variable, file_size, one_line

MATLAB_NUMERIC = frozenset(
    {"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}
)
MATLAB_SKIP = ("#refs#", "#subsystem#")


def matlab_perm(ndim: int, column_major: bool) -> tuple[int, ...]:
    """Stored axis for each pipeline axis of a MATLAB array (``column_major``: seen through h5py)."""
    matlab_axes = list(range(ndim))[::-1] if column_major else list(range(ndim))
    if ndim <= 2:
        return tuple(matlab_axes)
    return (matlab_axes[-1], *matlab_axes[:-1])


def _attr_str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _attr_str(value.item())
    return str(value)


def _open_file(path: Path, matlab: bool) -> h5py.File:
    file_size(path)
    try:
        return h5py.File(path, "r")
    except Exception as exc:
        what = "MATLAB v7.3 (HDF5) file" if matlab else "HDF5 file"
        raise ScanError(path, f"cannot open as {what} (truncated or corrupt?): {one_line(exc)}") from None


def _datasets(path: Path, f: h5py.File, matlab: bool) -> dict[str, tuple[VarInfo, h5py.Dataset]]:
    found: dict[str, tuple[VarInfo, h5py.Dataset]] = {}

    def visit(name: str, obj: object) -> None:
        if not isinstance(obj, h5py.Dataset):
            return
        if matlab and any(part in MATLAB_SKIP for part in name.split("/")):
            return
        dtype = obj.dtype
        shape = tuple(int(s) for s in (obj.shape or ()))
        if matlab:
            cls = _attr_str(obj.attrs.get("MATLAB_class", b""))
            empty = bool(obj.attrs.get("MATLAB_empty", 0))
            numeric = cls in MATLAB_NUMERIC and dtype.kind in "iuf" and dtype.names is None and not empty
            matlab_shape = (0,) if empty else shape[::-1]
            found[name] = (VarInfo(name, matlab_shape, cls or "unknown MATLAB class", numeric), obj)
        else:
            numeric = dtype.kind in "iuf" and dtype.names is None
            found[name] = (VarInfo(name, shape, str(dtype), numeric), obj)

    try:
        f.visititems(visit)
    except Exception as exc:
        raise ScanError(path, f"corrupt HDF5 structure: {one_line(exc)}") from None
    return found


def _links(f: h5py.File) -> dict[str, str]:
    """Links that do not lead to an object inside this file: name -> what they point at."""
    found: dict[str, str] = {}

    def visit(name: str, link: object) -> None:
        if isinstance(link, h5py.ExternalLink):
            found[name] = f"an external link to {link.filename}:{link.path}"
        elif isinstance(link, h5py.SoftLink) and link.path not in f:
            found[name] = f"a soft link to {link.path!r}, which does not exist"

    try:
        f.visititems_links(visit)
    except Exception:  # a damaged link table is reported by the dataset walk
        pass
    return found


def _check_self_contained(path: Path, ds: h5py.Dataset) -> None:
    """Refuse data stored in other files: only this file is fingerprinted, so a change there would
    go unnoticed by resume, rerun and ``orpam verify``."""
    if ds.is_virtual:
        sources = sorted({m.file_name for m in ds.virtual_sources()})
        raise ScanError(path, f"dataset {ds.name!r} is a virtual dataset whose data live in other files "
                              f"({', '.join(sources)}); copy the data into one file first (e.g. h5repack)")  # fmt: skip
    if ds.external:
        files = sorted({str(entry[0]) for entry in ds.external})
        raise ScanError(path, f"dataset {ds.name!r} keeps its data in external files ({', '.join(files)}); "
                              "copy the data into one file first (e.g. h5repack)")  # fmt: skip


def _check_storage(path: Path, ds: h5py.Dataset, size: int) -> None:
    """Contiguous, unfiltered data must lie inside the file; catches truncation before any read."""
    try:
        offset = ds.id.get_offset()
        stored = ds.id.get_storage_size()
    except Exception:
        return
    if offset is not None and offset + stored > size:
        raise ScanError(path, f"truncated: dataset {ds.name!r} data ends at byte {offset + stored} but the file has {size}")


def _layout(path: Path, f: h5py.File, variable: str | None, matlab: bool) -> tuple[Layout, h5py.Dataset]:
    size = file_size(path)
    found = _datasets(path, f, matlab)
    what = "variable" if matlab else "dataset"
    links = _links(f)
    if variable is not None and variable.strip("/") in links:
        raise ScanError(path, f"{what} {variable!r} is {links[variable.strip('/')]}: only data inside this file are read")
    try:
        info = choose_variable(path, [v[0] for v in found.values()], variable, what=what)
    except ScanError as exc:
        if not links:
            raise
        named = "; ".join(f"{name!r} is {text}" for name, text in sorted(links.items())[:4])
        raise ScanError(path, f"{exc.reason} — {named} (only data inside this file are read)") from None
    ds = found[info.name][1]
    _check_self_contained(path, ds)
    if matlab:
        cls = _attr_str(ds.attrs.get("MATLAB_class", b""))
        if cls not in MATLAB_NUMERIC:
            raise ScanError(path, f"variable {info.name!r} has MATLAB class {cls!r}; need a numeric array")
    dtype = check_dtype(path, ds.dtype)
    shape = tuple(int(s) for s in ds.shape)
    perm = matlab_perm(len(shape), column_major=True) if matlab else tuple(range(len(shape)))
    _check_storage(path, ds, size)
    reader = "mat-v7.3" if matlab else "hdf5"
    return Layout(path, reader, info.name, dtype, shape, perm, column_major=matlab), ds


def has_matlab_header(path: Path) -> bool:
    """Whether the file starts with MATLAB's v7.3 text header (a renamed ``.mat`` saved as ``.h5``)."""
    with open(path, "rb") as fh:
        return fh.read(10) == b"MATLAB 7.3"


def inspect_hdf5(path: Path, variable: str | None = None, matlab: bool = False) -> Layout:
    """Dataset shapes and dtypes from the HDF5 metadata; no data is read.

    A file carrying MATLAB's v7.3 header is read with MATLAB orientation whatever its suffix.
    """
    file_size(path)
    matlab = matlab or has_matlab_header(path)
    with _open_file(path, matlab) as f:
        return _layout(path, f, variable, matlab)[0]


def open_hdf5(layout: Layout) -> ArrayBackend:
    """Keep the file open; ``block`` slices the h5py dataset so only the frames asked for are read."""
    matlab = layout.reader == "mat-v7.3"
    f = _open_file(layout.path, matlab)
    try:
        _, ds = _layout(layout.path, f, layout.variable, matlab)
    except Exception:
        f.close()
        raise
    return ArrayBackend(ds, layout.perm, handle=f)
