"""The report's image figures, drawn while the rest of the scan registers.

The frame the report shows (the middle one) is final as soon as its chunk is registered, and its two
figures (``frames``, ``crop``: ``figures.image_jobs``) need nothing else. Drawing them then, on the
figure workers (niced processes, so they use the cores the register stage leaves idle; one worker, one
figure after the other, so that the others are free when the report draws its plots), leaves the
report only its plots to wait for. Nothing is written here: the report writes what was drawn when the
figure it would draw has the same :func:`~orpam_pipeline.report.figures.job_key` (the same frame, title
and units), and draws it itself otherwise.
"""

from __future__ import annotations

import threading
from pathlib import Path

from orpam_pipeline.report.rendered import RenderedFigure, check_figures
from orpam_pipeline.scheduling import ProgressFn


class EarlyFigures:
    """Watches the register stage's progress of the store at ``store`` and starts the image figures once the
    shown frame's chunk is marked done; :meth:`drawn` hands them to the report."""

    def __init__(self, store: Path, figures: str) -> None:
        from orpam_pipeline.report.figure_workers import worker_count

        self.store = Path(store)
        self.svg = check_figures(figures) == "all"
        self.enabled = figures != "none" and worker_count() > 0
        self._marker: Path | None = None
        self._thread: threading.Thread | None = None
        self._drawn: dict[str, RenderedFigure] = {}
        self.keys: frozenset[str] = frozenset()
        """The job keys of the figures it draws, known once it has read the shown frame (``figures.Drawing``)."""

    def watch(self, progress: ProgressFn | None) -> ProgressFn | None:
        """``progress`` (which it calls on) with a look at the shown frame's chunk at every register event;
        ``progress`` itself when no figure is to be drawn early (``--figures none``, no figure workers: the
        calling process would draw, competing with registration)."""
        if not self.enabled:
            return progress

        def heard(stage: str, done: int, total: int) -> None:
            if stage == "register" and self._thread is None and self._ready():
                self._thread = threading.Thread(target=self._draw, name="orpam-early-figures", daemon=True)
                self._thread.start()
            if progress is not None:
                progress(stage, done, total)

        return heard

    def _ready(self) -> bool:
        try:
            if self._marker is None:
                from orpam_pipeline.store.layout import FRAMES, frames_per_chunk, get_array, open_scan_store
                from orpam_pipeline.store.resume import ChunkMarkers

                group = open_scan_store(self.store, mode="r")
                shown = int(get_array(group, FRAMES).shape[0]) // 2
                self._marker = ChunkMarkers(self.store, "register").path(shown // frames_per_chunk(group))
            return self._marker.exists()
        except Exception:  # an unreadable store: the report says what is wrong
            self.enabled = False
            return False

    def _draw(self) -> None:
        from orpam_pipeline.jsonsafe import json_safe
        from orpam_pipeline.report.figure_workers import workers
        from orpam_pipeline.report.figures import draw_job, image_jobs, job_key
        from orpam_pipeline.report.scan_report import figure_context, shown_frame
        from orpam_pipeline.store.layout import open_scan_store

        try:
            group = open_scan_store(self.store, mode="r")
            jobs = {job_key(job, self.svg): job for job in image_jobs(json_safe(figure_context(group)), shown_frame(group))}
            self.keys = frozenset(jobs)  # before the workers' start, which may take a while: the report leaves these
            found = workers()
            if not found:  # none could be started: the report draws them
                return
            for key, job in jobs.items():  # one after the other on one worker: the others stay free for a report
                figure = found[0].call(draw_job, job, (None, self.svg))
                if figure is not None:
                    self._drawn[key] = figure
        except Exception:  # the report draws them again and says what is wrong
            self._drawn.clear()

    def drawn(self) -> dict[str, RenderedFigure]:
        """The figures drawn early, by job key (waits for those being drawn); empty when none was."""
        if self._thread is not None:
            self._thread.join()
        return dict(self._drawn)
