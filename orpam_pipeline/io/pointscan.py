"""Point-scan files (``--positions``): A-lines ``(N, Z)`` beside a positions table ``(N, 2|3)`` in one file.

The positions (small) are read once and turned into a grid (``grid.py``): which A-lines form each
frame and where each one goes. Frames are then assembled from the A-lines of the frames asked for
only, a block of A-lines at a time, and reduced along depth by the same MAP reduction as A-line
volumes (``reduce.py``), so memory stays bounded by one frame's A-lines. Scan parameters the file
carries (``scan_params.py``) fill ``--sampling-rate`` when it is not given and give the pixel size.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ScanError
from ._base import (
    RAW_READ_BYTES,
    Backend,
    FileScanSource,
    Layout,
    VarInfo,
    _list,
    check_frame_memory,
    choose_variable,
    nbytes_of,
    one_line,
    plan_frames,
    shape_str,
)
from .grid import Grid, GridError, build_grid
from .reduce import Reduction
from .scan_params import Found, find_scan_params, pixel_um
from .spec import ReadSpec

CONTAINERS = ("npz", "hdf5", "mat-v4", "mat-v5", "mat-v7.3")
"""Readers of files that hold several arrays, the only ones a positions table can sit in."""


def aline_axes(shape: tuple[int, ...], n: int) -> tuple[tuple[int, ...], int] | None:
    """The axes (in the user's order) that count ``n`` A-lines and the depth axis, or None.

    ``(N, Z)`` and ``(N1, N2, ..., Z)`` with ``N1 * N2 * ... = N`` (depth last) are tried first, then
    ``(Z, N)`` and ``(Z, N1, N2, ...)`` (depth first, as MATLAB users often store A-lines as columns).
    """
    k = len(shape)
    if k >= 2 and math.prod(shape[:-1]) == n and shape[-1] >= 2:
        return tuple(range(k - 1)), k - 1
    if k >= 2 and math.prod(shape[1:]) == n and shape[0] >= 2:
        return tuple(range(1, k)), 0
    return None


def positions_shape(shape: tuple[int, ...]) -> int | None:
    """The number of positions of a table of this shape (``(N, 2|3)`` or ``(2|3, N)``), or None."""
    if len(shape) != 2:
        return None
    if shape[1] in (2, 3) and shape[0] >= 8:
        return shape[0]
    if shape[0] in (2, 3) and shape[1] >= 8:
        return shape[1]
    return None


def as_table(array: np.ndarray) -> np.ndarray:
    """A positions table as float64 ``(N, 2|3)``; one stored ``(2|3, N)`` is transposed."""
    table = np.asarray(array, dtype=np.float64)
    return table if table.shape[1] in (2, 3) and table.shape[0] >= 8 else table.T


def find_pair(arrays: list[tuple[str, tuple[int, ...], bool]]) -> tuple[str, str, int, bool] | None:
    """A positions table and the A-lines beside it among ``(name, shape, numeric)``: names, N, and whether
    the A-line array is the only candidate (so ``--variable`` is not needed)."""
    for name, shape, numeric in sorted(arrays, key=lambda a: math.prod(a[1])):
        n = positions_shape(shape) if numeric else None
        if n is None:
            continue
        partners = [a for a in arrays if a[0] != name and a[2] and aline_axes(a[1], n)]
        if partners:
            best = max(partners, key=lambda a: math.prod(a[1]))
            alone = sum(1 for a in partners if math.prod(a[1]) == math.prod(best[1])) == 1
            return name, best[0], n, alone
    return None


def _arrays(path: Path, reader: str) -> list[VarInfo]:
    """Every array of a container file, with its shape in the user's order."""
    if reader == "npz":
        from .numpy_files import _npz_members

        return [info for info, _, _ in _npz_members(path)]
    if reader in ("hdf5", "mat-v7.3"):
        from .hdf5 import _datasets, _open_file

        with _open_file(path, reader == "mat-v7.3") as f:
            return [info for info, _ in _datasets(path, f, reader == "mat-v7.3").values()]
    import scipy.io

    from .hdf5 import MATLAB_NUMERIC

    return [VarInfo(name, tuple(int(s) for s in shape), cls, cls in MATLAB_NUMERIC)
            for name, shape, cls in scipy.io.whosmat(str(path))]  # fmt: skip


def _open_backend(layout: Layout) -> Backend:
    from .readers import _opener

    try:
        return _opener(layout)(layout)
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(layout.path, f"cannot open: {type(exc).__name__}: {one_line(exc)}") from None


def read_positions(path: Path, name: str) -> tuple[Layout, np.ndarray]:
    """The positions table ``(N, 2|3)`` as float64 (a ``(2|3, N)`` table is transposed)."""
    from .readers import inspect_file

    layout = inspect_file(path, name)
    if layout.reader not in CONTAINERS:
        raise ScanError(path, f"--positions needs a file holding several arrays (.mat, .npz, .h5), not a {layout.reader} file")
    shape = layout.pipeline_shape
    if positions_shape(shape) is None:
        raise ScanError(path, f"positions {layout.variable!r} of shape {shape_str(layout.user_shape)}: expected "
                              "(N, 2) or (N, 3) stage coordinates (N >= 8)")  # fmt: skip
    backend = _open_backend(layout)
    try:
        table = as_table(backend.block(None, 0, 0))
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(path, f"cannot read positions {layout.variable!r}: {one_line(exc)}") from None
    finally:
        backend.close()
    return layout, table


def _choose_alines(path: Path, infos: list[VarInfo], positions: str, n: int, variable: str | None) -> VarInfo:
    """The named A-line array, else the largest numeric array holding ``n`` A-lines (not the positions)."""
    if variable is not None:
        chosen = choose_variable(path, infos, variable)
        if chosen.name.strip("/") == positions.strip("/"):
            raise ScanError(path, f"--variable and --positions both name {positions!r}; --variable names the A-lines")
        return chosen
    pool = [i for i in infos if i.numeric and i.name.strip("/") != positions.strip("/") and aline_axes(i.shape, n)]
    if not pool:
        raise ScanError(path, f"no array holds the {n} A-lines of positions {positions!r} as (N, Z), (Z, N) or "
                              f"(N1, N2, ..., Z) (has: {_list(infos)}); name it with --variable")  # fmt: skip
    size = max(math.prod(i.shape) for i in pool)
    largest = [i for i in pool if math.prod(i.shape) == size]
    if len(largest) > 1:
        raise ScanError(path, f"several arrays could hold the A-lines: {_list(largest)}; pass --variable NAME")
    return largest[0]


def _scan_metadata(path: Path) -> dict[str, Any]:
    """The file's small values (survey.py), or nothing when they cannot be listed."""
    from .survey import survey_file

    try:
        return survey_file(path).metadata
    except ScanError:
        return {}


class PointScanSource(FileScanSource):
    """Frames assembled from a point scan's A-lines on the grid of its positions, reduced to MAP frames."""

    def __init__(self, name: str, layout: Layout, grid: Grid, backend: Backend, reduction: Reduction,
                 positions: str, found: dict[str, Found], depth_axis: int) -> None:  # fmt: skip
        z = layout.pipeline_shape[-1]
        plan = plan_frames(layout.path, (grid.frames, grid.rows, grid.cols, z), 3)
        check_frame_memory(layout.path, layout, plan)
        super().__init__(name, layout, plan, backend, None, reduction=reduction)
        self.grid = grid
        self.positions = positions
        self.found = found
        self.first_line = grid.first_line
        self._depth_axis = depth_axis
        self._depth = z
        self._inner = math.prod(layout.pipeline_shape[1:-1])
        per_line = nbytes_of((z,), backend.dtype)
        self._block_lines = max(self._inner, RAW_READ_BYTES // per_line // self._inner * self._inner)
        scale = pixel_um(found, grid.step, grid.fast)
        self.pixel_um, self.pixel_from = scale if scale is not None else (None, None)

    def _lines(self, a: int, b: int) -> np.ndarray:
        """A-lines ``a:b`` (linear index over the A-line axes) as stored, ``(b - a, Z)``."""
        if self._backend is None:
            raise ValueError(f"{self.name}: scan source is closed")
        o0, o1 = a // self._inner, -(-b // self._inner)
        try:
            raw = self._backend.block(0, o0, o1)
        except ScanError:
            raise
        except Exception as exc:
            raise ScanError(self.layout.path, f"cannot read A-lines {a}-{b - 1}: {one_line(exc)}") from None
        expected = (o1 - o0, *self.layout.pipeline_shape[1:])
        if raw.shape != expected:
            raise ScanError(self.layout.path, f"read A-lines of shape {shape_str(raw.shape)}, expected {shape_str(expected)}")
        start = a - o0 * self._inner
        return raw.reshape(-1, self._depth)[start : start + b - a]

    def alines(self, start: int, stop: int) -> np.ndarray:
        """The A-lines of frames ``start:stop`` put on the grid, ``(n, Y, X, Z)``; only their A-lines are read."""
        if self._backend is None:
            raise ValueError(f"{self.name}: scan source is closed")
        g = self.grid
        out = np.empty((stop - start, g.rows * g.cols, self._depth), dtype=self._backend.dtype)
        for t in range(start, stop):
            n0, n1 = int(g.starts[t]), int(g.starts[t + 1])
            for a in range(n0, n1, self._block_lines):
                b = min(a + self._block_lines, n1)
                out[t - start][g.flat[a:b]] = self._lines(a, b)
        return out.reshape(stop - start, g.rows, g.cols, self._depth)

    def provenance(self) -> dict[str, Any]:
        """The file's provenance plus ``positions`` (the table's name) and ``point_scan`` (the grid found)."""
        record = self.grid.record()
        record["found"] = {k: v.to_dict() for k, v in sorted(self.found.items())}
        if self.pixel_um is not None:
            record["pixel_um"] = {**self.pixel_um, "from": self.pixel_from}
        return {**super().provenance(), "positions": self.positions, "point_scan": record}

    def physical(self) -> dict[str, Any] | None:
        """The depth scale where known, the sampling rate and the pixel size along y and x (µm)."""
        out: dict[str, Any] = dict((self.reduction.physical() if self.reduction else None) or {})
        if self.reduction is not None and self.reduction.sampling_rate is not None:
            out.setdefault("sampling_rate_mhz", float(self.reduction.sampling_rate))
        if self.pixel_um is not None:
            out["pixel_um"] = {"y": float(self.pixel_um["y"]), "x": float(self.pixel_um["x"])}
        return out or None

    def findings(self) -> list[Any]:
        """``unidirectional-scan`` when no line runs backward; ``depth-axis-suspect`` when the A-lines do not
        oscillate along the axis read as depth."""
        from orpam_pipeline.checks import Finding
        from orpam_pipeline.checks.axes import OSCILLATING, oscillation_score

        where, g = self.layout.path, self.grid
        found = []
        if g.pattern == "unidirectional":
            toward = "increasing" if g.first_line == "forward" else "decreasing"
            found.append(Finding("unidirectional-scan", (
                f"{where}: every line of the point scan runs toward {toward} fast-axis positions (positions "
                f"{self.positions!r}): there are no backward lines, so the columns registered as backward were "
                "swept in the same direction and registration has nothing to correct"), "ingest"))  # fmt: skip
        score = oscillation_score(self.alines(0, 1).reshape(-1, self._depth))
        if score is not None and score < OSCILLATING:
            axis = self._depth_axis
            found.append(Finding("depth-axis-suspect", (
                f"{where}: the A-lines {self.layout.variable!r} of shape {shape_str(self.layout.user_shape)} show no "
                f"oscillating A-line signal along axis {axis}, read as depth (score {score:.1f}, below "
                f"{OSCILLATING:g}); check --variable (weak or envelope-detected data look the same)"), "ingest"))  # fmt: skip
        return found


def open_point_scan(path: Path, name: str, spec: ReadSpec, verify: bool = True) -> PointScanSource:
    """Open a point-scan file: positions ``spec.positions``, A-lines ``spec.variable`` (or the largest fit)."""
    from .readers import inspect_file

    path = Path(path)
    assert spec.positions is not None
    pos_layout, table = read_positions(path, spec.positions)
    positions = str(pos_layout.variable)
    n = table.shape[0]
    chosen = _choose_alines(path, _arrays(path, pos_layout.reader), positions, n, spec.variable)
    layout = inspect_file(path, chosen.name)
    fit = aline_axes(layout.user_shape, n)
    if fit is None:
        raise ScanError(path, f"A-lines {layout.variable!r} of shape {shape_str(layout.user_shape)} do not match the {n} "
                              f"positions of {positions!r}: expected (N, Z), (Z, N) or (N1, N2, ..., Z) with N = {n}")  # fmt: skip
    lines, depth = fit
    try:
        grid = build_grid(table)
    except GridError as exc:
        raise ScanError(path, f"positions {positions!r}: {exc}") from None
    del table
    matlab = layout.reader.startswith("mat-")
    slow_first = lines[::-1] if matlab else lines  # MATLAB counts A-lines column-major: the first axis fastest
    stored = [len(layout.user_shape) - 1 - u if layout.column_major else u for u in (*slow_first, depth)]
    layout = replace(layout, perm=tuple(stored))
    reduction = spec.reduction
    problem = reduction.check(layout.pipeline_shape[-1])
    if problem is not None:
        raise ScanError(path, f"{problem} (shape {shape_str(layout.user_shape)})")
    found = find_scan_params(_scan_metadata(path))
    if reduction.sampling_rate is None and "sampling_rate_mhz" in found:
        reduction = replace(reduction, sampling_rate=found["sampling_rate_mhz"].value)
    backend = _open_backend(layout)
    try:
        source = PointScanSource(name, layout, grid, backend, reduction, positions, found, depth)
        if verify:
            source.verify()
    except BaseException:
        backend.close()
        raise
    return source
