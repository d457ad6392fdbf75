"""Shared pieces of the scan readers: layouts, validation, lazy array access and ``ScanSource``.

A reader turns a file into a :class:`Layout` (header only: what is stored and how its axes map to
the pipeline orientation) and, when the scan is opened, into a :class:`Backend` that fetches blocks
of frames. :class:`FileScanSource` adds what every format shares: the depth-axis MAP reduction
(``reduce.py``), float32 conversion, the non-finite check and provenance.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ScanError
from ..memory import check_memory
from .hashing import sha256_file
from .reduce import Reduction, reduce_frame

MAX_FRAME_PIXELS = 2**28
"""A single ``(Y, X)`` frame larger than this is refused before anything is allocated."""

MAX_FRAME_VALUES = 2**31
"""Upper bound on the stored values behind one frame (a raw volume reduced to one MAP frame)."""

NUMERIC_KINDS = "iuf"


def one_line(exc: BaseException, limit: int = 300) -> str:
    """A library exception's message folded onto one line, so ``ScanError`` stays one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def file_size(path: Path) -> int:
    """Size in bytes, refusing missing, non-regular and empty files with a ``ScanError``."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ScanError(path, f"cannot open: {exc.strerror or one_line(exc)}") from None
    if not Path(path).is_file():
        raise ScanError(path, "not a regular file")
    if st.st_size == 0:
        raise ScanError(path, "empty file (0 bytes)")
    return st.st_size


def check_dtype(path: Path, dtype: np.dtype) -> np.dtype:
    """Accept integer and real floating dtypes only; complex, bool, strings and records are refused."""
    dtype = np.dtype(dtype)
    if dtype.kind in NUMERIC_KINDS and dtype.names is None and not dtype.hasobject:
        return dtype
    if dtype.names is not None and set(dtype.names) == {"real", "imag"}:
        raise ScanError(path, "unsupported dtype complex (stored as real/imag pairs); need real numbers")
    raise ScanError(path, f"unsupported dtype {dtype}")


def shape_str(shape: tuple[int, ...]) -> str:
    """``(5, 6, 7)`` written the same way for every message."""
    return str(tuple(int(s) for s in shape))


def nbytes_of(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes an array of that shape and dtype needs, as a Python int (no overflow)."""
    return math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize


@dataclass(frozen=True)
class Layout:
    """What a file stores, found from its header without reading the data.

    ``perm[i]`` is the stored axis that becomes axis ``i`` of the pipeline orientation, so the
    pipeline view of the stored array is ``stored.transpose(perm)``. ``column_major``: the user sees
    the stored axes reversed (MATLAB v7.3 through h5py, binary files read with ``--order F``).
    """

    path: Path
    reader: str
    variable: str | None
    source_dtype: np.dtype
    source_shape: tuple[int, ...]
    perm: tuple[int, ...]
    column_major: bool = False

    @property
    def pipeline_shape(self) -> tuple[int, ...]:
        """Stored shape in pipeline orientation (before any depth reduction)."""
        return tuple(self.source_shape[p] for p in self.perm)

    @property
    def user_shape(self) -> tuple[int, ...]:
        """The shape as the user sees it (MATLAB's for .mat files), the order ``--axes`` names."""
        return self.source_shape[::-1] if self.column_major else self.source_shape


@dataclass(frozen=True)
class FramePlan:
    """How the pipeline-oriented array becomes ``(T, Y, X)`` frames.

    ``frame_axis`` is the pipeline axis that indexes frames, or ``None`` when the whole array is one
    frame; ``depth`` is the axis reduced to a MAP (``reduce.py``), or ``None``. The other axes are
    ``(T, Y, X)`` (or ``(Y, X)``) in this order.
    """

    shape: tuple[int, int, int]
    frame_axis: int | None
    depth: int | None


