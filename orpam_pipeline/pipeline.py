"""Batch processing: every scan under a source goes files -> store -> registration -> report.

A scan that fails is recorded with a one-line reason and the batch goes on with the others. Each
scan's output folder is locked for the whole scan, and every stage resumes: rerunning the same
command skips scans already complete, continues interrupted ones chunk by chunk, and refuses (unless
``overwrite``) stores made with different parameters.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from orpam_pipeline.checks.run import update_checks
from orpam_pipeline.errors import one_line
from orpam_pipeline.io import ScanEntry, ScanSource, discover_scans, open_scan
from orpam_pipeline.options import RunOptions
from orpam_pipeline.register import RegistrationMethod, get_method
from orpam_pipeline.register.engine import ProgressFn, register
from orpam_pipeline.report.chunk_scores import IngestScorer
from orpam_pipeline.report.early_figures import EarlyFigures
from orpam_pipeline.report.scan_report import current_report, warm_figures, write_report
from orpam_pipeline.store.ingest import IngestResult, ingest
from orpam_pipeline.store.lock import LockBusy, borrowed_lock, store_lock
from orpam_pipeline.store.names import scan_folder
from orpam_pipeline.store.volume import register_volume, write_volume

ScanStatus = Literal["processed", "resumed", "skipped", "busy", "failed"]
"""``busy``: another live orpam process is writing the scan (not a failure; rerun or wait)."""


@dataclass
class ScanOutcome:
    name: str
    source: Path | str
    ok: bool
    seconds: float
    store: Path | None = None
    report: dict[str, Any] | None = None
    report_html: Path | None = None
    error: str | None = None
    registration: dict[str, Any] = field(default_factory=dict)
    status: ScanStatus = "processed"
    """``skipped``: already complete with the same parameters; ``resumed``: an interrupted run continued."""
    renamed_from: str | None = None
    """The name the files suggested, when it was not a safe folder name or clashed with another scan."""
    warnings: list[dict[str, str]] = field(default_factory=list)
    """The checks' warnings (``{code, message, stage}``, docs/warnings.md), also for a scan ``--strict`` failed."""
    location: str | None = None
    """The scan's folder URL when the output is in object storage (``store`` and the report are then there)."""

    @property
    def report_json(self) -> Path | None:
        return None if self.report_html is None else self.report_html.with_name("report.json")

    def where(self, name: str) -> str | None:
        """Where ``scan.zarr``, ``report.json`` or ``report.html`` of this scan is, as text (URL or path)."""
        if self.location is not None:
            return f"{self.location}/{name}" if self.ok or self.report is not None else None
        path = {"scan.zarr": self.store, "report.json": self.report_json, "report.html": self.report_html}[name]
        return None if path is None else str(path)

    def summary(self) -> dict[str, Any]:
        """JSON-able outcome: where everything is and the report's numbers (per-frame lists left out)."""
        report = {k: v for k, v in (self.report or {}).items() if k != "per_frame"}
        paths = {"store": self.where("scan.zarr"), "report_json": self.where("report.json"),
                 "report_html": self.where("report.html")}  # fmt: skip
        return {"name": self.name, "renamed_from": self.renamed_from, "source": str(self.source), "ok": self.ok,
                "status": self.status,
                "seconds": round(self.seconds, 3), "error": self.error, "warnings": self.warnings,
                **paths, "report": report or None}  # fmt: skip


def ingest_scored(source: ScanSource, out_dir: Path, options: RunOptions, progress: ProgressFn | None = None) -> IngestResult:
    """Ingest ``source`` as ``options`` say, scoring the frames as ingested on other threads meanwhile.

    A fresh ingest keeps those scores in the store (``report.chunk_scores.IngestScorer``), so the
    register stage and the report never score the unregistered lines again.
    """
    with IngestScorer() as scorer:
        result = ingest(
            source, out_dir, scan_lines=options.scan_lines, first_line=options.first_line,  # type: ignore[arg-type]
            chunk_frames=options.chunk_frames, overwrite=options.overwrite,
            progress=None if progress is None else (lambda d, n: progress("ingest", d, n)),
            reverse_backward=options.reverse_backward, scale=options.scale(), levels=options.levels, on_chunk=scorer,
        )  # fmt: skip
        if result.chunks_written == result.chunks:
            try:
                with store_lock(result.store.parent):
                    scorer.save(result.store, result.chunks)
            except LockBusy:  # another process took the scan meanwhile: the scores are only a head start
                pass
    return result


def process_scan(
    entry: ScanEntry | Path,
    out_dir: Path,
    options: RunOptions,
    progress: ProgressFn | None = None,
    method: RegistrationMethod | None = None,
) -> ScanOutcome:
    """Ingest, register and report one scan, continuing an interrupted run of it.

    ``method`` is the one :func:`run_batch` built for every scan (default: built from ``options``).
    Failures come back in the outcome (one line naming the file), not as exceptions.
    """
    return start_scan(entry, out_dir, options, progress, method).result()


