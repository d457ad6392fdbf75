"""What a file holds, in the user's axis order, for ``orpam inspect``: its arrays, bounded reads of
them and the small values around them (metadata).

The user's order is NumPy's for .npy, .npz, HDF5 and TIFF and MATLAB's for .mat (a v7.3 file's
h5py axes reversed). Reads take slices in that order, so callers never see a reader's own
orientation. Nothing here loads more than the slices asked for, except MATLAB v4/v5 variables,
which scipy can only load whole: those over :data:`WHOLE_LOAD_LIMIT` bytes are not read at all.
"""

from __future__ import annotations

import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ScanError
from ._base import one_line
from .readers import format_of, unsupported_error

WHOLE_LOAD_LIMIT = 256 * 2**20
"""Largest array (bytes) loaded whole where a format cannot read part of it (.npz members, MATLAB v5)."""
SMALL_VALUES = 16
"""Arrays with at most this many values are metadata: their values are shown."""
MAX_TEXT = 200
PHYSICAL = re.compile(
    r"(^|[^a-z])(fs|dt|dx|dy|dz|hz|mhz|khz|um|mm|nm)([^a-z]|$)|sampl|rate|freq|step|spacing|pitch|pixel|"
    r"resolution|speed|velocity|period|interval|unit|scale|size|depth|wavelength|pulse",
    re.IGNORECASE,
)
"""Names that suggest a physical quantity (sampling rate, step size, ...)."""


@dataclass
class ArrayInfo:
    """One array of a file, in the user's order: ``dtype`` is the NumPy dtype, or the MATLAB class."""

    name: str | None
    shape: tuple[int, ...]
    dtype: str
    numeric: bool
    value_range: tuple[float, float] | None = None
    range_from: str | None = None
    """``all values``, ``a sample of N values``, or why no range is given."""

    def to_dict(self) -> dict[str, Any]:
        rng = None if self.value_range is None else [float(v) for v in self.value_range]
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "numeric": self.numeric,
                "range": rng, "range_from": self.range_from}  # fmt: skip


@dataclass
class FileSurvey:
    """A file's arrays and metadata, and how to read the arrays in the user's order."""

    path: Path
    kind: str
    order: str
    """``numpy`` or ``matlab``: the order shapes and axes are given in."""
    arrays: list[ArrayInfo] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    _reader: Any = None

    def read(self, name: str | None, index: tuple[slice, ...]) -> np.ndarray | None:
        """``array[index]`` in the user's order, or None when the array cannot be read in part."""
        return self._reader(name, index)


def _dtype_text(dtype: np.dtype) -> str:
    return str(np.dtype(dtype))


