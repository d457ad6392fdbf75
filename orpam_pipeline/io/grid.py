"""A point scan's positions table turned into a grid: where each A-line goes in the ``(T, Y, X)`` frames.

Point-scan systems record A-lines one by one with the stage position of each, ``(N, 2)`` or
``(N, 3)``. The positions define a regular grid, found once from the table (it is small) so that the
A-lines of any chunk of frames can then be read and put in place (``pointscan.py``):

- the **fast axis** is the column that changes between most consecutive A-lines (the larger median
  step), the other one is the slow axis; lines are runs of A-lines at one slow grid position;
- the **step** of an axis comes from its sorted coordinates: gaps below half a step are jitter
  within one grid position, the others separate neighbouring positions; the step is the median
  distance between neighbouring positions' centres (a missing position makes a multiple), then step
  and origin are fitted to the centres;
- every A-line goes to its grid position, y along the fast axis (increasing coordinate), x the line
  index in the order lines were taken (the first line is column 0); frames repeat the pattern, or a
  third column numbers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

JITTER = 0.3
"""Farthest a position may lie from its grid point, in steps; farther is refused (not a regular grid)."""
MIN_ALINES = 8
"""A frame needs at least 4 x 2 grid points; a frame index column numbering fewer per frame is not one."""
MAX_GRID_POINTS = 2**28


class GridError(ValueError):
    """Positions that do not form the grid of a point scan; the message is one line."""


@dataclass(frozen=True)
class Grid:
    """Where the A-lines go: A-lines ``starts[t]:starts[t + 1]`` form frame ``t``; A-line ``n`` lands at
    ``flat[n] = y * cols + x`` of its frame. ``step`` and ``origin`` are in stage units, along (y, x)."""

    frames: int
    rows: int
    cols: int
    starts: np.ndarray
    flat: np.ndarray
    fast: int
    slow: int
    step: tuple[float, float]
    origin: tuple[float, float]
    slow_sign: int
    pattern: str
    first_line: str
    frames_from: str
    third_column: str | None
    jitter: float

    def record(self) -> dict[str, Any]:
        """JSON-able description (provenance; part of the ingest fingerprint)."""
        return {
            "alines": int(self.starts[-1]), "frames": self.frames, "rows": self.rows, "cols": self.cols,
            "fast_column": self.fast, "slow_column": self.slow, "third_column": self.third_column,
            "step": [float(s) for s in self.step], "origin": [float(o) for o in self.origin],
            "slow_direction": "increasing" if self.slow_sign > 0 else "decreasing",
            "pattern": self.pattern, "first_line": self.first_line, "frames_from": self.frames_from,
            "max_jitter_steps": round(float(self.jitter), 6),
        }  # fmt: skip

    def stage(self, y: int, x: int) -> tuple[float, float]:
        """Stage coordinates (fast, slow) of grid point ``(y, x)``."""
        level = x if self.slow_sign > 0 else self.cols - 1 - x
        return self.origin[0] + y * self.step[0], self.origin[1] + level * self.step[1]


@dataclass(frozen=True)
class _Axis:
    step: float
    origin: float
    index: np.ndarray
    count: int
    jitter: float


def _axis(values: np.ndarray, threshold: float, name: str) -> _Axis:
    """Grid step, origin and index of every value along one axis; ``threshold`` starts the jitter/step split."""
    v = np.sort(values)
    gaps = np.diff(v)
    t = threshold
    for _ in range(32):
        big = gaps[gaps > t]
        if big.size == 0:
            raise GridError(f"the {name} coordinate stays at one position")
        step = float(np.median(big))
        if step / 2 == t:
            break
        t = step / 2
    level = np.concatenate(([0], np.cumsum(gaps > t)))
    centres = np.bincount(level, weights=v) / np.bincount(level)
    if centres.size > 1:  # gaps run from one position's last value to the next one's first: short by the jitter
        step = float(np.median(np.diff(centres)))
    multiple = np.maximum(1.0, np.rint(np.diff(centres) / step))
    ideal = np.concatenate(([0.0], np.cumsum(multiple)))
    step, origin = (float(c) for c in np.polyfit(ideal, centres, 1)) if ideal.size > 1 else (step, float(centres[0]))
    scaled = (values - origin) / step
    index = np.rint(scaled)
    first = index.min()
    index -= first
    origin += first * step
    off = np.abs(scaled - np.rint(scaled))
    worst = int(np.argmax(off))
    if off[worst] > JITTER:
        raise GridError(f"position {worst} lies {off[worst]:.2f} steps off the {name} grid (step {step:.6g}); "
                        f"a point scan needs a regular grid (jitter below {JITTER:g} step)")  # fmt: skip
    return _Axis(step, origin, index.astype(np.int64), int(index.max()) + 1, float(off[worst]))


def _third_column(column: np.ndarray) -> str:
    """``frame index`` (whole numbers, non-decreasing, at least two values), ``time`` (increasing, other
    values), ``constant`` or ``coordinate`` (decided against the grid step later)."""
    rising = bool(np.all(np.diff(column) >= 0))
    whole = bool(np.all(np.abs(column - np.rint(column)) < 1e-6))
    distinct = np.unique(column).size
    if distinct == 1:
        return "constant"
    if rising and whole and distinct <= column.size // MIN_ALINES:
        return "frame index"
    if rising:
        return "time"
    return "coordinate"


def _repeats(key: np.ndarray, size: int) -> np.ndarray:
    """Frame starts where the pattern repeats: a frame ends before the first A-line at a grid point it holds."""
    starts = [0]
    n = key.size
    while starts[-1] < n:
        s = starts[-1]
        window = key[s : s + size + 1]
        _, first = np.unique(window, return_index=True)
        if first.size == window.size:
            starts.append(s + window.size)
            continue
        repeated = np.ones(window.size, dtype=bool)
        repeated[first] = False
        starts.append(s + int(np.flatnonzero(repeated)[0]))
    return np.asarray(starts, dtype=np.int64)


def _check_complete(key: np.ndarray, starts: np.ndarray, size: int, describe: Any) -> None:
    """Every frame holds every grid point exactly once; else one line naming the count and the first gap."""
    counts = np.diff(starts)
    for t in range(counts.size):
        part = key[starts[t] : starts[t + 1]]
        values, first, seen = np.unique(part, return_index=True, return_counts=True)
        if (seen > 1).any():
            point = int(values[np.argmax(seen > 1)])
            twice = np.flatnonzero(part == point)[:2] + starts[t]
            raise GridError(f"A-lines {twice[0]} and {twice[1]} of frame {t} fall on the same grid point "
                            f"({describe(t, point)})")  # fmt: skip
    missing = int((size - counts).sum())
    if missing:
        t = int(np.argmax(counts < size))
        held = np.zeros(size, dtype=bool)
        held[key[starts[t] : starts[t + 1]]] = True
        point = int(np.flatnonzero(~held)[0])
        frames = counts.size
        raise GridError(f"{missing} grid position{'s' if missing != 1 else ''} of {frames} frame{'s' if frames != 1 else ''} "
                        f"have no A-line (first: frame {t}, {describe(t, point)}); a point scan must visit "
                        "every grid point of every frame")  # fmt: skip


def _directions(frame_of: np.ndarray, y: np.ndarray, x: np.ndarray, frames: int, cols: int) -> np.ndarray:
    """The direction (+1 toward increasing y, -1) of every line of every frame, ``(frames, cols)``."""
    same = (frame_of[1:] == frame_of[:-1]) & (x[1:] == x[:-1])
    step = np.sign(y[1:] - y[:-1])[same]
    where = (frame_of[:-1] * cols + x[:-1])[same]
    votes = np.bincount(where, weights=step, minlength=frames * cols).reshape(frames, cols)
    return np.sign(votes).astype(np.int64)


def _signs(directions: np.ndarray, limit: int = 8) -> str:
    text = " ".join("+" if d > 0 else "-" if d < 0 else "0" for d in directions[:limit])
    return text + (" ..." if directions.size > limit else "")


def build_grid(positions: np.ndarray) -> Grid:
    """The grid of a positions table ``(N, 2|3)`` (see the module docstring); :class:`GridError` when there is none."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] not in (2, 3):
        raise GridError(f"positions of shape {tuple(p.shape)}; expected (N, 2) or (N, 3)")
    n = p.shape[0]
    if n < MIN_ALINES:
        raise GridError(f"only {n} positions; a frame needs at least 4 x 2 grid points")
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise GridError(f"position {i} is not finite ({', '.join(f'{v:g}' for v in p[i])})")
    moves = np.median(np.abs(np.diff(p[:, :2], axis=0)), axis=0)
    fast = 0 if moves[0] >= moves[1] else 1
    slow = 1 - fast
    if moves[fast] == 0:
        raise GridError("the positions do not change between most consecutive A-lines (several A-lines per "
                        "position are not supported)")  # fmt: skip
    f_axis = _axis(p[:, fast], moves[fast] / 2, "fast")
    if np.ptp(p[:, slow]) < f_axis.step / 2:
        raise GridError(f"the slow coordinate (column {slow}) stays at one position: the positions hold a single line")
    s_axis = _axis(p[:, slow], float(np.max(np.diff(np.sort(p[:, slow])))) / 2, "slow")
    third = None
    frame_index = None
    if p.shape[1] == 3:
        third = _third_column(p[:, 2])
        if third == "coordinate" and np.ptp(p[:, 2]) >= min(f_axis.step, s_axis.step) / 2:
            raise GridError(f"the third column moves by {np.ptp(p[:, 2]):.6g} (more than half a step) and is neither "
                            "a frame index (whole numbers, non-decreasing) nor time; scans over three stage axes "
                            "are not supported")  # fmt: skip
        if third == "frame index":
            frame_index = p[:, 2]
    rows, cols = f_axis.count, s_axis.count
    size = rows * cols
    if size > MAX_GRID_POINTS:
        raise GridError(f"a grid of {rows} x {cols} points exceeds the limit of 2**28 pixels per frame")
    y, level = f_axis.index, s_axis.index
    key = y * cols + level
    if frame_index is not None:
        _, begins = np.unique(frame_index, return_index=True)
        starts = np.append(np.sort(begins), n).astype(np.int64)
        frames_from = "frame index column"
    else:
        starts = _repeats(key, size)
        frames_from = "repeats" if starts.size > 2 else "single frame"

    def describe(t: int, point: int) -> str:
        yy, ll = divmod(point, cols)
        at = [0.0, 0.0]
        at[fast], at[slow] = f_axis.origin + yy * f_axis.step, s_axis.origin + ll * s_axis.step
        return f"fast index {yy}, slow index {ll}, stage ({at[0]:.6g}, {at[1]:.6g})"

    _check_complete(key, starts, size, describe)
    frames = starts.size - 1
    slow_sign = -1 if level[starts[1] - 1] < level[0] else 1
    x = level if slow_sign > 0 else cols - 1 - level
    frame_of = np.repeat(np.arange(frames, dtype=np.int64), np.diff(starts))
    directions = _directions(frame_of, y, x, frames, cols)
    if (directions == 0).any():
        t, c = (int(v[0]) for v in np.nonzero(directions == 0))
        raise GridError(f"line {c} of frame {t} does not run along the fast axis (its A-lines are not consecutive)")
    changed = (directions != directions[0]).any(axis=1)
    if changed.any():
        t = int(np.argmax(changed))
        raise GridError(f"the lines of frame {t} run in other directions than those of frame 0 "
                        f"({_signs(directions[t])} against {_signs(directions[0])}); frames must repeat one pattern")  # fmt: skip
    first = directions[0]
    alternating = first[0] * (-1) ** np.arange(cols)
    if (first == alternating).all():
        pattern = "serpentine"
    elif (first == first[0]).all():
        pattern = "unidirectional"
    else:
        raise GridError(f"the line directions ({_signs(first)}) neither alternate (serpentine) nor stay the same "
                        "(unidirectional)")  # fmt: skip
    return Grid(
        frames=frames, rows=rows, cols=cols, starts=starts, flat=y * cols + x, fast=fast, slow=slow,
        step=(f_axis.step, s_axis.step), origin=(f_axis.origin, s_axis.origin), slow_sign=slow_sign,
        pattern=pattern, first_line="forward" if first[0] > 0 else "backward", frames_from=frames_from,
        third_column=third, jitter=max(f_axis.jitter, s_axis.jitter),
    )  # fmt: skip
