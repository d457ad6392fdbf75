"""The ``orpam`` command line: parses arguments, calls the library, prints with rich."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from orpam_pipeline import __version__
from orpam_pipeline.cli.displacement import apply_displacement_command
from orpam_pipeline.cli.console import StageProgress, friendly, err, fmt, out, progress_bars, report_table
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.register import DEFAULT_METHOD, METHODS

app = typer.Typer(
    name="orpam",
    help="Register, re-interleave and quality-check bidirectional OR-PAM scans.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)



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
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace stores made with other parameters (same ones are continued or skipped).")]
Method = Annotated[MethodOpt, typer.Option("--method", "-m", help="Registration method.")]
Checkpoint = Annotated[
    Path | None, typer.Option("--checkpoint", help="Learned methods: checkpoint file (default: the shipped one).")
]
Device = Annotated[str | None, typer.Option("--device", help="Learned methods: auto, cpu or cuda.")]
Precision = Annotated[str | None, typer.Option("--precision", help="Learned methods: auto, fp32, bf16 or fp16.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", min=1, help="Learned methods: frames per batch.")]
LineProfile = Annotated[
    bool,
    typer.Option("--line-profile", help="pcregnet-flow: use the field's median along the lines, one profile per row."),
]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", help="Run the chunk tasks on a running dask.distributed cluster (e.g. tcp://host:8786)."),
]
Workers = Annotated[
    int | None, typer.Option("--workers", min=1, help="Run the chunk tasks on a local dask cluster of N worker processes.")
]


def method_options(checkpoint: Path | None, device: str | None, precision: str | None, batch: int | None,
                   line_profile: bool = False) -> dict:
    """Settings for learned methods, only those the user gave."""
    opts = {"checkpoint": str(checkpoint) if checkpoint else None, "device": device, "precision": precision,
            "batch_size": batch, "profile": True if line_profile else None}  # fmt: skip
    return {k: v for k, v in opts.items() if v is not None}


def computing(scheduler: str | None, workers: int | None) -> Any:
    """The compute context for ``--scheduler``/``--workers`` (local threads when neither is given)."""
    from orpam_pipeline.compute import compute_context

    return compute_context(scheduler=scheduler, workers=workers)


def _version(value: bool) -> None:
    if value:
        out.print(f"orpam_pipeline {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    """Bidirectional OR-PAM registration pipeline."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM ends the command like Ctrl-C: locks are released and finished chunks stay marked."""
    raise KeyboardInterrupt


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
    from orpam_pipeline.store.ingest import ingest as run_ingest

    failures = 0
    said = {"created": "", "resumed": " (continued an interrupted ingest)", "complete": " (already complete)"}
    with progress_bars() as bars:
        for entry in discover_scans(src):
            task = bars.add_task(f"ingest {entry.name}", total=None)
            try:
                with open_scan(entry, variable=variable, depth_axis=depth_axis) as source:
                    result = run_ingest(
                        source, out_dir, scan_lines=scan_lines.value, first_line=first_line.value,
                        chunk_frames=chunk_frames, overwrite=overwrite,
                        progress=lambda d, n, task=task: bars.update(task, completed=d, total=n),
                    )  # fmt: skip
                bars.console.print(f"[green]ok[/] {result.store}{said[result.state]}", highlight=False)
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
    checkpoint: Checkpoint = None,
    device: Device = None,
    precision: Precision = None,
    batch_size: BatchSize = None,
    line_profile: LineProfile = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a registration made with other parameters.")] = False,
    scheduler: Scheduler = None,
    workers: Workers = None,
) -> None:
    """Register the backward lines of a store and write registered_even, merged and displacement.

    An interrupted registration with the same parameters is continued; a complete one is left as is.
    """
    from orpam_pipeline.register import get_method
    from orpam_pipeline.register.engine import register as run_register

    chosen = get_method(method.value, **method_options(checkpoint, device, precision, batch_size, line_profile))
    with computing(scheduler, workers), progress_bars() as bars:
        result = run_register(store, chosen, progress=StageProgress(bars), overwrite=overwrite)
    info = result.info
    if result.state == "complete":
        out.print(f"already registered with {info['method']}: {store}", highlight=False)
    else:
        how = "continued" if result.state == "resumed" else "registered"
        out.print(f"{how} with {info['method']} in {info['seconds']:.1f} s ({result.chunks_written} of "
                  f"{result.chunks} chunks written): {store}", highlight=False)  # fmt: skip


