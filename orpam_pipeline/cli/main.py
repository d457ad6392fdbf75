"""The ``orpam`` command line: parses arguments, calls the library, prints with rich."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from orpam_pipeline import __version__
from orpam_pipeline.cli.console import StageProgress, err, fmt, out, progress_bars, report_table
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.register import DEFAULT_METHOD, METHODS

app = typer.Typer(
    name="orpam",
    help="Register, re-interleave and quality-check bidirectional OR-PAM scans.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])


class ScanLinesOpt(str, Enum):
    columns = "columns"
    rows = "rows"


class FirstLineOpt(str, Enum):
    forward = "forward"
    backward = "backward"


MethodOpt = Enum("MethodOpt", {name: name for name in METHODS}, type=str)  # type: ignore[misc]

Variable = Annotated[
    str | None, typer.Option("--variable", "-v", help="Variable (.mat/.npz) or dataset path (.h5) holding the frames.")
]
ScanLines = Annotated[
    ScanLinesOpt, typer.Option("--scan-lines", help="Whether each fast-axis line is a column (default) or a row.")
]
FirstLine = Annotated[
    FirstLineOpt, typer.Option("--first-line", help="Direction of the first line (column 0).")
]
ChunkFrames = Annotated[
    int | None, typer.Option("--chunk-frames", min=1, help="Frames per zarr chunk (default: about 8 MiB per chunk).")
]
DepthAxis = Annotated[
    int | None, typer.Option("--depth-axis", help="Reduce raw A-line volumes to a MAP along this axis.")
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace stores that already exist.")]
Method = Annotated[MethodOpt, typer.Option("--method", "-m", help="Registration method.")]


def friendly(fn: F) -> F:
    """Turn library errors into one line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OrpamError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        out.print(f"orpam_pipeline {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    """Bidirectional OR-PAM registration pipeline."""


@app.command()
@friendly
def simulate(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write scans/ and truth/ into.")],
    frames: Annotated[int, typer.Option("--frames", "-t", min=1, help="Frames per scan.")] = 64,
    size: Annotated[tuple[int, int], typer.Option("--size", help="Frame height (Y, fast axis) and width (X).")] = (256, 256),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first scan.")] = 0,
    scans: Annotated[int, typer.Option("--scans", min=1, help="Number of scans (seeds seed, seed+1, ...).")] = 1,
    overwrite: Overwrite = False,
) -> None:
    """Simulate bidirectional sequences of OR-PAM vasculature with ground truth beside them."""
    from orpam_pipeline.simulate import SimulationParams, write_simulation

    for i in range(scans):
        params = SimulationParams.randomised(seed + i, frames=frames, height=size[0], width=size[1])
        paths = write_simulation(out_dir, params, overwrite=overwrite)
        out.print(f"scan  {paths.scan}\ntruth {paths.truth}", highlight=False)


@app.command()
@friendly
def ingest(
    src: Annotated[Path, typer.Argument(help="A scan file or a directory tree of scans.")],
    out_dir: Annotated[Path, typer.Argument(help="Output folder; each scan gets OUT/<scan>/scan.zarr.")],
    variable: Variable = None,
    scan_lines: ScanLines = ScanLinesOpt.columns,
    first_line: FirstLine = FirstLineOpt.forward,
    chunk_frames: ChunkFrames = None,
    depth_axis: DepthAxis = None,
    overwrite: Overwrite = False,
) -> None:
    """Copy scans into zarr stores (float32, chunked by frames, checksummed, with provenance)."""
    from orpam_pipeline.io import discover_scans, open_scan
    from orpam_pipeline.pipeline import one_line
    from orpam_pipeline.store.ingest import ingest_scan

    failures = 0
    with progress_bars() as bars:
        for entry in discover_scans(src):
            task = bars.add_task(f"ingest {entry.name}", total=None)
            try:
                with open_scan(entry, variable=variable, depth_axis=depth_axis) as source:
                    store = ingest_scan(
                        source, out_dir, scan_lines=scan_lines.value, first_line=first_line.value,
                        chunk_frames=chunk_frames, overwrite=overwrite,
                        progress=lambda d, n, task=task: bars.update(task, completed=d, total=n),
                    )  # fmt: skip
                bars.console.print(f"[green]ok[/] {store}", highlight=False)
            except Exception as exc:
                failures += 1
                bars.console.print(f"[bold red]failed[/] {one_line(exc, entry.paths[0])}", highlight=False)
    if failures:
        raise typer.Exit(1)


@app.command()
@friendly
def register(
    store: Annotated[Path, typer.Argument(help="A scan store (OUT/<scan>/scan.zarr or its folder).")],
    method: Method = DEFAULT_METHOD,  # type: ignore[assignment]
) -> None:
    """Register the backward lines of a store and write registered_even, merged and displacement."""
    from orpam_pipeline.register import get_method
    from orpam_pipeline.register.engine import register_store

    with progress_bars() as bars:
        info = register_store(store, get_method(method.value), progress=StageProgress(bars))
    out.print(f"registered with {info['method']} in {info['seconds']:.1f} s: {store}", highlight=False)


@app.command()
@friendly
def report(
    store: Annotated[Path, typer.Argument(help="A registered scan store.")],
) -> None:
    """Compute SPEC metrics and write report.json and report.html beside the store."""
    from orpam_pipeline.report.compute import write_report

    summary, json_path, html_path = write_report(store)
    out.print(report_table(summary))
    out.print(f"report: {html_path}\njson:   {json_path}", highlight=False)


def _run_batch(src: Path, out_dir: Path, options: Any) -> list[Any]:
    from orpam_pipeline.pipeline import run_batch

    with progress_bars() as bars:
        scans_task = bars.add_task("scans", total=None)
        stages = StageProgress(bars)

        def on_start(i: int, n: int, name: str) -> None:
            stages.reset()
            bars.update(scans_task, description=f"scan {name}", completed=i, total=n)

        def on_done(outcome: Any) -> None:
            bars.advance(scans_task)
            if outcome.ok:
                r = outcome.report
                bars.console.print(
                    f"[green]ok[/] {outcome.name}: NCC {fmt(r['ncc_mean'])} (unregistered "
                    f"{fmt(r['ncc_mean_unregistered'])}), TNCC {fmt(r['tncc_merged'])} "
                    f"(odd-only {fmt(r['tncc_odd'])}), {outcome.seconds:.1f} s",
                    highlight=False,
                )
            else:
                bars.console.print(f"[bold red]failed[/] {outcome.error}", highlight=False)

        outcomes = run_batch(src, out_dir, options, on_start=on_start, progress=stages, on_done=on_done)
        stages.reset()
    return outcomes


def _summarise(outcomes: list[Any], started: float) -> None:
    ok = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    frames = sum(o.report["frames"] for o in ok)
    out.print(
        f"{len(ok)} of {len(outcomes)} scans done, {frames} frames in {time.perf_counter() - started:.1f} s",
        highlight=False,
    )
    if failed:
        err.print(f"[bold red]{len(failed)} failed:[/]")
        for o in failed:
            err.print(f"  {o.error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
@friendly
def run(
    src: Annotated[Path, typer.Argument(help="A scan file or a directory tree of scans.")],
    out_dir: Annotated[Path, typer.Argument(help="Output folder: OUT/<scan>/{scan.zarr,report.json,report.html}.")],
    method: Method = DEFAULT_METHOD,  # type: ignore[assignment]
    variable: Variable = None,
    scan_lines: ScanLines = ScanLinesOpt.columns,
    first_line: FirstLine = FirstLineOpt.forward,
    chunk_frames: ChunkFrames = None,
    depth_axis: DepthAxis = None,
    overwrite: Overwrite = False,
) -> None:
    """Ingest, register and report every scan under SRC; failed scans are listed and skipped."""
    from orpam_pipeline.pipeline import RunOptions

    options = RunOptions(
        method=method.value, variable=variable, scan_lines=scan_lines.value, first_line=first_line.value,
        chunk_frames=chunk_frames, depth_axis=depth_axis, overwrite=overwrite,
    )  # fmt: skip
    started = time.perf_counter()
    outcomes = _run_batch(src, out_dir, options)
    _summarise(outcomes, started)


@app.command()
@friendly
def demo(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the demo data and results.")] = Path("orpam-demo"),
    frames: Annotated[int, typer.Option("--frames", "-t", min=2, help="Frames to simulate.")] = 48,
    method: Method = DEFAULT_METHOD,  # type: ignore[assignment]
) -> None:
    """Simulate a small sequence, run the whole pipeline on it and print where the report is."""
    from orpam_pipeline.pipeline import RunOptions
    from orpam_pipeline.simulate import SimulationParams, write_simulation

    started = time.perf_counter()
    params = SimulationParams.randomised(7, frames=frames, height=256, width=256)
    paths = write_simulation(out_dir / "data", params, overwrite=True)
    out.print(f"simulated {frames} frames: {paths.scan} (ground truth: {paths.truth})", highlight=False)
    outcomes = _run_batch(paths.scan.parent, out_dir / "results", RunOptions(method=method.value, overwrite=True))
    for o in outcomes:
        if o.ok:
            out.print(report_table(o.report))
            out.print(f"report: {o.report_html}", highlight=False)
    _summarise(outcomes, started)


def entry() -> None:  # pragma: no cover - console-script shim
    sys.exit(app())