def plan_frames(path: Path, pshape: tuple[int, ...], depth_axis: int | None) -> FramePlan:
    """Validate a pipeline-oriented shape and decide how frames are read from it."""
    n = len(pshape)
    if n < 2:
        raise ScanError(
            path,
            f"{n}-D array of shape {shape_str(pshape)}; expected a 2-D frame (Y, X) or a 3-D stack (T, Y, X)",
        )
    if any(s == 0 for s in pshape):
        raise ScanError(path, f"empty array: shape {shape_str(pshape)} has a zero-length axis")
    depth: int | None = None
    frame_axis: int | None
    if depth_axis is None:
        if n == 2:
            shape = (1, pshape[0], pshape[1])
            frame_axis = None
        elif n == 3:
            shape = (pshape[0], pshape[1], pshape[2])
            frame_axis = 0
        else:
            raise ScanError(
                path,
                f"{n}-D array of shape {shape_str(pshape)} (pipeline axis order); a raw A-line volume needs its "
                "axes named (--axes, e.g. tzyx) or its depth axis (--depth-axis N) to be reduced to MAP frames",
            )
    else:
        if not -n <= depth_axis < n:
            raise ScanError(path, f"depth_axis {depth_axis} is out of range for shape {shape_str(pshape)}")
        depth = depth_axis % n
        rest = tuple(s for i, s in enumerate(pshape) if i != depth)
        if n == 2:
            raise ScanError(path, f"depth_axis given but the array {shape_str(pshape)} is 2-D, already a frame")
        if n == 3:
            shape = (1, rest[0], rest[1])
            frame_axis = None
        elif n == 4:
            shape = (rest[0], rest[1], rest[2])
            frame_axis = 1 if depth == 0 else 0
        else:
            raise ScanError(path, f"{n}-D array of shape {shape_str(pshape)}: too many axes even with depth_axis")
    _, y, x = shape
    if x < 2:
        raise ScanError(
            path, f"only {x} column(s) per frame (shape {shape_str(shape)}); need at least 2 (forward and backward lines)"
        )
    if y * x > MAX_FRAME_PIXELS:
        raise ScanError(path, f"a frame of {y} x {x} = {y * x} pixels exceeds the limit of 2**28 pixels")
    per_frame = math.prod(pshape) // shape[0]
    if per_frame > MAX_FRAME_VALUES:
        raise ScanError(path, f"one frame needs {per_frame} stored values, over the limit of 2**31")
    return FramePlan(shape=shape, frame_axis=frame_axis, depth=depth)


def check_frame_memory(path: Path, layout: Layout, plan: FramePlan) -> None:
    """Refuse a frame whose reading (raw stored values and float32 copy) cannot fit in memory."""
    _, y, x = plan.shape
    stored = math.prod(int(s) for s in layout.pipeline_shape) // max(plan.shape[0], 1)
    nbytes = max(y * x * 4, stored * np.dtype(layout.source_dtype).itemsize)
    check_memory(path, nbytes, f"one frame of {y} x {x}")


class Backend(Protocol):
    """Fetches blocks of the stored array in pipeline orientation."""

    dtype: np.dtype

    def block(self, axis: int | None, start: int, stop: int) -> np.ndarray:
        """Pipeline-oriented data, sliced ``start:stop`` along ``axis`` (whole array if ``axis`` is None)."""
        ...

    def close(self) -> None:
        """Release file handles."""
        ...