def start_scan(
    entry: ScanEntry | Path,
    out_dir: Path,
    options: RunOptions,
    progress: ProgressFn | None = None,
    method: RegistrationMethod | None = None,
    reports: Executor | None = None,
    renamed_from: str | None = None,
) -> Future[ScanOutcome]:
    """:func:`process_scan`, whose report is written on ``reports`` (a one-thread executor) where one is given.

    Ingest and registration run on the calling thread; the report (the metrics, the checks and the figures,
    a second or two whatever the scan's size, much of it waiting for the figure workers) is then handed to
    ``reports`` with the scan's lock still held, so the caller can start the next scan meanwhile. The
    report's own progress events are not sent from there (they would interleave with the next scan's).
    Without ``reports`` the whole scan runs here and the future comes back done. ``renamed_from``: the
    outcome's :attr:`ScanOutcome.renamed_from`.
    """
    started = time.perf_counter()
    where = entry.paths[0] if isinstance(entry, ScanEntry) else Path(entry)
    name = entry.name if isinstance(entry, ScanEntry) else Path(entry).stem
    folder: Path | None = None
    existed = True

    def failed(exc: Exception) -> ScanOutcome:
        if folder is not None and not existed:
            _remove_if_empty(folder)
        status: ScanStatus = "busy" if isinstance(exc, LockBusy) else "failed"
        return ScanOutcome(name, where, False, time.perf_counter() - started, error=one_line(exc, where), status=status,
                           renamed_from=renamed_from)  # fmt: skip

    try:
        with ExitStack() as stack:  # closes the scan's lock and files on failure; the report takes them over
            method = method or get_method(options.method, **options.settings)
            source = stack.enter_context(open_scan(entry, spec=options.read_spec()))
            name = source.name
            folder = scan_folder(Path(out_dir), name)
            existed = folder.exists()
            stack.enter_context(store_lock(folder, wait=math.inf if options.wait_for_locks else 0.0))
            ingested = ingest_scored(source, out_dir, options, progress)
            if options.keep_volume:
                write_volume(source, ingested.store, options.scan_lines, options.first_line, options.reverse_backward)
            source.close()
            early = EarlyFigures(ingested.store, options.figures)
            registered = register(ingested.store, method, progress=early.watch(progress), overwrite=options.overwrite)
            if options.keep_volume:
                register_volume(ingested.store)
            kept = stack.pop_all()
    except Exception as exc:  # one bad scan must not stop the batch
        return _done(failed(exc))
    assert folder is not None  # set before the lock was taken
    owner, held = threading.get_ident(), folder

    def finish() -> ScanOutcome:
        shown = progress if reports is None else None
        try:
            with kept, borrowed_lock(held, owner) if reports is not None else nullcontext():
                if shown is not None:
                    shown("report", 0, 1)
                existing = current_report(ingested.store, options.figures) if registered.state == "complete" else None
                report, _, html = existing if existing is not None else write_report(ingested.store, options.figures, early)
                if shown is not None:
                    shown("report", 1, 1)
        except Exception as exc:
            return failed(exc)
        states = (ingested.state, registered.state, "complete" if existing is not None else "created")
        status: ScanStatus = (
            "skipped" if all(s == "complete" for s in states) else "processed" if ingested.state == "created" else "resumed"
        )
        outcome = ScanOutcome(
            name, where, True, time.perf_counter() - started, ingested.store, report, html,
            registration=registered.info, status=status, warnings=list(report.get("warnings") or []),
            renamed_from=renamed_from,
        )  # fmt: skip
        return strict_outcome(outcome) if options.strict else outcome

    if reports is None:
        return _done(finish())
    return reports.submit(finish)


def _done(outcome: ScanOutcome) -> Future[ScanOutcome]:
    future: Future[ScanOutcome] = Future()
    future.set_result(outcome)
    return future


def strict_outcome(outcome: ScanOutcome) -> ScanOutcome:
    """``--strict``: a scan with any warning fails (its store and report stay for reading)."""
    if not outcome.ok or not outcome.warnings:
        return outcome
    codes = ", ".join(dict.fromkeys(w["code"] for w in outcome.warnings))
    n = len(outcome.warnings)
    outcome.ok, outcome.status = False, "failed"
    where = outcome.report_json or outcome.store
    outcome.error = f"{outcome.source}: --strict: {n} warning{'s' if n != 1 else ''} ({codes}); see {where}"
    return outcome


def _remove_if_empty(folder: Path) -> None:
    """Remove a scan folder this run created for a scan that failed before writing anything."""
    try:
        folder.rmdir()
    except OSError:
        pass


