"""Every figure of one scan's report, drawn once and written as ``figures/<name>.png`` and (by default) ``.svg``.

This module names the figures and their arguments only; matplotlib is imported where a figure is drawn
(:func:`draw_job`), which is a figure worker's process unless the calling thread has to draw.
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from orpam_pipeline.report.crop import choose_crop
from orpam_pipeline.report.displacement import DisplacementSummary
from orpam_pipeline.report.figure_workers import draw_all
from orpam_pipeline.report.rendered import RenderedFigure
from orpam_pipeline.report.units import Units


def frame_title(scan: str, frame: int, frames: int) -> str:
    """How every image figure names what it shows (frames count from 0)."""
    return f"{scan} · frame {frame} of {frames}"


def _scale_note(units: Units) -> str:
    if units.pixel_x_um is not None:
        return f"Scale bar in µm (pixel {units.pixel_y_um:g} µm along y, {units.pixel_x_um:g} µm between lines)."
    return "Axes in pixels: the store has no pixel size (the option --pixel-size sets it)."


@dataclass(frozen=True)
class FigureJob:
    """One figure to draw: the function ``maker`` (``module:function``) builds it from ``args`` (None: nothing to
    show), then it is rendered as ``name``."""

    name: str
    kind: Literal["image", "plot"]
    caption: str
    maker: str
    args: tuple


FIGURE_COST = {"truth": 1.1, "frames": 1.0, "metrics_per_frame": 0.9, "displacement": 0.75, "crop": 0.5}
"""Drawing time of each figure relative to ``frames`` (PNG and SVG, 256², 1,000 frames, medians of 5), so that the
figure workers start the longest first and finish together."""


def draw_job(job: FigureJob, folder: Path | None, svg: bool) -> RenderedFigure | None:
    """Build and render one figure (in whichever process draws it), writing its files into ``folder``."""
    from orpam_pipeline.report.mpl import render

    module, function = job.maker.split(":")
    fig = getattr(importlib.import_module(module), function)(*job.args)
    return None if fig is None else render(fig, job.name, job.kind, job.caption, folder, svg)


def job_key(job: FigureJob, svg: bool) -> str:
    """What a drawing of ``job`` depends on: its name, caption, function and arguments (arrays by value), and
    whether it is drawn as SVG too. Equal keys draw equal files."""
    return hashlib.sha256(pickle.dumps((job, svg), protocol=5)).hexdigest()


class Drawing(Protocol):
    """Figures being drawn apart from the report (``report.early_figures.EarlyFigures``)."""

    keys: frozenset[str]
    """The :func:`job_key` of each figure it draws (empty until it knows them)."""

    def drawn(self) -> Mapping[str, RenderedFigure]:
        """The figures drawn, not yet written, by key (waits for those being drawn)."""
        ...


def build_figures(report: Mapping[str, Any], data: Mapping[str, Any], folder: Path | None,
                  svg: bool = True, early: Drawing | None = None) -> list[RenderedFigure]:  # fmt: skip
    """Draw the report's figures from report.json's content and the arrays of :func:`compute_report`.

    ``data`` holds ``frame_index``, the ``unregistered`` and ``registered`` merged frames, and the
    :class:`DisplacementSummary` of the stored ``displacement`` and of the truth's (or None). ``svg``: also
    as SVG. The figures are drawn side by side on the cores (``figure_workers``), the longest first, and come
    back in the order of :func:`figure_jobs`. A figure ``early`` draws with the same :func:`job_key` is
    taken from there (written into ``folder`` here) while the others are drawn; one it failed to draw is
    drawn after them.
    """
    jobs = figure_jobs(report, data)
    keys = [job_key(job, svg) for job in jobs]
    waiting = early.keys if early is not None else frozenset()
    done = _draw(jobs, [i for i, key in enumerate(keys) if key not in waiting], folder, svg)
    if len(done) < len(jobs):
        assert early is not None
        given = early.drawn()
        for i in range(len(jobs)):
            figure = given.get(keys[i]) if i not in done else None
            if figure is not None:
                done[i] = figure if folder is None else figure.written(folder)
        done.update(_draw(jobs, [i for i in range(len(jobs)) if i not in done], folder, svg))
    return [figure for i in range(len(jobs)) if (figure := done[i]) is not None]


def _draw(jobs: list[FigureJob], which: list[int], folder: Path | None, svg: bool) -> dict[int, RenderedFigure | None]:
    """The jobs ``which`` drawn on the figure workers, the longest first (``FIGURE_COST``)."""
    which = sorted(which, key=lambda i: -FIGURE_COST.get(jobs[i].name, 1.0))
    return dict(zip(which, draw_all([jobs[i] for i in which], draw_job, folder, svg)))


def figure_jobs(report: Mapping[str, Any], data: Mapping[str, Any]) -> list[FigureJob]:
    """Every figure the report shows, as jobs that need nothing but their own arguments."""
    units, scan, n = _context(report)
    t = int(data["frame_index"])
    shown = frame_title(scan, t, n)
    per_frame = report.get("per_frame") or {}
    time_note = "Time in seconds." if units.timed else "Time in frames (the store has no frame interval; --frame-interval sets it)."
    out = image_jobs(report, data)

    def add(maker: str, args: tuple, name: str, caption: str) -> None:
        out.append(FigureJob(name, "plot", caption, f"orpam_pipeline.report.plot_figures:{maker}", args))

    disp: DisplacementSummary | None = data.get("displacement")
    if disp is not None:
        what = "the field averaged across its columns" if disp.field else "the profile"
        add("displacement_figure", (disp, f"{scan} · displacement applied to the backward lines", units),
            "displacement",
            f"The displacement ({what}) for every frame and row, its mean profile over all {n} frames with each "
            f"row's min–max, and each frame's mean with the min–max of all its values. {time_note}")
    truth, true_disp = report.get("truth"), data.get("truth_displacement")
    if truth and true_disp is not None:
        add("truth_figure", (disp, true_disp, (truth.get("per_frame") or {}).get("ncc_truth") or [], shown,
                           f"{scan} · against ground truth", units), "truth",
            "Ground truth of the simulation beside the scan: the true and the estimated displacement, and the NCC "
            f"of the registered backward lines with the true ones. {time_note}")
    add("metrics_figure", (per_frame, f"{scan} · per-frame metrics", units), "metrics_per_frame",
        "The papers' intra-frame metrics of the even vs the odd lines per frame (docs/metrics.md), and the NCC of "
        f"consecutive frames, where the odd-only sequence is the physical reference for stability. {time_note}")
    return out


def image_jobs(report: Mapping[str, Any], data: Mapping[str, Any]) -> list[FigureJob]:
    """The report's image figures (the first of :func:`figure_jobs`): they need only the report's ``scan``,
    ``frames`` and ``physical`` and the shown frame (``frame_index``, ``unregistered``, ``registered``),
    so they can be drawn before the rest of the report is known (``report.early_figures``)."""
    units, scan, n = _context(report)
    t = int(data["frame_index"])
    shown = frame_title(scan, t, n)
    before, after = data["unregistered"], data["registered"]
    y0, y1, x0, x1 = box = choose_crop(before)
    maker = "orpam_pipeline.report.image_figures:"
    return [
        FigureJob("frames", "image",
                  f"Merged frame {t} (frames count from 0) as acquired and after registration, in one grey window; "
                  f"the yellow box marks the zoomed region. {_scale_note(units)}",
                  maker + "frames_figure", (before, after, box, shown, units)),
        FigureJob("crop", "image",
                  f"The {y1 - y0}×{x1 - x0} region with the strongest column-alternating (comb) energy in the "
                  "unregistered frame, nearest-neighbour so every pixel stays visible.",
                  maker + "crop_figure",
                  (before, after, box, f"{shown} · rows {y0}–{y1 - 1}, columns {x0}–{x1 - 1}", units)),
    ]  # fmt: skip


def _context(report: Mapping[str, Any]) -> tuple[Units, str, int]:
    return Units.from_physical(report.get("physical")), str(report.get("scan", "scan")), int(report.get("frames", 0))