class ArrayBackend:
    """Backend over anything sliceable with a tuple of slices: ndarray, memmap, h5py dataset."""

    def __init__(self, array: Any, perm: tuple[int, ...], handle: Any = None, dtype: np.dtype | None = None) -> None:
        self._array = array
        self._perm = perm
        self._handle = handle
        self.dtype = np.dtype(dtype if dtype is not None else array.dtype)

    def block(self, axis: int | None, start: int, stop: int) -> np.ndarray:
        index = [slice(None)] * len(self._perm)
        if axis is not None:
            index[self._perm[axis]] = slice(start, stop)
        data = np.asarray(self._array[tuple(index)])
        return data.transpose(self._perm)

    def close(self) -> None:
        self._array = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class MemmapBackend:
    """Blocks of a C-ordered file through a memory map that lives only while one block is copied out."""

    def __init__(
        self, path: Path, shape: tuple[int, ...], dtype: np.dtype, perm: tuple[int, ...], offset: int = 0
    ) -> None:
        self.dtype = np.dtype(dtype)
        self._path = path
        self._offset = offset
        self._shape = shape
        self._perm = perm
        self._closed = False

    def block(self, axis: int | None, start: int, stop: int) -> np.ndarray:
        if self._closed:
            raise ValueError(f"{self._path} is closed")
        index = [slice(None)] * len(self._perm)
        if axis is not None:
            index[self._perm[axis]] = slice(start, stop)
        mapped = np.memmap(self._path, dtype=self.dtype, mode="r", offset=self._offset, shape=self._shape)
        data = np.array(mapped[tuple(index)])
        del mapped  # unmapped here: its pages leave the resident set
        return data.transpose(self._perm)

    def close(self) -> None:
        self._closed = True


def check_finite(path: Path, frames: np.ndarray, first: int) -> None:
    """Raise naming the first frame (absolute index ``first + i``) holding NaN or Inf."""
    if frames.size == 0:
        return
    bad = ~np.isfinite(frames.reshape(frames.shape[0], -1))
    counts = bad.sum(axis=1)
    hits = np.flatnonzero(counts)
    if hits.size:
        i = int(hits[0])
        raise ScanError(path, f"frame {first + i}: {int(counts[i])} non-finite values (NaN/Inf)")