def ingest_entry(entry: ScanEntry, out_dir: Path, options: RunOptions, progress: ProgressFn | None = None) -> ScanOutcome:
    """Only the ingest stage of one scan (``orpam ingest``); failures come back in the outcome."""
    started = time.perf_counter()
    where = entry.paths[0]
    folder = Path(out_dir) / entry.name
    existed = folder.exists()
    try:
        with open_scan(entry, spec=options.read_spec()) as source:
            result = ingest_scored(source, out_dir, options, progress)
            if options.keep_volume:
                write_volume(source, result.store, options.scan_lines, options.first_line, options.reverse_backward)
        found = [w.to_dict() for w in update_checks(result.store)]
    except Exception as exc:  # one bad scan must not stop the batch
        if not existed:
            _remove_if_empty(folder)
        return ScanOutcome(entry.name, where, False, time.perf_counter() - started, error=one_line(exc, where),
                           status="busy" if isinstance(exc, LockBusy) else "failed")  # fmt: skip
    status: ScanStatus = {"created": "processed", "resumed": "resumed", "complete": "skipped"}[result.state]
    outcome = ScanOutcome(entry.name, where, True, time.perf_counter() - started, result.store, status=status,
                          warnings=found)  # fmt: skip
    return strict_outcome(outcome) if options.strict else outcome


def scans_under(
    src: Path, out_dir: Path, variable: str | None = None, raw: Any = None, positions: str | None = None
) -> list[ScanEntry]:
    """The scans under ``src``, leaving out anything inside ``out_dir`` (outputs are never re-read as inputs).

    ``raw`` (dtype, shape, order of headerless binary files) lets discovery probe those files too;
    ``positions`` (point scans) makes every file a scan of its own.
    """
    out_resolved = Path(out_dir).resolve()
    return [e for e in discover_scans(Path(src), variable=variable, raw=raw, positions=positions)
            if not any(p.resolve().is_relative_to(out_resolved) for p in e.paths)]  # fmt: skip


def run_batch(
    src: Path | str,
    out_dir: Path | str,
    options: RunOptions,
    on_start: Callable[[int, int, str], None] | None = None,
    progress: ProgressFn | None = None,
    on_done: Callable[[ScanOutcome], None] | None = None,
    *,
    ingest_only: bool = False,
    jobs: int | None = None,
    storage_options: dict[str, Any] | None = None,
    cache_dir: Path | None = None,
) -> list[ScanOutcome]:
    """Process every scan found under ``src`` into ``out_dir``; returns one outcome per scan.

    The method is built once (a bad setting fails before any scan); ``ingest_only`` stops each scan
    after its store is written. On a dask cluster the scans run as tasks of their own, at most
    ``jobs`` at a time (:func:`~orpam_pipeline.scheduling.map_scans`). ``src`` and ``out_dir`` may be
    URLs (``s3://…``, read with ``storage_options``): see :mod:`orpam_pipeline.remote`.
    """
    from orpam_pipeline.remote.urls import is_url
    from orpam_pipeline.scheduling import active_client, map_scans

    if is_url(src) or is_url(out_dir):
        from orpam_pipeline.remote.batch import run_remote_batch

        return run_remote_batch(str(src), str(out_dir), options, on_start, progress, on_done, ingest_only=ingest_only,
                                jobs=jobs, storage_options=storage_options, cache_dir=cache_dir)  # fmt: skip
    if not ingest_only:
        worker_method(options)  # a bad setting fails here, before any scan
    out_dir = Path(out_dir).resolve()
    entries = scans_under(Path(src), out_dir, options.variable, options.read_spec().raw, options.positions)

    def one(entry: ScanEntry, report: ProgressFn | None) -> ScanOutcome | Future[ScanOutcome]:
        if ingest_only:
            outcome = ingest_entry(entry, out_dir, options, report)
            outcome.renamed_from = entry.original
            return outcome
        overlap = reports if entry is not entries[-1] else None  # the next scan starts while this one's report runs
        pending = start_scan(entry, out_dir, options, report, worker_method(options), overlap, entry.original)
        return pending if overlap is not None else pending.result()

    def lost(entry: ScanEntry, exc: BaseException) -> ScanOutcome:
        return ScanOutcome(entry.name, entry.paths[0], False, 0.0, error=one_line(exc, entry.paths[0]), status="failed")

    warm = warm_figures() if entries and not ingest_only and options.figures != "none" else None
    reports = ThreadPoolExecutor(1, thread_name_prefix="orpam-report") if active_client() is None else None
    try:
        return map_scans(one, entries, [e.name for e in entries], jobs=jobs, on_start=on_start, on_done=on_done,
                         on_lost=lost, progress=progress)  # fmt: skip
    finally:
        if reports is not None:
            reports.shutdown(wait=True)  # a report begun is finished (also on Ctrl-C): its scan is then complete
        if warm is not None:
            warm.join()


_methods: dict[str, RegistrationMethod] = {}
_methods_guard = threading.Lock()


def worker_method(options: RunOptions) -> RegistrationMethod:
    """The method for ``options``, built once per process: a worker keeps one model for all its scans."""
    key = repr((options.method, sorted(options.settings.items())))
    with _methods_guard:
        if key not in _methods:
            _methods[key] = get_method(options.method, **options.settings)
        return _methods[key]
