"""The report's image figures drawn while the scan registers (``report.early_figures``): the same files as when
the report draws them, used only when they show what the report would show, started before the register stage
ends, and never a reason for a report to fail."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import numpy as np
import pytest

import orpam_pipeline.pipeline as pipeline
import orpam_pipeline.report.figure_workers as figure_workers
import orpam_pipeline.report.figures as figures
from orpam_pipeline.jsonsafe import json_safe
from orpam_pipeline.options import RunOptions
from orpam_pipeline.report.early_figures import EarlyFigures
from orpam_pipeline.report.figures import build_figures, image_jobs, job_key
from orpam_pipeline.report.rendered import RenderedFigure
from orpam_pipeline.report.scan_report import figure_context, shown_frame
from orpam_pipeline.store.layout import open_scan_store


@pytest.fixture(autouse=True)
def two_workers(monkeypatch):
    monkeypatch.setenv("ORPAM_FIGURE_WORKERS", "2")


def _scan(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(5)
    frames = rng.random((24, 40, 32), dtype=np.float32)
    frames[:, :, 1::2] = np.roll(frames[:, :, 1::2], 1, axis=1)
    np.save(folder / "s.npy", frames)
    return folder / "s.npy"


class _Recording(EarlyFigures):
    made: list[_Recording] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started_at: int | None = None
        """How many register events the caller had heard when the drawing began."""
        _Recording.made.append(self)


def _run(tmp_path: Path, name: str, monkeypatch, early: bool, figures_mode: str = "all"):
    """One scan of 12 chunks through ``process_scan``; the report's figure files and page, the stages of the progress
    events, and the jobs the report itself drew."""
    _Recording.made = []
    monkeypatch.setattr(pipeline, "EarlyFigures", _Recording if early else _Disabled)
    drawn_by_report: list[str] = []
    real_draw_all = figures.draw_all

    def spy(jobs, *args, **kwargs):
        drawn_by_report.extend(job.name for job in jobs)
        return real_draw_all(jobs, *args, **kwargs)

    monkeypatch.setattr(figures, "draw_all", spy)
    events: list[tuple[str, int, int]] = []

    def progress(stage: str, done: int, total: int) -> None:
        early = _Recording.made[-1] if _Recording.made else None
        if stage == "register" and early is not None and early._thread is not None and early.started_at is None:
            early.started_at = sum(s == "register" for s, _, _ in events)
        events.append((stage, done, total))

    out = tmp_path / name
    outcome = pipeline.process_scan(_scan(tmp_path / f"{name}-in"), out, RunOptions(method="phase", chunk_frames=2,
                                    figures=figures_mode), progress=progress)  # fmt: skip
    assert outcome.ok, outcome.error
    folder = outcome.store.parent
    files = {p.name: p.read_bytes() for p in sorted((folder / "figures").iterdir())}
    return files, (folder / "report.html").read_bytes(), events, drawn_by_report


class _Disabled(EarlyFigures):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.enabled = False


@pytest.mark.parametrize("mode", ["all", "png"])
def test_drawn_early_the_report_is_the_same_and_draws_only_its_plots(tmp_path, monkeypatch, mode):
    files, html, events, by_report = _run(tmp_path, "early", monkeypatch, early=True, figures_mode=mode)
    [early] = _Recording.made
    assert early.started_at is not None and early.started_at < 11  # began with chunks of the 12 still to register
    assert "frames" not in by_report and "crop" not in by_report and "metrics_per_frame" in by_report
    plain_files, _, plain_events, plain_by_report = _run(tmp_path, "plain", monkeypatch, early=False, figures_mode=mode)
    assert {"frames", "crop"} <= set(plain_by_report)
    assert files.keys() == plain_files.keys() and ("frames.svg" in files) == (mode == "all")
    assert files == plain_files  # byte for byte
    assert base64.b64encode(files["frames.png"]) in html  # and the page shows them
    assert events == plain_events  # the watcher passes every event on, unchanged


def test_nothing_is_drawn_early_without_figures_or_workers(tmp_path, monkeypatch):
    store = tmp_path / "store.zarr"

    def progress(*event):
        pass

    assert EarlyFigures(store, "none").watch(progress) is progress
    monkeypatch.setenv("ORPAM_FIGURE_WORKERS", "0")
    assert EarlyFigures(store, "all").watch(progress) is progress
    assert EarlyFigures(store, "all").watch(None) is None


def test_a_failing_early_drawing_leaves_the_report_to_draw(tmp_path, monkeypatch):
    real_call = figure_workers.Worker.call

    def call(self, draw, job, args):  # the worker drawing early dies; the report's calls go through
        if threading.current_thread().name == "orpam-early-figures":
            raise figure_workers.WorkerGone("killed")
        return real_call(self, draw, job, args)

    monkeypatch.setattr(figure_workers.Worker, "call", call)
    monkeypatch.setattr(pipeline, "EarlyFigures", _Recording)
    _Recording.made = []
    outcome = pipeline.process_scan(_scan(tmp_path / "in"), tmp_path / "out", RunOptions(method="phase", chunk_frames=2))
    assert outcome.ok, outcome.error
    [early] = _Recording.made
    assert len(early.keys) == 2 and early.drawn() == {}  # the report left them to it, then drew them itself
    assert {"frames.png", "crop.png", "frames.svg"} <= {p.name for p in (outcome.store.parent / "figures").iterdir()}


class _Given:
    """A :class:`~orpam_pipeline.report.figures.Drawing` that has drawn ``figures`` already."""

    def __init__(self, figures: dict[str, RenderedFigure]) -> None:
        self.keys = frozenset(figures)
        self.figures = figures

    def drawn(self) -> dict[str, RenderedFigure]:
        return self.figures


def _report_inputs(tmp_path: Path) -> tuple[dict, dict]:
    outcome = pipeline.process_scan(_scan(tmp_path / "in"), tmp_path / "out", RunOptions(method="none", figures="none"))
    assert outcome.ok, outcome.error
    group = open_scan_store(outcome.store, mode="r")
    return json_safe({**figure_context(group), "per_frame": {}}), shown_frame(group)


def test_a_figure_drawn_early_is_used_only_for_the_same_arguments(tmp_path):
    report, data = _report_inputs(tmp_path)
    [frames_job, crop_job] = image_jobs(report, data)
    fake = RenderedFigure("frames", "image", frames_job.caption, b"drawn early", None, 6.0)
    used = build_figures(report, data, tmp_path / "a", svg=False, early=_Given({job_key(frames_job, False): fake}))
    assert (tmp_path / "a" / "frames.png").read_bytes() == b"drawn early" and used[0].png_path == tmp_path / "a" / "frames.png"
    assert (tmp_path / "a" / "crop.png").read_bytes().startswith(b"\x89PNG")  # not given: drawn

    other = dict(data, registered=data["registered"] + 1)  # another registration of the same frame
    build_figures(report, other, tmp_path / "b", svg=False, early=_Given({job_key(frames_job, False): fake}))
    assert (tmp_path / "b" / "frames.png").read_bytes().startswith(b"\x89PNG")
    build_figures(report, data, tmp_path / "c", svg=True, early=_Given({job_key(frames_job, False): fake}))  # with SVG
    assert (tmp_path / "c" / "frames.png").read_bytes().startswith(b"\x89PNG")
    assert job_key(crop_job, False) != job_key(frames_job, False)