@dataclass(eq=False)
class ScanSource:
    """One scan opened for reading: a file, or a directory of 2-D frame files.

    ``read(start, stop)`` returns float32 ``(stop - start, Y, X)`` frames; sources are context
    managers and ``close()`` releases file handles. Inputs are only ever opened read-only.
    ``axes`` is what ``--axes`` said (None: not given); ``axes_used`` names the stored axes as they were
    read, in the user's order; ``reduction`` is set when a depth axis is reduced to MAP frames.
    """

    name: str
    paths: tuple[Path, ...]
    reader: str
    variable: str | None
    source_dtype: np.dtype
    source_shape: tuple[int, ...]
    shape: tuple[int, int, int]
    depth_axis: int | None = None
    axes: str | None = None
    axes_used: str | None = None
    reduction: Reduction | None = None
    order: str | None = None
    first_line: str | None = None
    """The direction of column 0 when the file itself says it (point scans); None: ``--first-line`` decides."""
    _hashes: dict[Path, tuple[int, str]] = field(default_factory=dict, repr=False)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` as C-contiguous float32; ScanError on NaN/Inf or unreadable data.

        The array is the caller's (never a buffer the source fills again on its next read): ingest
        writes it on another thread while it reads the next chunk.
        """
        raise NotImplementedError

    def read_maps(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Frames ``start:stop`` and, where a depth axis is reduced, the depth of each MAP value (samples)."""
        return self.read(start, stop), None

    def close(self) -> None:
        """Release file handles; reading afterwards is an error."""

    def physical(self) -> dict[str, Any] | None:
        """The store's ``physical`` attribute: the depth scale, when a depth axis is reduced and its scale known."""
        return None if self.reduction is None else self.reduction.physical()

    def findings(self) -> list[Any]:
        """Warnings the reader itself found (``checks.Finding``; point scans); none by default."""
        return []

    def __enter__(self) -> ScanSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.shape[0]

    def _check_range(self, start: int, stop: int) -> None:
        if not 0 <= start <= stop <= self.shape[0]:
            raise ValueError(f"frames {start}:{stop} out of range for {self.shape[0]} frames")

    def provenance(self) -> dict[str, Any]:
        """JSON-able description of where the frames came from (sha256 computed once, cached).

        ``axes``, ``map`` and ``order`` appear only when given (``--axes``), used (a depth axis was
        reduced) or meaningful (binary files), so stores read as before keep their fingerprint.
        """
        files = []
        for p in self.paths:
            if p not in self._hashes:
                self._hashes[p] = (os.stat(p).st_size, sha256_file(p))
            size, digest = self._hashes[p]
            entry: dict[str, Any] = {"path": str(Path(p).resolve()), "size": size, "sha256": digest}
            raw = os.fsencode(entry["path"])
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:  # a file name that is not UTF-8: keep its exact bytes
                entry["path_bytes_hex"] = raw.hex()
            files.append(entry)
        optional = {"axes": self.axes, "map": None if self.reduction is None else self.reduction.params(),
                    "order": self.order}  # fmt: skip
        return {
            "name": self.name,
            "reader": self.reader,
            "variable": self.variable,
            "source_dtype": str(self.source_dtype),
            "source_shape": [int(s) for s in self.source_shape],
            "shape": [int(s) for s in self.shape],
            "depth_axis": self.depth_axis,
            **{k: v for k, v in optional.items() if v is not None},
            "files": files,
        }


RAW_READ_BYTES = 16 * 2**20
"""Stored bytes read at once while reducing a depth axis (at least one frame)."""


class FileScanSource(ScanSource):
    """A scan held in one file, read through a format-specific :class:`Backend`."""

    def __init__(
        self,
        name: str,
        layout: Layout,
        plan: FramePlan,
        backend: Backend,
        depth_axis: int | None,
        *,
        axes: str | None = None,
        axes_used: str | None = None,
        reduction: Reduction | None = None,
        order: str | None = None,
    ) -> None:
        super().__init__(
            name=name,
            paths=(layout.path,),
            reader=layout.reader,
            variable=layout.variable,
            source_dtype=backend.dtype,
            source_shape=layout.source_shape,
            shape=plan.shape,
            depth_axis=depth_axis,
            axes=axes,
            axes_used=axes_used,
            reduction=reduction if plan.depth is not None else None,
            order=order,
        )
        self.layout = layout
        self.plan = plan
        self._backend: Backend | None = backend

    def _block(self, start: int, stop: int) -> np.ndarray:
        """Stored values of frames ``start:stop`` in pipeline orientation, as one-line ScanErrors on failure."""
        if self._backend is None:
            raise ValueError(f"{self.name}: scan source is closed")
        try:
            raw = self._backend.block(self.plan.frame_axis, start, stop)
        except ScanError:
            raise
        except Exception as exc:
            which = f"frame {start}" if stop - start == 1 else f"frames {start}-{stop - 1}"
            raise ScanError(self.layout.path, f"cannot read {which}: {one_line(exc)}") from None
        if raw.dtype.kind not in NUMERIC_KINDS:
            check_dtype(self.layout.path, raw.dtype)
        return raw

    def physical(self) -> dict[str, Any] | None:
        """The depth scale where known, and the pixel size and frame interval the file states along the
        frames as read (``physical.py``; with their provenance under ``found``)."""
        from .physical import file_physical

        out = dict((self.reduction.physical() if self.reduction is not None else None) or {})
        out.update(file_physical(self.layout, self.plan))
        return out or None

    def alines(self, start: int, stop: int) -> np.ndarray:
        """The A-lines of frames ``start:stop`` as stored, ``(n, Y, X, Z)`` (a view; depth axis last)."""
        if self.plan.depth is None:
            raise ValueError(f"{self.name}: no depth axis")
        raw = np.moveaxis(self._block(start, stop), self.plan.depth, -1)
        return raw if self.plan.frame_axis is not None else raw[None]

    def fetch(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` as float32 without the non-finite check (used to prove a file whole)."""
        return self.fetch_maps(start, stop)[0]

    def fetch_maps(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Frames ``start:stop`` (and depth maps where a depth axis is reduced), without the non-finite check."""
        self._check_range(start, stop)
        if self._backend is None:
            raise ValueError(f"{self.name}: scan source is closed")
        _, y, x = self.shape
        if start == stop:
            empty = np.empty((0, y, x), dtype=np.float32)
            return empty, (None if self.reduction is None else empty.copy())
        if self.reduction is not None:
            return self._reduce(start, stop)
        raw = self._block(start, stop)
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.array(raw, dtype=np.float32, order="C")
        if out.ndim == 2:
            out = out[None]
        if out.shape != (stop - start, y, x):
            path = self.layout.path
            raise ScanError(path, f"read frames of shape {shape_str(out.shape)}, expected {shape_str((stop - start, y, x))}")
        return out, None

    def read_volume(self, start: int, stop: int) -> np.ndarray:
        """The depth profiles whose maxima are the MAP, ``(n, Zw, Y, X)`` float32 (``--keep-volume``)."""
        assert self.reduction is not None
        from .reduce import volume_frame

        lines = self.alines(start, stop)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.stack([volume_frame(lines[i], self.reduction) for i in range(stop - start)])

    def _reduce(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """MAP and depth frames, reading a few frames' A-lines at a time (flat memory over long chunks)."""
        assert self.reduction is not None
        _, y, x = self.shape
        out = np.empty((stop - start, y, x), dtype=np.float32)
        depth = np.empty_like(out)
        per_frame = nbytes_of(self.layout.pipeline_shape, self.layout.source_dtype) // max(self.shape[0], 1)
        step = max(1, RAW_READ_BYTES // max(per_frame, 1))
        for t0 in range(start, stop, step):
            t1 = min(t0 + step, stop)
            lines = self.alines(t0, t1)
            if lines.shape != (t1 - t0, y, x, lines.shape[-1]):
                got, want = shape_str(lines.shape[:3]), shape_str((t1 - t0, y, x))
                raise ScanError(self.layout.path, f"read frames of shape {got}, expected {want}")
            with np.errstate(over="ignore", invalid="ignore"):
                for i in range(t1 - t0):
                    out[t0 - start + i], depth[t0 - start + i] = reduce_frame(lines[i], self.reduction)
        return out, depth

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.read_maps(start, stop)[0]

    def read_maps(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        frames, depth = self.fetch_maps(start, stop)
        check_finite(self.layout.path, frames, start)
        return frames, depth

    def verify(self) -> None:
        """Read the first and last frames: headers can look fine on a truncated file."""
        self.fetch(0, 1)
        if self.shape[0] > 1:
            self.fetch(self.shape[0] - 1, self.shape[0])

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


@dataclass(frozen=True)
class VarInfo:
    """One array a container file holds (npz member, HDF5 dataset, MATLAB variable)."""

    name: str
    shape: tuple[int, ...]
    kind: str
    numeric: bool

    def describe(self) -> str:
        return f"{self.name} {shape_str(self.shape)} {self.kind}"


def _list(infos: list[VarInfo], limit: int = 12) -> str:
    text = ", ".join(i.describe() for i in infos[:limit])
    if len(infos) > limit:
        text += f", ... ({len(infos) - limit} more)"
    return text or "nothing"


def choose_variable(path: Path, infos: list[VarInfo], variable: str | None, what: str = "variable") -> VarInfo:
    """The named array, else the only numeric array with at least two axes longer than 1.

    Scalars and vectors (MATLAB stores them as 1 x N) never count as candidates. When nothing
    numeric qualifies but exactly one array of another dtype does, it is returned so that the
    caller's dtype check can say precisely what is wrong with it.
    """
    if variable is not None:
        wanted = variable.strip("/")
        for info in infos:
            if info.name.strip("/") == wanted:
                return info
        raise ScanError(path, f"no {what} {variable!r} in the file (has: {_list(infos)})")
    shaped = [i for i in infos if sum(1 for s in i.shape if s > 1) >= 2]
    numeric = [i for i in shaped if i.numeric]
    pool = numeric or shaped
    if len(pool) == 1:
        return pool[0]
    if not pool:
        raise ScanError(path, f"no 2-D/3-D numeric array found (has: {_list(infos)})")
    raise ScanError(path, f"several arrays could be the scan: {_list(pool)}; pass --variable NAME")
