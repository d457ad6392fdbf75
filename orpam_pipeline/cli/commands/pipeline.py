"""The pipeline's commands: ``run`` (everything), ``register`` and ``report`` (one stage), ``demo``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from orpam_pipeline.cli.console import (
    StageProgress,
    err,
    esc,
    fmt,
    friendly,
    out,
    print_json,
    print_warnings,
    progress_bars,
    report_table,
)
from orpam_pipeline.cli.groups import FROM_GROUP, with_groups
from orpam_pipeline.cli.options import (
    COMPUTE,
    CacheDir,
    Figures,
    FiguresOpt,
    Jobs,
    StorageOption,
    NETWORK,
    SCAN,
    AsJson,
    Method,
    Overwrite,
    Strict,
    WaitForLocks,
    computing,
    network_settings,
    scan_fields,
)
from orpam_pipeline.register.registry import DEFAULT_METHOD

Store = Annotated[Path, typer.Argument(metavar="STORE", help="A scan store (OUT/<scan>/scan.zarr or its folder).")]


@friendly
@with_groups(network=NETWORK, compute=COMPUTE)
def register(
    store: Store,
    method: Method = DEFAULT_METHOD,
    network: dict[str, Any] = FROM_GROUP,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a registration made with other parameters.")] = False,
    compute: dict[str, Any] = FROM_GROUP,
    as_json: AsJson = False,
) -> None:
    """Register the backward lines of a store and write registered_even, merged and displacement.

    An interrupted registration with the same parameters is continued; a complete one is left as is.
    """
    from orpam_pipeline.register import get_method
    from orpam_pipeline.register.engine import register as run_register

    chosen = get_method(method, **network_settings([method], network))
    with computing(compute), progress_bars(not as_json) as bars:
        result = run_register(store, chosen, progress=StageProgress(bars), overwrite=overwrite)
    info = result.info
    if as_json:
        print_json({"store": str(store), "state": result.state, "chunks": result.chunks,
                    "chunks_written": result.chunks_written, "registration": info})  # fmt: skip
    elif result.state == "complete":
        out.print(f"already registered with {info['method']}: {store}", highlight=False)
    else:
        how = "continued" if result.state == "resumed" else "registered"
        out.print(f"{how} with {info['method']} in {info['seconds']:.1f} s ({result.chunks_written} of "
                  f"{result.chunks} chunks written): {store}", highlight=False)  # fmt: skip


@friendly
def report(
    store: Annotated[Path, typer.Argument(metavar="STORE", help="A registered scan store.")],
    figures: Figures = FiguresOpt.all,  # type: ignore[attr-defined]
    as_json: AsJson = False,
) -> None:
    """Compute the metrics and write report.json and report.html beside the store."""
    from orpam_pipeline.report.scan_report import write_report

    summary, json_path, html_path = write_report(store, figures.value)
    if as_json:
        print_json({**summary, "report_json": str(json_path), "report_html": str(html_path)})
        return
    out.print(report_table(summary))
    print_warnings(out, summary.get("warnings"))
    out.print(f"report: {esc(html_path)}\njson:   {esc(json_path)}", highlight=False)


def batch_hooks(bars: Any, visible: bool = True) -> tuple[Callable[..., None], Any, Callable[[Any], None]]:
    """Callbacks that drive the scans bar, the per-stage bars and the per-scan result lines."""
    scans_task = bars.add_task("scans", total=None, visible=visible)
    stages = StageProgress(bars)

    def on_start(i: int, n: int, name: str) -> None:
        stages.reset()
        bars.update(scans_task, description=f"scan {name}", completed=i, total=n)

    def on_done(outcome: Any) -> None:
        bars.advance(scans_task)
        if outcome.ok:
            r = outcome.report or {}
            how = {"skipped": " (already complete, skipped)", "resumed": " (continued)"}.get(outcome.status, "")
            if outcome.renamed_from is not None:
                how += f" (named from {esc(repr(outcome.renamed_from))})"
            bars.console.print(
                f"[green]ok[/] {esc(outcome.name)}{how}: NCC {fmt(r.get('ncc_mean'))} (unregistered "
                f"{fmt(r.get('ncc_mean_unregistered'))}), TNCC {fmt(r.get('tncc_merged'))} "
                f"(odd-only {fmt(r.get('tncc_odd'))}), {outcome.seconds:.1f} s",
                highlight=False,
            )
        elif outcome.status == "busy":
            bars.console.print(f"[yellow]busy[/] {esc(outcome.error)}", highlight=False)
        else:
            bars.console.print(f"[bold red]failed[/] {esc(outcome.error)}", highlight=False)
        print_warnings(bars.console, outcome.warnings)

    return on_start, stages, on_done


def _run_batch(src: Path | str, out_dir: Path | str, options: Any, show: bool = True, **where: Any) -> list[Any]:
    from orpam_pipeline.pipeline import run_batch

    with progress_bars(show) as bars:
        on_start, stages, on_done = batch_hooks(bars)
        outcomes = run_batch(src, out_dir, options, on_start=on_start, progress=stages, on_done=on_done, **where)
        stages.reset()
    return outcomes


def _write_index(out_dir: Path | str, outcomes: list[Any], **where: Any) -> tuple[Path | str | None, str | None]:
    """``OUT/index.html`` and ``index.json`` (docs/batch.md): the page's path, or the one line saying why
    it could not be written (the run's summary is still printed)."""
    from orpam_pipeline.errors import one_line
    from orpam_pipeline.remote.urls import is_url
    from orpam_pipeline.report.batch import INDEX_HTML, write_batch_index

    try:
        if is_url(out_dir):
            from orpam_pipeline.remote.batch import write_remote_index

            return write_remote_index(str(out_dir), outcomes, where.get("storage_options"), where.get("cache_dir")), None
        return write_batch_index(Path(out_dir), outcomes)[1], None
    except Exception as exc:  # the scans' results stand without the page
        return None, one_line(exc, Path(str(out_dir)) / INDEX_HTML)


EXIT_BUSY = 75
"""Exit status when no scan failed but some were being written by another process (EX_TEMPFAIL: retry)."""


def _summarise(outcomes: list[Any], started: float, as_json: bool = False,
               index: tuple[Path | str | None, str | None] = (None, None)) -> None:
    """The closing lines: counts, where each report and the batch page are, every failure; exit 1 if
    any scan failed or the page could not be written, 75 if none failed but some were busy (another
    live process is writing them)."""
    ok = [o for o in outcomes if o.ok]
    busy = [o for o in outcomes if o.status == "busy"]
    failed = [o for o in outcomes if not o.ok and o.status != "busy"]
    seconds = time.perf_counter() - started
    if as_json:
        print_json({"scans": [o.summary() for o in outcomes], "done": len(ok), "failed": len(failed),
                    "busy": len(busy), "frames": sum((o.report or {}).get("frames", 0) for o in ok),
                    "seconds": round(seconds, 3), "index_html": None if index[0] is None else str(index[0]),
                    "index_error": index[1]})  # fmt: skip
    else:
        frames = sum((o.report or {}).get("frames", 0) for o in ok)
        skipped = sum(1 for o in ok if o.status == "skipped")
        note = f" ({skipped} already complete)" if skipped else ""
        out.print(f"{len(ok)} of {len(outcomes)} scans done{note}, {frames} frames in {seconds:.1f} s", highlight=False)
        for o in ok:
            out.print(f"  {esc(o.name)}: {esc(o.where('report.html'))}  (report.json beside it)", highlight=False)
        if index[0] is not None:
            out.print(f"index: {esc(index[0])}", highlight=False)
        if busy:
            err.print(f"[yellow]{len(busy)} busy[/] (another orpam process is writing them; rerun, or pass "
                      "--wait-for-locks):", highlight=False)  # fmt: skip
            for o in busy:
                err.print(f"  {esc(o.error)}", highlight=False, soft_wrap=True)
        if failed:
            err.print(f"[bold red]{len(failed)} failed:[/]")
            for o in failed:
                err.print(f"  {esc(o.error)}", highlight=False, soft_wrap=True)
        if index[1] is not None:
            err.print(f"[bold red]index not written:[/] {esc(index[1])}", highlight=False, soft_wrap=True)
    if failed or index[1] is not None:
        raise typer.Exit(1)
    if busy:
        raise typer.Exit(EXIT_BUSY)


@friendly
@with_groups(scan=SCAN, network=NETWORK, compute=COMPUTE)
def run(
    src: Annotated[str, typer.Argument(metavar="SRC", help="A scan file or a directory tree of scans, or a URL (s3://bucket/prefix).")],
    out_dir: Annotated[str, typer.Argument(metavar="OUT", help="Output folder or URL: OUT/<scan>/{scan.zarr,report.json,report.html} and OUT/index.{html,json}.")],
    method: Method = DEFAULT_METHOD,
    network: dict[str, Any] = FROM_GROUP,
    scan: dict[str, Any] = FROM_GROUP,
    overwrite: Overwrite = False,
    wait_for_locks: WaitForLocks = False,
    strict: Strict = False,
    figures: Figures = FiguresOpt.all,  # type: ignore[attr-defined]
    compute: dict[str, Any] = FROM_GROUP,
    jobs: Jobs = None,
    storage_option: StorageOption = None,
    cache_dir: CacheDir = None,
    as_json: AsJson = False,
) -> None:
    """Ingest, register and report every scan under SRC; failed scans are listed and skipped.

    Registration chunks run on local threads, or on a dask cluster with --workers or --scheduler, where
    the scans of a batch run side by side (--jobs at a time). SRC and OUT may be s3:// (or other fsspec)
    URLs: each scan is staged locally, processed and uploaded (docs/object-storage.md).
    Settings that look wrong are warned about under each scan (docs/warnings.md); --strict fails
    such scans. Ends by printing where each scan's report is.
    """
    from orpam_pipeline.options import RunOptions

    options = RunOptions(method=method, settings=network_settings([method], network), overwrite=overwrite,
                         wait_for_locks=wait_for_locks, strict=strict, figures=figures.value,
                         **scan_fields(scan))  # fmt: skip
    from orpam_pipeline.remote.urls import as_location, parse_storage_options

    where = {"jobs": jobs, "storage_options": parse_storage_options(storage_option), "cache_dir": cache_dir}
    source, target = as_location(src), as_location(out_dir)
    started = time.perf_counter()
    with computing(compute):
        outcomes = _run_batch(source, target, options, show=not as_json, **where)
    _summarise(outcomes, started, as_json, _write_index(target, outcomes, **where))


@friendly
def demo(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="Folder for the demo data and results.")] = Path("orpam-demo"),
    frames: Annotated[int, typer.Option("--frames", "-t", min=2, help="Frames to simulate.")] = 48,
    method: Method = DEFAULT_METHOD,
) -> None:
    """Simulate a small sequence, run the whole pipeline on it and print where the report is."""
    from orpam_pipeline.options import RunOptions
    from orpam_pipeline.simulate import SimulationParams, write_simulation

    started = time.perf_counter()
    params = SimulationParams.randomised(7, frames=frames, height=256, width=256)
    paths = write_simulation(out_dir / "data", params, overwrite=True)
    out.print(f"simulated {frames} frames: {paths.scan} (ground truth: {paths.truth})", highlight=False)
    outcomes = _run_batch(paths.scan.parent, out_dir / "results", RunOptions(method=method, overwrite=True))
    for o in outcomes:
        if o.ok:
            out.print(report_table(o.report))
    _summarise(outcomes, started, index=_write_index(out_dir / "results", outcomes))