@app.command()
@friendly
def report(
    store: Annotated[Path, typer.Argument(help="A registered scan store.")],
) -> None:
    """Compute the metrics of docs/metrics.md and write report.json and report.html beside the store."""
    from orpam_pipeline.report.compute import write_report

    summary, json_path, html_path = write_report(store)
    out.print(report_table(summary))
    out.print(f"report: {html_path}\njson:   {json_path}", highlight=False)


def _batch_hooks(bars: Any, visible: bool = True) -> tuple[Callable[..., None], Any, Callable[[Any], None]]:
    """Callbacks that drive the scans bar, the per-stage bars and the per-scan result lines."""
    scans_task = bars.add_task("scans", total=None, visible=visible)
    stages = StageProgress(bars)

    def on_start(i: int, n: int, name: str) -> None:
        stages.reset()
        bars.update(scans_task, description=f"scan {name}", completed=i, total=n)

    def on_done(outcome: Any) -> None:
        bars.advance(scans_task)
        if outcome.ok:
            r = outcome.report
            how = {"skipped": " (already complete, skipped)", "resumed": " (continued)"}.get(outcome.status, "")
            bars.console.print(
                f"[green]ok[/] {outcome.name}{how}: NCC {fmt(r['ncc_mean'])} (unregistered "
                f"{fmt(r['ncc_mean_unregistered'])}), TNCC {fmt(r['tncc_merged'])} "
                f"(odd-only {fmt(r['tncc_odd'])}), {outcome.seconds:.1f} s",
                highlight=False,
            )
        else:
            bars.console.print(f"[bold red]failed[/] {outcome.error}", highlight=False)

    return on_start, stages, on_done


def _run_batch(src: Path, out_dir: Path, options: Any) -> list[Any]:
    from orpam_pipeline.pipeline import run_batch

    with progress_bars() as bars:
        on_start, stages, on_done = _batch_hooks(bars)
        outcomes = run_batch(src, out_dir, options, on_start=on_start, progress=stages, on_done=on_done)
        stages.reset()
    return outcomes


def _summarise(outcomes: list[Any], started: float) -> None:
    ok = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    frames = sum(o.report["frames"] for o in ok)
    skipped = sum(1 for o in ok if o.status == "skipped")
    note = f" ({skipped} already complete)" if skipped else ""
    out.print(
        f"{len(ok)} of {len(outcomes)} scans done{note}, {frames} frames in {time.perf_counter() - started:.1f} s",
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
    checkpoint: Checkpoint = None,
    device: Device = None,
    precision: Precision = None,
    batch_size: BatchSize = None,
    line_profile: LineProfile = False,
    scheduler: Scheduler = None,
    workers: Workers = None,
) -> None:
    """Ingest, register and report every scan under SRC; failed scans are listed and skipped.

    Registration chunks run on local threads, or on a dask cluster with --workers or --scheduler.
    """
    from orpam_pipeline.pipeline import RunOptions

    options = RunOptions(
        method=method.value, variable=variable, scan_lines=scan_lines.value, first_line=first_line.value,
        chunk_frames=chunk_frames, depth_axis=depth_axis, overwrite=overwrite,
        method_options=method_options(checkpoint, device, precision, batch_size, line_profile),
    )  # fmt: skip
    started = time.perf_counter()
    with computing(scheduler, workers):
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


