"""Is the depth axis really depth? Does an unnamed 3-D array hide an A-line volume?

An A-line carries the transducer's carrier: along depth the signal oscillates, so its power sits in a
band away from DC. Along the other axes (and along every axis of a MAP image) the signal is smooth:
power sits near DC. The score of an axis is the mean power over 0.05-0.45 cycles/sample divided by
the mean power of the lowest frequencies (up to 0.03 cycles/sample), over the most energetic tenth
of the lines along that axis (vessels, not background). MAP scans stay below 2 (simulated sequences,
pulsation included); A-lines of usable SNR score in the tens to thousands.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from orpam_pipeline.checks import Finding

OSCILLATING = 4.0
"""Score from which an axis counts as oscillating (A-line depth)."""
MIN_LINE = 32
"""Axes shorter than this are not judged (too few frequencies)."""
MAX_LINES = 4096
TOP_FRACTION = 0.1
SCORE_BATCH = 256
"""Lines transformed together in :func:`oscillation_score`: the ingest probe's 4,096 lines of 1,024 frames
otherwise took about 130 MB of float64 and complex temporaries at once, at the end of every long ingest."""
MAX_PROBE_FRAMES = 1024
PROBE_GRID = 64


def oscillation_score(lines: np.ndarray) -> float | None:
    """Band-to-low power ratio of lines ``(n, L)`` along their last axis; None when ``L < MIN_LINE``."""
    n = lines.shape[-1]
    if n < MIN_LINE or lines.size == 0:
        return None
    step = max(1, lines.shape[0] // MAX_LINES)
    picked = lines[::step]
    window = np.hanning(n)
    power = np.empty((picked.shape[0], n // 2 + 1))
    for i in range(0, picked.shape[0], SCORE_BATCH):  # a batch's float64 temporaries, not all lines' at once
        x = np.asarray(picked[i : i + SCORE_BATCH], dtype=np.float64)
        x = x - x.mean(axis=-1, keepdims=True)
        power[i : i + SCORE_BATCH] = np.abs(np.fft.rfft(x * window, axis=-1)) ** 2
    energy = power.sum(axis=1)
    keep = max(1, int(TOP_FRACTION * energy.size))
    spectrum = power[np.argsort(energy)[-keep:]].sum(axis=0)
    freq = np.fft.rfftfreq(n)
    low = spectrum[(freq > 0) & (freq <= max(0.03, freq[1]))].mean()
    band = spectrum[(freq >= 0.05) & (freq <= 0.45)].mean()
    if not np.isfinite(band) or band <= 0:
        return 0.0
    return float(band / low) if low > 0 else float("inf")


def axis_scores(block: np.ndarray) -> list[float | None]:
    """The oscillation score along every axis of ``block``."""
    return [oscillation_score(np.moveaxis(block, a, -1).reshape(-1, block.shape[a])) for a in range(block.ndim)]


def _fmt(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.1f}"


def depth_findings(alines: np.ndarray, where: str, axes: str, shape: tuple[int, ...]) -> list[Finding]:
    """``depth-axis-suspect`` when the axis read as depth does not oscillate, or another axis more.

    ``alines`` is one frame ``(Y, X, Z)`` as stored; ``axes`` names the stored axes (user's order).
    """
    y, x, z = axis_scores(alines)
    if z is None:
        return []
    others = {"y": y, "x": x}
    stronger = [name for name, s in others.items() if s is not None and s > z and s >= OSCILLATING]
    if z >= OSCILLATING and not stronger:
        return []
    said = f"{where}: axis {axes.index('z')} of shape {tuple(int(s) for s in shape)} is read as depth (z, axes {axes})"
    if stronger:
        name = stronger[0]
        detail = (f"but axis {axes.index(name)} (read as {name}) oscillates more like A-line depth (score "
                  f"{_fmt(others[name])} against {_fmt(z)})")  # fmt: skip
    else:
        detail = (f"but shows no oscillating A-line signal (score {_fmt(z)}, below {OSCILLATING:g}; weak or already "
                  "envelope-detected data look the same)")  # fmt: skip
    message = f"{said} {detail}; check --axes (z must name the depth samples)"
    return [Finding(code="depth-axis-suspect", message=message, stage="ingest")]


class UnnamedAxesProbe:
    """Samples of a 3-D array read as ``(T, Y, X)`` frames without named axes, to tell whether one axis
    oscillates like A-line depth (then it is a volume, and ``axes-unnamed`` says to name its axes).

    Fed the frames as they are read (``feed``), it keeps the series over the first frames of a grid
    of pixels and the first frame whole: memory stays small whatever the scan's length.
    """

    def __init__(self, shape: tuple[int, int, int], where: str, axes: str, user_shape: tuple[int, ...],
                 pipeline_to_user: tuple[int, int, int]) -> None:  # fmt: skip
        t, y, x = shape
        self.where = where
        self.axes = axes
        self.user_shape = tuple(int(s) for s in user_shape)
        self.to_user = pipeline_to_user
        self.frames = min(t, MAX_PROBE_FRAMES)
        self.rows = np.unique(np.linspace(0, y - 1, min(y, PROBE_GRID)).astype(int))
        self.cols = np.unique(np.linspace(0, x - 1, min(x, PROBE_GRID)).astype(int))
        self.series = np.zeros((self.frames, self.rows.size, self.cols.size), dtype=np.float32)
        self.first: np.ndarray | None = None
        self.seen = 0

    def wants(self, start: int) -> bool:
        """Whether frames from ``start`` on are still needed."""
        return start < self.frames

    def feed(self, start: int, frames: np.ndarray) -> None:
        """Frames ``start:start + len(frames)`` as read (before any transposition)."""
        if start == 0 and len(frames):
            self.first = np.array(frames[0], dtype=np.float32)
        stop = min(start + len(frames), self.frames)
        if stop > start:
            self.series[start:stop] = frames[: stop - start][:, self.rows][:, :, self.cols]
            self.seen += stop - start

    def findings(self) -> list[Finding]:
        """``axes-unnamed`` when one axis oscillates; nothing when not every sampled frame was fed."""
        if self.first is None or self.seen < self.frames:
            return []
        scores = [oscillation_score(np.moveaxis(self.series, 0, -1).reshape(-1, self.frames)), *axis_scores(self.first)]
        best = max(range(3), key=lambda i: -1.0 if scores[i] is None else scores[i])
        if scores[best] is None or scores[best] < OSCILLATING:
            return []
        dim = self.to_user[best]
        suggestion = _spatial(len(self.user_shape), dim)
        message = (f"{self.where}: the 3-D array of shape {self.user_shape} was read as (T, Y, X) frames (axes "
                   f"{self.axes}), but its axis {dim} oscillates like A-line depth samples (score "
                   f"{_fmt(scores[best])}); if it is an A-line volume, name its axes, e.g. --axes {suggestion}")  # fmt: skip
        return [Finding(code="axes-unnamed", message=message, stage="ingest")]


def _spatial(ndim: int, depth: int) -> str:
    """Letters for a volume with depth at ``depth``: the other axes read as y then x."""
    rest = iter("yx")
    return "".join("z" if i == depth else next(rest) for i in range(ndim))


def ingest_checks(source: Any) -> tuple[list[Finding], UnnamedAxesProbe | None]:
    """What ingest checks for ``source``: findings known at once (a reduced depth axis, judged on the
    first frame's A-lines) and a probe to feed with the frames (a 3-D array read without named axes)."""
    layout, plan = getattr(source, "layout", None), getattr(source, "plan", None)
    if layout is None or plan is None or not source.axes_used:
        return [], None
    where = str(layout.path)
    if plan.depth is not None:
        return depth_findings(source.alines(0, 1)[0], where, source.axes_used, layout.user_shape), None
    if source.axes is None and len(layout.source_shape) == 3:
        ndim = len(layout.perm)
        to_user = tuple(ndim - 1 - p if layout.column_major else p for p in layout.perm)
        return [], UnnamedAxesProbe(source.shape, where, source.axes_used, layout.user_shape, to_user)
    return [], None
