"""Guess what each axis of a stored array is, from a few bounded reads: ``t`` (frames), ``y`` (along a
line), ``x`` (line index), ``z`` (depth of a raw A-line volume).

* **Depth** is the axis along which the signal oscillates: photoacoustic A-lines are band-pass, so
  their spectrum peaks away from zero frequency, where image axes (smooth structure plus white
  noise) peak at zero or are flat. Pencils along every axis are read at a few evenly spread
  positions of the others; :func:`depth_score` compares the spectral peak with the lowest
  frequencies and with the median level.
* **Frames** follow the reader's convention (NumPy ``(T, Y, X)``, MATLAB ``(Y, X, T)``): nothing in
  the data tells time from space reliably.
* **Line direction** comes from the comb: bidirectional lines alternate between neighbouring
  *lines*, so the alternating-line energy is strong across ``x`` and weak across ``y``
  (``checks.measures.comb_energy``). Too little comb either way leaves the convention standing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orpam_pipeline.checks.measures import comb_energy

Reader = Callable[[tuple[slice, ...]], "np.ndarray | None"]
PENCIL_MAX = 4096
"""Longest pencil read along an axis (centred)."""
PENCIL_POSITIONS = 4
"""Positions per other axis at which pencils are read (evenly spread)."""
DEPTH_MIN_LENGTH = 16
DEPTH_SCORE = 4.0
"""An axis is depth when its spectral peak is this many times both its lowest-frequency and its median level."""
PLANE = 192
"""Side of the in-frame window read for the comb (centred); :data:`PLANE_DEPTH` when a depth axis is read too."""
PLANE_DEPTH = 96
DEPTH_WINDOW = 512
"""Depth samples read for the comb's MAP frames, centred on where the pencils found the most energy."""
FRAMES_READ = 3
COMB_RATIO = 3.0
"""The comb decides the line direction when one direction has this many times the other's energy."""


@dataclass
class AxesGuess:
    """Letters per axis in the user's order, and the evidence behind them."""

    letters: str
    depth_scores: list[float | None] = field(default_factory=list)
    comb_columns: float | None = None
    comb_rows: float | None = None
    lines: str = "columns"
    """``columns`` (the convention), ``rows`` (the comb says the lines are rows), or ``undecided``."""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"letters": self.letters, "depth_scores": self.depth_scores, "comb_between_columns": self.comb_columns,
                "comb_between_rows": self.comb_rows, "lines": self.lines, "notes": self.notes}  # fmt: skip