@app.command()
@friendly
def evaluate(
    src: Annotated[Path | None, typer.Argument(help="Scans to evaluate (file or tree); with --benchmark give only OUT.")] = None,
    out_dir: Annotated[Path | None, typer.Argument(help="Output folder: evaluation.{json,md,png} and one store per method.")] = None,
    methods: Annotated[str, typer.Option("--methods", help="Comma-separated methods to compare.")] = "none,copy-odd,phase,pcregnet,pcregnet-flow",
    benchmark: Annotated[bool, typer.Option("--benchmark", help="Evaluate on the held-out simulated benchmark (generated into OUT/benchmark-data).")] = False,
    frames: Annotated[int | None, typer.Option("--frames", min=1, help="Use only the first N frames of each scan.")] = None,
    leak_frames: Annotated[int, typer.Option("--leak-frames", min=1, help="Frames per scan for the leak check.")] = 16,
    leak_threshold: Annotated[float, typer.Option("--leak-threshold", help="Largest allowed leak excess (NCC).")] = 0.2,
    variable: Variable = None,
    scan_lines: ScanLines = ScanLinesOpt.columns,
    first_line: FirstLine = FirstLineOpt.forward,
    depth_axis: DepthAxis = None,
    checkpoint: Checkpoint = None,
    device: Device = None,
    precision: Precision = None,
    batch_size: BatchSize = None,
    line_profile: LineProfile = False,
    scheduler: Scheduler = None,
    workers: Workers = None,
) -> None:
    """Compare methods on the same scans: papers' metrics, ground truth, leak check, artefact score, time."""
    from rich import box
    from rich.table import Table

    from orpam_pipeline.evaluate import EvaluateOptions, evaluate as run_evaluation, write_outputs

    if benchmark and out_dir is None:
        src, out_dir = None, src
    if out_dir is None or (src is not None and benchmark):
        raise OrpamError("usage: orpam evaluate SRC OUT, or orpam evaluate --benchmark OUT")
    options = EvaluateOptions(
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()), max_frames=frames,
        method_options=method_options(checkpoint, device, precision, batch_size, line_profile), leak_frames=leak_frames,
        leak_threshold=leak_threshold, variable=variable, scan_lines=scan_lines.value, first_line=first_line.value,
        depth_axis=depth_axis,
    )  # fmt: skip

    def on_event(kind: str, d: dict[str, Any]) -> None:
        if kind == "scan":
            err.print(f"[bold]{d['scan']}[/]: {d['frames']} frames, truth: {d['truth'] or 'none'}", highlight=False)
        elif kind == "method":
            err.print(f"  {d['method']}: NCC vs truth {fmt(d['ncc_truth'])}, artefact {fmt(d['artefact'])}, "
                      f"leak excess {fmt(d['leak_excess'], 3)}, {fmt(d['ms_per_frame'], 1)} ms/frame", highlight=False)  # fmt: skip
        else:
            err.print(f"  [bold red]failed[/] {d.get('method', '')} {d['error']}", highlight=False, soft_wrap=True)

    with computing(scheduler, workers), err.status("evaluating"):
        result = run_evaluation(src, out_dir, options, benchmark=benchmark, on_event=on_event)
    paths = write_outputs(result, out_dir)
    n_ok = sum(1 for s in result["scans"] if s.get("ok"))
    table = Table(title=f"evaluation: {n_ok} scans, mean over scans", box=box.SIMPLE_HEAD, padding=(0, 1))
    columns = (("NCC vs odd", "ncc_odd", 3), ("TNCG", "tncg", 3), ("NCC truth", "ncc_truth", 3),
               ("PSNR truth", "psnr_truth", 1), ("disp RMS", "disp_rms_px", 2), ("artefact", "artefact", 3),
               ("leak exc.", "leak_excess", 2))  # fmt: skip
    table.add_column("method", no_wrap=True)
    for label, _, digits in columns:
        table.add_column(label, justify="right", min_width=digits + 2)
    table.add_column(f"leak<{leak_threshold}", no_wrap=True)
    table.add_column("ms/frame", justify="right", min_width=5)
    for name, s in result["summary"].items():
        verdict = "—" if not s["scans"] else "[green]pass[/]" if s["leak_passed"] else "[bold red]FAIL[/]"
        table.add_row(name, *(fmt(s[key]["mean"], d) for _, key, d in columns), verdict,
                      fmt(s["ms_per_frame"].get("overall"), 1))  # fmt: skip
    out.print(table)
    out.print("\n".join(f"{kind:<4} {path}" for kind, path in paths.items()), highlight=False)
    failed = [s for s in result["scans"] if not s.get("ok") or not all(m.get("ok") for m in s["methods"].values())]
    if failed:
        raise typer.Exit(1)


