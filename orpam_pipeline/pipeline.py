"""Batch processing: every scan under a source goes files -> store -> registration -> report.

A scan that fails is recorded with a one-line reason and the batch goes on with the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.geometry import FirstLine
from orpam_pipeline.io import ScanEntry, discover_scans, open_scan
from orpam_pipeline.register import DEFAULT_METHOD, get_method
from orpam_pipeline.register.engine import ProgressFn, register_store
from orpam_pipeline.report.compute import write_report
from orpam_pipeline.store.ingest import ScanLines, ingest_scan


@dataclass
class RunOptions:
    method: str = DEFAULT_METHOD
    variable: str | None = None
    scan_lines: ScanLines = "columns"
    first_line: FirstLine = "forward"
    chunk_frames: int | None = None
    depth_axis: int | None = None
    overwrite: bool = False
    method_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScanOutcome:
    name: str
    source: Path
    ok: bool
    seconds: float
    store: Path | None = None
    report: dict[str, Any] | None = None
    report_html: Path | None = None
    error: str | None = None
    registration: dict[str, Any] = field(default_factory=dict)


def one_line(exc: BaseException, where: Path) -> str:
    """A single-line description of any failure, naming the file."""
    if isinstance(exc, OrpamError):
        text = str(exc)
    else:
        text = f"{where}: unexpected {type(exc).__name__}: {exc}"
    return " ".join(text.split())


def process_scan(
    entry: ScanEntry | Path,
    out_dir: Path,
    options: RunOptions,
    progress: ProgressFn | None = None,
) -> ScanOutcome:
    """Ingest, register and report one scan; failures come back in the outcome, not as exceptions."""
    started = time.perf_counter()
    where = entry.paths[0] if isinstance(entry, ScanEntry) else Path(entry)
    name = entry.name if isinstance(entry, ScanEntry) else Path(entry).stem
    try:
        method = get_method(options.method, **options.method_options)
        with open_scan(entry, variable=options.variable, depth_axis=options.depth_axis) as source:
            name = source.name
            store = ingest_scan(
                source,
                out_dir,
                scan_lines=options.scan_lines,
                first_line=options.first_line,
                chunk_frames=options.chunk_frames,
                overwrite=options.overwrite,
                progress=None if progress is None else (lambda d, n: progress("ingest", d, n)),
            )
        info = register_store(store, method, progress=progress)
        if progress is not None:
            progress("report", 0, 1)
        report, _, html = write_report(store)
        if progress is not None:
            progress("report", 1, 1)
    except Exception as exc:  # one bad scan must not stop the batch
        return ScanOutcome(name, where, False, time.perf_counter() - started, error=one_line(exc, where))
    return ScanOutcome(
        name, where, True, time.perf_counter() - started, store, report, html, registration=info
    )


def run_batch(
    src: Path,
    out_dir: Path,
    options: RunOptions,
    on_start: Callable[[int, int, str], None] | None = None,
    progress: ProgressFn | None = None,
    on_done: Callable[[ScanOutcome], None] | None = None,
) -> list[ScanOutcome]:
    """Process every scan found under ``src`` into ``out_dir``; returns one outcome per scan."""
    get_method(options.method, **options.method_options)
    out_dir = Path(out_dir).resolve()
    entries = [
        e for e in discover_scans(Path(src)) if not any(p.resolve().is_relative_to(out_dir) for p in e.paths)
    ]
    outcomes = []
    for i, entry in enumerate(entries):
        if on_start is not None:
            on_start(i, len(entries), entry.name)
        outcome = process_scan(entry, Path(out_dir), options, progress)
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return outcomes
