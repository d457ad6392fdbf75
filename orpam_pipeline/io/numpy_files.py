"""NumPy ``.npy`` (memory-mapped, lazy) and ``.npz`` (one member loaded whole) readers."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import ScanError
from ._base import ArrayBackend, Layout, MemmapBackend, VarInfo, check_dtype, choose_variable, file_size, nbytes_of, one_line, shape_str

DEFLATE_MAX_RATIO = 1100
"""zlib cannot expand data by more than about 1032:1; a larger claimed ratio is a corrupt header."""


def _read_header(fh: IO[bytes], path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from an ``.npy`` header, as one-line ScanErrors on failure."""
    try:
        version = np.lib.format.read_magic(fh)
    except ValueError:
        raise ScanError(path, "not a NumPy .npy file (bad magic string)") from None
    try:
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except Exception as exc:
        raise ScanError(path, f"not a valid NumPy .npy header: {one_line(exc)}") from None
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype)


def _perm(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(range(len(shape)))


def inspect_npy(path: Path, variable: str | None = None) -> Layout:
    """Header-only look at an ``.npy``: refuses text files, bad dtypes and truncated data."""
    size = file_size(path)
    if variable is not None:
        raise ScanError(path, f"a .npy file holds a single array; variable {variable!r} does not apply")
    with open(path, "rb") as fh:
        shape, _, dtype = _read_header(fh, path)
        offset = fh.tell()
    check_dtype(path, dtype)
    need = nbytes_of(shape, dtype)
    if offset + need > size:
        raise ScanError(
            path,
            f"truncated: header promises {need} data bytes for {shape_str(shape)} {dtype} "
            f"but the file holds only {size - offset}",
        )
    return Layout(path, "npy", None, dtype, shape, _perm(shape))


class NpyFrameBackend:
    """Reads whole leading-axis blocks of a C-ordered ``.npy`` with plain positioned reads.

    A memory map would do the same work, but every page it touches stays in the process's resident
    set until the kernel needs it back, so RSS would grow with the length of the scan. ``perm``
    orients the blocks; frames on another stored axis (``--axes``, ``--depth-axis 0``) are strided
    through the file and read by a memory map that lives for one block.
    """

    def __init__(
        self, path: Path, shape: tuple[int, ...], dtype: np.dtype, offset: int, perm: tuple[int, ...] | None = None
    ) -> None:
        self.dtype = dtype
        self._perm = perm if perm is not None else tuple(range(len(shape)))
        self._strided = MemmapBackend(path, shape, dtype, self._perm, offset)
        self._path = path
        self._shape = shape
        self._offset = offset
        self._frame_bytes = nbytes_of(shape[1:], dtype)
        self._fh: IO[bytes] | None = open(path, "rb")

    def block(self, axis: int | None, start: int, stop: int) -> np.ndarray:
        if axis is not None and self._perm[axis] != 0:
            return self._strided.block(axis, start, stop)
        if axis is None:
            start, stop = 0, self._shape[0]
        if self._fh is None:
            raise ValueError(f"{self._path} is closed")
        out = np.empty((stop - start,) + self._shape[1:], dtype=self.dtype)
        self._fh.seek(self._offset + start * self._frame_bytes)
        got = self._fh.readinto(memoryview(out).cast("B"))
        if got != out.nbytes:
            raise ScanError(self._path, f"truncated: frames {start}-{stop - 1} end past the end of the file")
        return out.transpose(self._perm)

    def close(self) -> None:
        self._strided.close()
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def open_npy(layout: Layout) -> ArrayBackend | NpyFrameBackend:
    """Frames are read from disk only when asked for; C order by positioned reads, else a memory map."""
    try:
        with open(layout.path, "rb") as fh:
            shape, fortran, dtype = _read_header(fh, layout.path)
            offset = fh.tell()
        if not fortran and len(shape) >= 1 and dtype.hasobject is False:
            return NpyFrameBackend(layout.path, shape, dtype, offset, layout.perm)
        array = np.load(layout.path, mmap_mode="r", allow_pickle=False)
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(layout.path, f"cannot map .npy data: {one_line(exc)}") from None
    return ArrayBackend(array, layout.perm)


def _npz_members(path: Path) -> list[tuple[VarInfo, np.dtype, zipfile.ZipInfo]]:
    size = file_size(path)
    try:
        zf = zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, OSError) as exc:
        raise ScanError(path, f"not a .npz (zip) file or truncated: {one_line(exc)}") from None
    members = []
    with zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[: -len(".npy")]
            try:
                with zf.open(info) as fh:
                    shape, _, dtype = _read_header(fh, path)
                    header_len = fh.tell()
            except ScanError as exc:
                raise ScanError(path, f"member {key!r}: {exc.reason}") from None
            except Exception as exc:
                raise ScanError(path, f"member {key!r} unreadable: {one_line(exc)}") from None
            need = header_len + nbytes_of(shape, dtype) if not dtype.hasobject else None
            if need is not None and need != info.file_size:
                raise ScanError(path, f"member {key!r}: header promises {need} bytes but the member holds {info.file_size}")
            if info.file_size > DEFLATE_MAX_RATIO * max(info.compress_size, 1) + 4096 or info.compress_size > size:
                raise ScanError(path, f"member {key!r}: sizes in the zip directory are impossible (corrupt file)")
            numeric = dtype.kind in "iuf" and dtype.names is None
            members.append((VarInfo(key, shape, str(dtype), numeric), dtype, info))
    return members


def inspect_npz(path: Path, variable: str | None = None) -> Layout:
    """Pick the member (named, else the only numeric 2-D/3-D one) from the zip directory and headers."""
    members = _npz_members(path)
    chosen = choose_variable(path, [m[0] for m in members], variable, what="array")
    dtype = next(d for info, d, _ in members if info is chosen)
    check_dtype(path, dtype)
    return Layout(path, "npz", chosen.name, dtype, chosen.shape, _perm(chosen.shape))


def open_npz(layout: Layout) -> ArrayBackend:
    """Load the chosen member whole: zip members cannot be sliced without decompressing them."""
    try:
        with np.load(layout.path, allow_pickle=False) as npz:
            array = npz[layout.variable]
    except Exception as exc:
        reason = f"cannot read array {layout.variable!r} (truncated or corrupt?): {one_line(exc)}"
        raise ScanError(layout.path, reason) from None
    if array.shape != layout.source_shape:
        got, said = shape_str(array.shape), shape_str(layout.source_shape)
        raise ScanError(layout.path, f"array {layout.variable!r} has shape {got}, header said {said}")
    return ArrayBackend(array, layout.perm)