def _centred(n: int, length: int) -> slice:
    start = max(0, (n - length) // 2)
    return slice(start, start + min(n, length))


def _spread(n: int, count: int = PENCIL_POSITIONS) -> slice:
    return slice(0, n, max(1, math.ceil(n / count)))


def depth_score(pencils: np.ndarray) -> float:
    """Spectral peak (above the lowest bins, below 85% of Nyquist) over the larger of the lowest-frequency
    and the median level, for pencils ``(..., L)`` each demeaned and tapered."""
    p = np.asarray(pencils, dtype=np.float64).reshape(-1, pencils.shape[-1])
    n = p.shape[-1]
    p = (p - p.mean(axis=-1, keepdims=True)) * np.hanning(n)[None, :]
    power = (np.abs(np.fft.rfft(p, axis=-1)) ** 2).mean(axis=0)
    if power.size < 8 or not np.isfinite(power).all() or power[1:].max() <= 0:
        return 0.0
    kernel = np.ones(3) / 3.0
    smooth = np.convolve(power, kernel, mode="same")
    low = float(smooth[1:3].mean())
    top = int(0.85 * (power.size - 1))
    band = smooth[3:top]
    if band.size == 0:
        return 0.0
    peak = float(band.max())
    floor = max(low, float(np.median(smooth[1:])), 1e-300)
    return peak / floor


def _read_pencils(read: Reader, shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    index = tuple(_centred(n, PENCIL_MAX) if a == axis else _spread(n) for a, n in enumerate(shape))
    data = read(index)
    return None if data is None else np.moveaxis(np.asarray(data), axis, -1)


def guess_axes(
    read: Reader, shape: tuple[int, ...], pipeline_perm: tuple[int, ...], allow_depth: bool = True
) -> AxesGuess:
    """Letters for an array of ``shape`` (user's order); ``pipeline_perm[i]`` is the user axis that is
    pipeline axis ``i`` (the reader's convention, ``(T, Y, X)`` after any MATLAB reordering).
    ``allow_depth=False`` skips the depth search (a stack of 2-D frame files has none)."""
    ndim = len(shape)
    scores: list[float | None] = [None] * ndim
    depth: int | None = None
    notes: list[str] = []
    depth_centre = 0
    if ndim >= 3 and allow_depth:
        energy: dict[int, int] = {}
        for a, n in enumerate(shape):
            if n >= DEPTH_MIN_LENGTH:
                pencils = _read_pencils(read, shape, a)
                if pencils is not None:
                    scores[a] = round(depth_score(pencils), 2)
                    flat = np.asarray(pencils, dtype=np.float64).reshape(-1, pencils.shape[-1])
                    profile = np.square(flat - flat.mean(axis=-1, keepdims=True)).sum(axis=0)
                    energy[a] = _centred(n, PENCIL_MAX).start + int(np.argmax(profile))
        candidates = [(s, a) for a, s in enumerate(scores) if s is not None and s >= DEPTH_SCORE]
        if candidates:
            depth = max(candidates)[1]
            depth_centre = energy[depth]
    order = [a for a in pipeline_perm if a != depth]
    letters = [""] * ndim
    if depth is not None:
        letters[depth] = "z"
    if len(order) > 3:
        notes.append(f"{len(order)} axes besides depth: the readers take at most frames, lines and depth")
        return AxesGuess("?" * ndim, scores, notes=notes)
    names = ("t", "y", "x") if len(order) == 3 else ("y", "x")
    for a, name in zip(order, names):
        letters[a] = name
    guess = AxesGuess("".join(letters), scores, notes=notes)
    y_axis, x_axis = order[-2], order[-1]
    plane = _plane(read, shape, depth, depth_centre, y_axis, x_axis)
    if plane is None:
        guess.lines = "undecided"
        notes.append("the data could not be sampled (too large to load in part); line direction not checked")
        return guess
    cols = float(np.nansum([comb_energy(f, "columns") for f in plane]))
    rows = float(np.nansum([comb_energy(f, "rows") for f in plane]))
    guess.comb_columns, guess.comb_rows = cols, rows
    if rows > COMB_RATIO * cols and rows > 0:
        guess.lines = "rows"
        letters[y_axis], letters[x_axis] = "x", "y"
        guess.letters = "".join(letters)
    elif not cols > COMB_RATIO * rows:
        guess.lines = "undecided"
        notes.append("no clear alternating-line (comb) pattern: the line direction follows the convention")
    return guess


def _plane(
    read: Reader, shape: tuple[int, ...], depth: int | None, depth_centre: int, y_axis: int, x_axis: int
) -> np.ndarray | None:
    """A few frames ``(k, Y', X')`` of the centred in-frame window (depth reduced by max |value|)."""
    side = PLANE if depth is None else PLANE_DEPTH
    index = []
    for a, n in enumerate(shape):
        if a in (y_axis, x_axis):
            index.append(_centred(n, side) if a == y_axis else _even_centred(n, side))
        elif a == depth:
            start = min(max(0, depth_centre - DEPTH_WINDOW // 2), max(0, n - DEPTH_WINDOW))
            index.append(slice(start, start + DEPTH_WINDOW))
        else:
            index.append(_spread(n, FRAMES_READ))
    data = read(tuple(index))
    if data is None:
        return None
    data = np.asarray(data)
    if depth is not None:
        hi = data.max(axis=depth).astype(np.float64)
        lo = data.min(axis=depth).astype(np.float64)
        data = np.maximum(hi, -lo)
        kept = [a for a in range(len(shape)) if a != depth]
    else:
        kept = list(range(len(shape)))
    data = np.moveaxis(data, [kept.index(y_axis), kept.index(x_axis)], [-2, -1])
    return data.reshape(-1, data.shape[-2], data.shape[-1])


def _even_centred(n: int, length: int) -> slice:
    """A centred window starting at an even index, so column parity (forward/backward) is kept."""
    start = max(0, (n - length) // 2) // 2 * 2
    return slice(start, start + min(n, length))