@app.command()
@friendly
def status(
    out_dir: Annotated[Path, typer.Argument(help="Output folder of `orpam run` (or one scan's folder or store).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show per scan which stages are complete and how many chunks each has done."""
    import json

    from rich.table import Table

    from orpam_pipeline.store.lock import describe_holder
    from orpam_pipeline.store.status import STAGES, collect_status

    scans = collect_status(out_dir)
    if as_json:
        print(json.dumps(scans, indent=1))
        return
    if not scans:
        raise OrpamError(f"{out_dir}: no scan stores found")
    table = Table(title=f"{out_dir}: {len(scans)} scans")
    table.add_column("scan", no_wrap=True)
    for stage in STAGES:
        table.add_column(stage, justify="right")
    table.add_column("writer")
    colours = {"complete": "green", "partial": "yellow", "absent": "dim"}
    for scan in scans:
        cells = []
        for stage in STAGES:
            s = scan["stages"][stage]
            text = "—" if s["state"] == "absent" else f"{s['state']} {s['chunks_done']}/{s['chunks_total']}"
            if s.get("method"):
                text += f" ({s['method']})"
            cells.append(f"[{colours[s['state']]}]{text}[/]")
        lock = scan["lock"]
        writer = "" if lock is None else ("running: " if lock.get("alive") else "stale lock: ") + describe_holder(lock)
        table.add_row(scan["scan"], *cells, writer or (scan["problem"] or ""))
    out.print(table)


@app.command()
@friendly
def verify(
    out_dir: Annotated[Path, typer.Argument(help="Output folder of `orpam run` (or one scan's folder or store).")],
) -> None:
    """Re-hash every recorded source file and decode every chunk (CRC32C); exit 1 on any problem."""
    from orpam_pipeline.store.status import verify_outputs

    with progress_bars() as bars:
        task = bars.add_task("verify", total=None)
        result = verify_outputs(
            out_dir, progress=lambda what, d, n: bars.update(task, description=f"verify {what}", completed=d, total=n)
        )
    for problem in result.problems:
        err.print(f"[bold red]problem:[/] {problem}", highlight=False, soft_wrap=True)
    summary = f"{result.stores} stores, {result.source_files} source files, {result.chunks} chunks checked"
    if not result.ok:
        err.print(f"[bold red]{len(result.problems)} problems[/] ({summary})", highlight=False)
        raise typer.Exit(1)
    out.print(f"ok: {summary}", highlight=False)


manifest_app = typer.Typer(help="Create and verify dataset manifests (data_manifests/README.md).", no_args_is_help=True)
app.add_typer(manifest_app, name="manifest")


@manifest_app.command("create")
@friendly
def manifest_create(
    src: Annotated[Path, typer.Argument(help="Directory of scans (a `truth/` folder beside it is picked up).")],
    manifest_path: Annotated[Path, typer.Argument(metavar="OUT", help="Manifest file to write (.toml).")],
    name: Annotated[str | None, typer.Option("--name", help="Dataset name (default: the folder name).")] = None,
    val_fraction: Annotated[float, typer.Option("--val-fraction", min=0.0, max=0.9)] = 0.15,
    test_fraction: Annotated[float, typer.Option("--test-fraction", min=0.0, max=0.9)] = 0.15,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split by scan.")] = 0,
    split_from_dirs: Annotated[bool, typer.Option("--split-from-dirs", help="Use train/ val/ test/ folders as the split.")] = False,
    scan_lines: ScanLines = ScanLinesOpt.columns,
    first_line: FirstLine = FirstLineOpt.forward,
    overwrite: Overwrite = False,
) -> None:
    """Write a manifest for every scan under SRC, with sha256 hashes and a split by scan."""
    from orpam_pipeline.manifest import create_manifest

    manifest = create_manifest(
        src, manifest_path, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, name=name,
        scan_lines=scan_lines.value, first_line=first_line.value, overwrite=overwrite, split_from_dirs=split_from_dirs,
    )  # fmt: skip
    counts: dict[str, int] = {}
    for scan in manifest.scans:
        counts[scan.split] = counts.get(scan.split, 0) + 1
    split_text = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    out.print(f"wrote {manifest_path}: {len(manifest.scans)} scans ({split_text})", highlight=False)


@manifest_app.command("check")
@friendly
def manifest_check(
    manifest: Annotated[Path, typer.Argument(help="Manifest file.")],
    allow_outside_root: Annotated[bool, typer.Option("--allow-outside-root", help="Accept paths outside the root.")] = False,
) -> None:
    """Verify that every file of a manifest exists and matches its sha256."""
    from orpam_pipeline.manifest import check_manifest, load_manifest

    loaded = load_manifest(manifest, allow_outside_root=allow_outside_root)
    problems = check_manifest(loaded)
    for problem in problems:
        err.print(f"[bold red]problem:[/] {problem}", highlight=False)
    if problems:
        raise typer.Exit(1)
    out.print(f"{manifest}: {len(loaded.scans)} scans, all files present and hashes match", highlight=False)


@app.command()
@friendly
def train(
    manifest: Annotated[Path, typer.Argument(help="Dataset manifest (.toml).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for checkpoints and metrics.jsonl.")],
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 100,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    steps_per_epoch: Annotated[int | None, typer.Option("--steps-per-epoch", min=1, help="Default: one pass over all train frames.")] = None,
    crop: Annotated[int, typer.Option("--crop", min=16, help="Square training crop (pixels of the half-width pair image).")] = 128,
    lr: Annotated[float, typer.Option("--lr")] = 1e-3,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 1e-5,
    lambda_coarse: Annotated[float, typer.Option("--lambda-coarse", help="Weight of the coarse-output loss.")] = 0.5,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    amp: Annotated[str, typer.Option("--amp", help="auto, off, fp16 or bf16.")] = "auto",
    base_channels: Annotated[int, typer.Option("--base-channels", min=4, help="PCReg-Net width (paper: 32).")] = 32,
    arch: Annotated[str, typer.Option("--arch", help="pcregnet (pixel output, as published) or pcregnet-flow (displacement + gain/offset).")] = "pcregnet",
    lambda_smooth: Annotated[float, typer.Option("--lambda-smooth", help="pcregnet-flow: displacement smoothness weight.")] = 0.1,
    lambda_intensity: Annotated[float, typer.Option("--lambda-intensity", help="pcregnet-flow: gain/offset smoothness weight.")] = 0.1,
    lambda_displacement: Annotated[float, typer.Option("--lambda-displacement", help="pcregnet-flow: weight of the supervised displacement error; needs truth stores with a displacement (simulated data). 0 = self-supervised.")] = 0.0,
    init: Annotated[Path | None, typer.Option("--init", help="Start from this checkpoint's weights (same architecture) instead of random ones.")] = None,
    shift: Annotated[int, typer.Option("--shift", min=0, help="Augment with random integer shifts of the moving crop along Y of up to this many rows.")] = 0,
    freeze_batchnorm: Annotated[bool, typer.Option("--freeze-batchnorm", help="Keep batch-norm statistics fixed (recommended with --init).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last.pt.")] = False,
) -> None:
    """Train PCReg-Net on a manifest's train split, validating every epoch (with ground truth when present)."""
    from orpam_pipeline.models.pcregnet import PCRegNetConfig
    from orpam_pipeline.models.pcregnet_flow import PCRegNetFlowConfig
    from orpam_pipeline.train.trainer import TrainConfig, train as run_training

    architectures = {"pcregnet": PCRegNetConfig, "pcregnet-flow": PCRegNetFlowConfig}
    if arch not in architectures:
        raise OrpamError(f"unknown architecture {arch!r} (known: {', '.join(architectures)})")
    model_config = architectures[arch](base_channels=base_channels)
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, steps_per_epoch=steps_per_epoch, crop=crop, lr=lr,
        weight_decay=weight_decay, lambda_coarse=lambda_coarse, seed=seed, device=device, amp=amp,
        lambda_smooth=lambda_smooth, lambda_intensity=lambda_intensity, lambda_displacement=lambda_displacement,
        init=None if init is None else str(init), freeze_batchnorm=freeze_batchnorm, shift=shift,
    )  # fmt: skip
    with progress_bars() as bars:
        epoch_task = bars.add_task("epochs", total=epochs)
        step_task = bars.add_task("  steps", total=None)

        def on_progress(event: dict[str, Any]) -> None:
            if event["event"] == "step":
                bars.update(step_task, completed=event["step"], total=event["steps"],
                            description=f"  epoch {event['epoch']} loss {event['loss']:.4f}")  # fmt: skip
            else:
                bars.update(epoch_task, completed=event["epoch"])
                parts = [f"epoch {event['epoch']}", f"train loss {fmt(event.get('train_loss'))}"]
                for key in ("val_loss", "val_ncc", "truth_ncc", "truth_ncc_copy_fixed", "val_disp_rms_px"):
                    if key in event:
                        parts.append(f"{key} {fmt(event[key])}")
                bars.console.print(", ".join(parts), highlight=False)

        result = run_training(manifest, out_dir, config, model_config, resume=resume, progress=on_progress)
    from orpam_pipeline.models.checkpoint import export_model

    model_path = export_model(result.best_checkpoint, Path(out_dir) / "model.pt")
    out.print(
        f"best checkpoint: {result.best_checkpoint}\nlast checkpoint: {result.last_checkpoint}\n"
        f"inference model: {model_path}  (use: orpam run SRC OUT --method {arch} --checkpoint {model_path})",
        highlight=False,
    )


@app.command()
@friendly
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Version, devices seen, and every registration method with its checkpoint."""
    import json

    from rich.table import Table

    from orpam_pipeline.info import collect

    data = collect()
    if as_json:
        print(json.dumps(data, indent=1))
        return
    out.print(f"orpam_pipeline {data['version']} (Python {data['python']}, torch {data['torch']})", highlight=False)
    devices = Table(title="devices")
    for col in ("device", "name", "details"):
        devices.add_column(col)
    for d in data["devices"]:
        details = ", ".join(f"{k} {v}" for k, v in d.items() if k not in ("device", "name"))
        devices.add_row(d["device"], str(d["name"]), details)
    out.print(devices)
    methods = Table(title="registration methods")
    for col in ("name", "kind", "parameters", "checkpoint", "sha256"):
        methods.add_column(col)
    for m in data["methods"]:
        sha = m.get("checkpoint_sha256")
        ckpt = m.get("checkpoint", "")
        if ckpt and sha is None:
            ckpt += " (missing)"
        methods.add_row(m["name"], m["kind"], f"{m['parameters']:,}" if m["parameters"] else "—", ckpt, (sha or "")[:16])
    out.print(methods)


app.command("apply-displacement")(apply_displacement_command)

workflow_app = typer.Typer(help="Run declarative workflows (workflows/README.md).", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")


@workflow_app.command("run")
@friendly
def workflow_run(
    file: Annotated[Path, typer.Argument(help="Workflow file (.toml); its relative paths are relative to it.")],
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a setting: section.key=value (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved workflow as JSON and stop.")] = False,
) -> None:
    """Run a batch, temporal-report or train workflow; records it in OUT/workflow.json and in every store."""
    import json

    from orpam_pipeline.workflow import WorkflowHooks, load_workflow, run_workflow

    wf = load_workflow(file, overrides or [])
    if dry_run:
        print(json.dumps(wf.record(), indent=1))
        return
    started = time.perf_counter()
    with progress_bars() as bars:
        on_start, stages, on_done = _batch_hooks(bars, visible=wf.kind != "train")
        epochs = bars.add_task("epochs", total=None, visible=wf.kind == "train")

        def on_train(event: dict[str, Any]) -> None:
            if event["event"] == "epoch":
                bars.update(epochs, completed=event["epoch"], total=wf.config.get("train", {}).get("epochs"))
                bars.console.print(f"epoch {event['epoch']}: train loss {fmt(event.get('train_loss'))}, "
                                   f"val loss {fmt(event.get('val_loss'))}", highlight=False)  # fmt: skip

        result = run_workflow(wf, WorkflowHooks(on_start, stages, on_done, on_train))
        stages.reset()
    if result.outcomes:
        n_ok = sum(1 for o in result.outcomes if o.ok)
        out.print(f"{n_ok} of {len(result.outcomes)} scans done in {time.perf_counter() - started:.1f} s",
                  highlight=False)  # fmt: skip
    for row in result.rows:
        if "error" not in row:
            out.print(f"{row['scan']}: TNCC {fmt(row.get('tncc_merged'))} (odd-only {fmt(row.get('tncc_odd'))}), "
                      f"TNCG {fmt(row.get('tncg'))}", highlight=False)  # fmt: skip
    for kind, path in result.summary.items():
        out.print(f"{kind:<4} {path}", highlight=False)
    if result.train is not None:
        out.print(f"model: {result.output / 'model.pt'} ({result.train.epochs_completed} epochs)", highlight=False)
    out.print(f"record: {result.record}", highlight=False)
    for problem in result.failed:
        err.print(f"[bold red]failed[/] {problem}", highlight=False, soft_wrap=True)
    if result.failed:
        raise typer.Exit(1)


def entry() -> None:  # pragma: no cover - console-script shim
    sys.exit(app())