def _is_numeric(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind in "iuf" and np.dtype(dtype).names is None


def _value(value: Any) -> Any:
    """A short JSON-able rendering of a metadata value, or None when it is not short."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 3] + "..."
    arr = np.asarray(value)
    if arr.dtype.kind in "SU":
        return _value(arr.ravel()[0] if arr.size == 1 else " ".join(str(v) for v in arr.ravel()[:SMALL_VALUES]))
    if arr.dtype.kind not in "biuf" or arr.size > SMALL_VALUES or arr.size == 0:
        return None
    flat = [v.item() for v in arr.ravel()]
    return flat[0] if len(flat) == 1 else flat


def strided_index(shape: tuple[int, ...], budget: int = 2**20) -> tuple[slice, ...]:
    """Evenly strided slices picking at most about ``budget`` values of an array of ``shape``."""
    steps = [1] * len(shape)
    while math.prod(math.ceil(n / s) for n, s in zip(shape, steps)) > budget:
        a = max(range(len(shape)), key=lambda i: math.ceil(shape[i] / steps[i]))
        steps[a] *= 2
    return tuple(slice(0, n, s) for n, s in zip(shape, steps))


def _range(data: np.ndarray | None) -> tuple[float, float] | None:
    if data is None or data.size == 0 or not _is_numeric(data.dtype):
        return None
    finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
    if finite.size == 0:
        return None
    return float(finite.min()), float(finite.max())


def fill_ranges(survey: FileSurvey, budget: int = 2**20) -> None:
    """Value range of every numeric array: all values when small, else an evenly strided sample."""
    for info in survey.arrays:
        if not info.numeric or 0 in info.shape:
            continue
        index = strided_index(info.shape, budget)
        try:
            data = survey.read(info.name, index)
        except Exception as exc:  # a damaged array is named, not fatal to the survey
            info.range_from = f"unreadable: {one_line(exc, 120)}"
            continue
        if data is None:
            info.range_from = "not read (this format loads the whole array; it is too large)"
            continue
        info.value_range = _range(np.asarray(data))
        whole = data.size == math.prod(info.shape)
        info.range_from = "all values" if whole else f"a sample of {data.size} values"


# -- NumPy ----------------------------------------------------------------------------------------


def _survey_npy(path: Path) -> FileSurvey:
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    info = ArrayInfo(None, tuple(int(s) for s in array.shape), _dtype_text(array.dtype), _is_numeric(array.dtype))

    def read(name: str | None, index: tuple[slice, ...]) -> np.ndarray:
        return np.array(array[index])

    return FileSurvey(path, "npy", "numpy", [info], {}, read)


def _survey_npz(path: Path) -> FileSurvey:
    arrays, metadata, sizes = [], {}, {}
    with np.load(path, allow_pickle=False) as npz, zipfile.ZipFile(path) as zf:
        for member in zf.infolist():
            if member.filename.endswith(".npy"):
                sizes[member.filename[:-4]] = member.file_size
        for key in npz.files:
            if sizes.get(key, 0) <= 64 * 1024:
                value = npz[key]
                if value.size <= SMALL_VALUES or value.dtype.kind in "SU":
                    shown = _value(value)
                    if shown is not None:
                        metadata[key] = shown
    from .numpy_files import _npz_members

    for info, dtype, _ in _npz_members(path):
        arrays.append(ArrayInfo(info.name, info.shape, _dtype_text(dtype), info.numeric))

    def read(name: str | None, index: tuple[slice, ...]) -> np.ndarray | None:
        if sizes.get(str(name), 0) > WHOLE_LOAD_LIMIT:
            return None
        with np.load(path, allow_pickle=False) as npz:
            return np.array(npz[name][index])

    return FileSurvey(path, "npz", "numpy", arrays, metadata, read)


# -- HDF5 and MATLAB v7.3 -------------------------------------------------------------------------


def _survey_hdf5(path: Path, matlab: bool) -> FileSurvey:
    import h5py

    from .hdf5 import MATLAB_NUMERIC, MATLAB_SKIP, _attr_str

    arrays: list[ArrayInfo] = []
    metadata: dict[str, Any] = {}
    with h5py.File(path, "r") as f:

        def attrs_of(prefix: str, obj: Any) -> None:
            for key, value in obj.attrs.items():
                if matlab and key.startswith("MATLAB_"):
                    continue
                shown = _value(value)
                if shown is not None:
                    metadata[f"{prefix}@{key}" if prefix else f"@{key}"] = shown

        attrs_of("", f)

        def visit(name: str, obj: Any) -> None:
            if matlab and any(part in MATLAB_SKIP for part in name.split("/")):
                return
            label = name.replace("/", ".") if matlab else name
            attrs_of(label, obj)
            if not isinstance(obj, h5py.Dataset):
                return
            shape = tuple(int(s) for s in (obj.shape or ()))
            if matlab:
                cls = _attr_str(obj.attrs.get("MATLAB_class", b""))
                empty = bool(obj.attrs.get("MATLAB_empty", 0))
                user_shape = (0,) if empty else shape[::-1]
                if cls == "char" and not empty and obj.size <= 4 * MAX_TEXT:
                    metadata[label] = _value("".join(chr(int(c)) for c in np.asarray(obj[()]).ravel(order="F")))
                    return
                numeric = cls in MATLAB_NUMERIC and _is_numeric(obj.dtype) and not empty
                dtype = cls or "unknown MATLAB class"
            else:
                user_shape, numeric, dtype = shape, _is_numeric(obj.dtype), _dtype_text(obj.dtype)
            if obj.size <= SMALL_VALUES and not empty_like(user_shape):
                shown = _value(obj[()])
                if shown is not None:
                    metadata[label] = shown
                    return
            arrays.append(ArrayInfo(name, user_shape, dtype, numeric))

        f.visititems(visit)

    def read(name: str | None, index: tuple[slice, ...]) -> np.ndarray:
        with h5py.File(path, "r") as f:
            ds = f[str(name)]
            if matlab:
                return np.asarray(ds[tuple(reversed(index))]).transpose()
            return np.asarray(ds[index])

    return FileSurvey(path, "mat-v7.3" if matlab else "hdf5", "matlab" if matlab else "numpy", arrays, metadata, read)


def empty_like(shape: tuple[int, ...]) -> bool:
    return 0 in shape


# -- MATLAB v4/v5 -----------------------------------------------------------------------------------


def _flatten_mat(name: str, value: Any, out: dict[str, Any], depth: int = 0) -> None:
    """MATLAB structs (scipy ``mat_struct``) flattened to ``a.b`` names; short values only."""
    if depth > 4 or len(out) > 200:
        return
    fields = getattr(value, "_fieldnames", None)
    if fields is not None:
        for key in fields:
            _flatten_mat(f"{name}.{key}", getattr(value, key), out, depth + 1)
        return
    if isinstance(value, np.ndarray) and value.dtype == object:
        if value.size == 1:
            _flatten_mat(name, value.ravel()[0], out, depth + 1)
        return
    shown = _value(value)
    if shown is not None:
        out[name] = shown


def _survey_mat_v5(path: Path, reader: str) -> FileSurvey:
    import scipy.io

    from .hdf5 import MATLAB_NUMERIC

    arrays: list[ArrayInfo] = []
    small: list[str] = []
    sizes: dict[str, int] = {}
    for name, shape, cls in scipy.io.whosmat(str(path)):
        shape = tuple(int(s) for s in shape)
        n = math.prod(shape)
        itemsize = 8 if cls in ("double", "int64", "uint64") else 4
        sizes[name] = n * itemsize
        if cls in ("struct", "char", "cell") and n * itemsize <= 64 * 1024 or n <= SMALL_VALUES:
            small.append(name)
        else:
            arrays.append(ArrayInfo(name, shape, cls, cls in MATLAB_NUMERIC))
    metadata: dict[str, Any] = {}
    if small:
        loaded = scipy.io.loadmat(str(path), variable_names=small, squeeze_me=True, struct_as_record=False)
        for name in small:
            if name in loaded:
                _flatten_mat(name, loaded[name], metadata)
    cache: dict[str, np.ndarray] = {}

    def read(name: str | None, index: tuple[slice, ...]) -> np.ndarray | None:
        key = str(name)
        if key not in cache:
            if sizes.get(key, 0) > WHOLE_LOAD_LIMIT:
                return None
            cache.clear()
            cache[key] = scipy.io.loadmat(str(path), variable_names=[key])[key]
        return np.asarray(cache[key][index])

    return FileSurvey(path, reader, "matlab", arrays, metadata, read)


# -- TIFF ------------------------------------------------------------------------------------------


def _survey_tiff(path: Path) -> FileSurvey:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        shape = tuple(int(s) for s in series.shape)
        dtype = np.dtype(series.dtype)
        page = tif.pages[0]
        metadata: dict[str, Any] = {}
        for tag in ("XResolution", "YResolution", "ResolutionUnit", "ImageDescription", "Software"):
            t = page.tags.get(tag)
            if t is not None:
                value = t.value
                if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value) and value[1]:
                    value = value[0] / value[1]
                shown = _value(getattr(value, "name", value))
                if shown is not None:
                    metadata[tag] = shown
        for key, value in (tif.imagej_metadata or {}).items():
            shown = _value(value)
            if shown is not None:
                metadata[f"imagej.{key}"] = shown
    arrays = [ArrayInfo(None, shape, _dtype_text(dtype), _is_numeric(dtype))]

    def read(name: str | None, index: tuple[slice, ...]) -> np.ndarray:
        lead = shape[:-2]
        pages = np.arange(math.prod(lead)).reshape(lead)[index[: len(lead)]]
        with tifffile.TiffFile(path) as tif:
            data = tif.asarray(key=[int(p) for p in pages.ravel()], series=0)
        data = np.asarray(data).reshape(pages.shape + shape[-2:])
        return data[(slice(None),) * len(lead) + tuple(index[len(lead) :])]

    return FileSurvey(path, "tiff", "numpy", arrays, metadata, read)


def survey_file(path: Path) -> FileSurvey:
    """List a file's arrays and metadata (values of small arrays only); ScanError when unreadable."""
    path = Path(path)
    fmt = format_of(path)
    if fmt is None:
        raise unsupported_error(path)
    try:
        if fmt.name == "npy":
            return _survey_npy(path)
        if fmt.name == "npz":
            return _survey_npz(path)
        if fmt.name == "tiff":
            return _survey_tiff(path)
        if fmt.name == "hdf5":
            from .hdf5 import has_matlab_header

            return _survey_hdf5(path, matlab=has_matlab_header(path))
        if fmt.name == "mat":
            from .matlab import mat_version

            major, _ = mat_version(path)
            if major == 2:
                return _survey_hdf5(path, matlab=True)
            return _survey_mat_v5(path, "mat-v4" if major == 0 else "mat-v5")
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(path, f"cannot list its contents: {type(exc).__name__}: {one_line(exc)}") from None
    raise ScanError(path, f"orpam inspect does not know format {fmt.name!r} (registered at run time)")


def physical(name: str) -> bool:
    """Whether a metadata name suggests a physical quantity (sampling rate, step size, units...)."""
    return bool(PHYSICAL.search(name))
