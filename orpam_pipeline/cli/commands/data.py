"""Commands that make, look at or bring in data: ``simulate``, ``inspect``, ``ingest`` and ``manifest create|check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orpam_pipeline.cli.console import esc, err, friendly, out, print_warnings, progress_bars
from orpam_pipeline.cli.groups import FROM_GROUP, with_groups
from orpam_pipeline.cli.options import (
    SCAN,
    SRC,
    AsJson,
    FirstLine,
    FirstLineOpt,
    Overwrite,
    ScanLines,
    ScanLinesOpt,
    Variable,
    scan_fields,
)


@friendly
def simulate(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="Folder to write scans/ and truth/ into.")],
    frames: Annotated[int, typer.Option("--frames", "-t", min=1, help="Frames per scan.")] = 64,
    size: Annotated[tuple[int, int], typer.Option("--size", help="Frame height (Y, fast axis) and width (X).")] = (256, 256),
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the first scan (default 0; with --general the "
                                             "start of the training seed range, 20000).")] = None,
    scans: Annotated[int, typer.Option("--scans", "--count", min=1, help="Number of scans (seeds seed, seed+1, ...).")] = 1,
    general: Annotated[bool, typer.Option("--general", help="Draw from the general training distribution (profiles 0 "
                                          "to ±8 px of five kinds, wide gain/gamma/offset and noise, vessel and picture "
                                          "scenes; seeds 20000-29999 only; needs scikit-image).")] = False,
    manifest: Annotated[Path | None, typer.Option("--manifest", help="Also write a dataset manifest of OUT/scans "
                                                  "(split 80/10/10 by scan) for `orpam train`.")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Write A-line volumes (T, Z, Y, X) uint16 with a DC offset and "
                                      "carrier pulses instead of MAP frames (read them with --axes tzyx).")] = False,
    depth_samples: Annotated[int, typer.Option("--depth-samples", min=16, help="With --raw: samples per A-line.")] = 128,
    jitter_blocks: Annotated[int, typer.Option(
        "--jitter-blocks", min=0, help="Motor jitter: cut every frame's lines into N blocks, each shifted along Y by its "
        "own offset (0 = none); the truth displacement becomes a (T, Y, X//2) field.")] = 0,
    jitter_min: Annotated[float, typer.Option("--jitter-min", min=0.0, help="Smallest jump between blocks, px.")] = 4.0,
    jitter_max: Annotated[float, typer.Option("--jitter-max", min=0.0, help="Largest jump (and offset), px.")] = 40.0,
    overwrite: Overwrite = False,
) -> None:
    """Simulate bidirectional sequences of OR-PAM vasculature with ground truth beside them."""
    from orpam_pipeline.errors import OrpamError
    from orpam_pipeline.simulate import SimulationParams, write_simulation
    from orpam_pipeline.simulate.raw import RawParams

    raw_params = RawParams(depth_samples=depth_samples) if raw else None
    jitter = {"jitter_blocks": jitter_blocks, "jitter_min": jitter_min, "jitter_max": jitter_max} if jitter_blocks else {}
    if general:
        from orpam_pipeline.simulate.general import TRAIN_SEEDS, check_training_seed, general_params

        if jitter:
            raise OrpamError("--general draws its own block jitter; leave out --jitter-blocks")
        seed = TRAIN_SEEDS.start if seed is None else seed
        for s in range(seed, seed + scans):  # refuse before writing anything
            check_training_seed(s)
    seed = 0 if seed is None else seed
    for i in range(scans):
        if general:
            params = general_params(seed + i, frames=frames, height=size[0], width=size[1])
        else:
            params = SimulationParams.randomised(seed + i, frames=frames, height=size[0], width=size[1], **jitter)
        paths = write_simulation(out_dir, params, overwrite=overwrite, raw=raw_params)
        out.print(f"scan  {paths.scan}\ntruth {paths.truth}", highlight=False)
    if manifest is not None:
        _simulated_manifest(out_dir, manifest, general, overwrite)


def _simulated_manifest(out_dir: Path, path: Path, general: bool, overwrite: bool) -> None:
    """Manifest of every scan under ``OUT/scans`` with its truth, split by scan (seed 0)."""
    from orpam_pipeline.manifest import create_manifest

    what = "general training distribution" if general else "randomised simulations"
    made = create_manifest(out_dir / "scans", path, val_fraction=0.1, test_fraction=0.1, name=Path(out_dir).name,
                           description=f"orpam simulate ({what})", overwrite=overwrite)  # fmt: skip
    out.print(f"wrote {path}: {len(made.scans)} scans", highlight=False)


@friendly
def inspect(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="A scan file or a directory of scans.")],
    variable: Variable = None,
    as_json: AsJson = False,
) -> None:
    """Show what PATH holds, what the readers will do with it, a guess of its axes and the `orpam run` line.

    Reads only headers, small values and a bounded sample of the data. Axes are letters in the file's
    own order (NumPy's; MATLAB's for .mat): t frames, y along a line, x line index, z depth.
    """
    from orpam_pipeline.cli.console import print_json
    from orpam_pipeline.io.inspect import inspect_path

    result = inspect_path(path, variable)
    if as_json:
        print_json(result)
        return
    for scan in result["scans"]:
        _print_scan(scan)
    if result.get("command") and result["kind"] == "directory":
        out.print(f"[bold]for the whole directory:[/] {esc(result['command'])}", highlight=False)


def _range_text(array: dict[str, Any]) -> str:
    if array["range"] is None:
        return f"range not read ({array['range_from']})" if array["range_from"] else ""
    lo, hi = array["range"]
    return f"range {lo:.4g} .. {hi:.4g} ({array['range_from']})"


def _print_scan(scan: dict[str, Any]) -> None:
    """One scan of an inspection, for a person."""
    if scan.get("files", 1) > 1:
        out.print(f"[bold]{esc(scan['name'])}[/]: a directory scan of {scan['files']} frame files", highlight=False)
        detail = scan.get("first_file") or {}
        _print_file(detail, "  first file ")
    else:
        _print_file(scan, "")
    if scan.get("error"):
        out.print(f"  [bold red]cannot read:[/] {esc(scan['error'])}", highlight=False)
    point = scan.get("point_scan")
    if point:
        what = (f"{point['pattern']}, first line {point['first_line']}, frames from {point['frames_from']}"
                if "error" not in point else f"[yellow]no grid[/]: {esc(point['error'])}")  # fmt: skip
        out.print(f"  point scan: positions table {esc(point['positions'])} beside the {point['count']} A-lines "
                  f"{esc(point['alines'])} ({what})", highlight=False)  # fmt: skip
    axes = scan.get("axes")
    if axes:
        letters = axes.get("letters_per_file") or axes["letters"]
        where = "per file" if "letters_per_file" in axes else "in the file's order"
        out.print(f"  axes (guess, {where}): [bold]{esc(letters)}[/]   "
                  "(t frames, y along a line, x line index, z depth)", highlight=False)  # fmt: skip
        cols, rows = axes.get("comb_between_columns"), axes.get("comb_between_rows")
        if cols is not None and rows is not None:
            out.print(f"    comb between columns {cols:.3g}, between rows {rows:.3g}: lines are {axes['lines']}",
                      highlight=False)  # fmt: skip
        scores = [("-" if v is None else f"{v:.3g}") for v in axes.get("depth_scores") or []]
        if any(v != "-" for v in scores):
            out.print(f"    depth score per axis (oscillation; depth above 4): {' '.join(scores)}", highlight=False)
        for note in axes.get("notes") or []:
            out.print(f"    note: {esc(note)}", highlight=False)
    _print_stated(scan.get("stated") or {})
    frames = scan.get("frames")
    if frames:
        depth = f", {frames['depth']} depth samples reduced to a MAP" if frames.get("depth") else ""
        y, x = frames["frame_shape"]
        out.print(f"  gives {frames['frames']} frames of {y} x {x} (Y along the lines x X lines){depth}",
                  highlight=False)  # fmt: skip
    suggestion = scan.get("suggestion") or {}
    if suggestion.get("command"):
        out.print(f"  [bold]run:[/] {esc(suggestion['command'])}", highlight=False)
    if suggestion.get("equivalent"):
        out.print(f"  (the same with --depth-axis: {esc(suggestion['equivalent'])})", highlight=False)


def _print_stated(stated: dict[str, Any]) -> None:
    """The pixel size and frame interval the file states, and where each came from."""
    found = stated.get("found") or {}
    if "pixel_um" in stated:
        pixel = stated["pixel_um"]
        where = ", ".join(sorted({found[k]["from"] for k in ("pixel_um_y", "pixel_um_x") if k in found}))
        out.print(f"  pixel size stated: {pixel['y']:g} x {pixel['x']:g} µm (along its rows x columns; {esc(where)})", highlight=False)
    if "frame_interval_s" in stated:
        where = found.get("frame_interval_s", {}).get("from", "")
        out.print(f"  frame interval stated: {stated['frame_interval_s']:g} s ({esc(where)})", highlight=False)


def _print_file(report: dict[str, Any], prefix: str) -> None:
    if not report:
        return
    order = "MATLAB" if report.get("order") == "matlab" else "NumPy"
    out.print(f"{prefix}[bold]{esc(report['path'])}[/] ({esc(report['format'])}, shapes in {order} order)",
              highlight=False)  # fmt: skip
    chosen = (report.get("scan") or {}).get("variable")
    for array in report.get("arrays", []):
        name = array["name"] if array["name"] is not None else "(array)"
        mark = "  <- the scan" if array["name"] == chosen and report.get("scan") else ""
        shape = "x".join(str(s) for s in array["shape"])
        out.print(f"    {esc(name)}  {shape}  {esc(array['dtype'])}  {esc(_range_text(array))}{mark}", highlight=False)
    metadata = report.get("metadata") or {}
    physical = set(report.get("physical") or [])
    if metadata:
        out.print("    metadata (physical-looking first):", highlight=False)
        for key in sorted(metadata, key=lambda k: (k not in physical, k))[:40]:
            out.print(f"      {esc(key)} = {esc(metadata[key])}", highlight=False)
    reading = report.get("reading") or {}
    if reading.get("ok"):
        var = f"variable {esc(reading['variable'])}, " if reading.get("variable") else ""
        y, x = reading["frame_shape"]
        n = reading["frames"]
        out.print(f"    readers as is: {var}{n} frame{'s' if n != 1 else ''} of {y} x {x}", highlight=False)
    elif reading:
        out.print(f"    readers as is: [yellow]refuse it[/]: {esc(reading['error'])}", highlight=False)


@friendly
@with_groups(scan=SCAN)
def ingest(
    src: SRC,
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="Output folder; each scan gets OUT/<scan>/scan.zarr.")],
    scan: dict[str, Any] = FROM_GROUP,
    overwrite: Overwrite = False,
) -> None:
    """Copy scans into zarr stores (float32, chunked by frames, checksummed, with provenance).

    Settings that look wrong are warned about under each scan (docs/warnings.md).
    """
    from orpam_pipeline.options import RunOptions
    from orpam_pipeline.pipeline import run_batch

    options = RunOptions(overwrite=overwrite, **scan_fields(scan))
    said = {"processed": "", "resumed": " (continued an interrupted ingest)", "skipped": " (already complete)"}
    with progress_bars() as bars:
        task = bars.add_task("ingest", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bars.update(task, completed=done, total=total)

        def on_done(o) -> None:  # noqa: ANN001
            if o.ok:
                bars.console.print(f"[green]ok[/] {esc(o.store)}{said[o.status]}", highlight=False)
            else:
                bars.console.print(f"[bold red]failed[/] {esc(o.error)}", highlight=False)
            print_warnings(bars.console, o.warnings)

        outcomes = run_batch(src, out_dir, options, lambda i, n, name: bars.update(task, description=f"ingest {name}"),
                             progress, on_done, ingest_only=True)  # fmt: skip
    if any(not o.ok for o in outcomes):
        raise typer.Exit(1)


manifest_app = typer.Typer(help="Create and verify dataset manifests (data_manifests/README.md).", no_args_is_help=True)


@manifest_app.command("create")
@friendly
def manifest_create(
    src: Annotated[Path, typer.Argument(metavar="SRC", help="Directory of scans (a `truth/` folder beside it is picked up).")],
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
        err.print(f"[bold red]problem:[/] {esc(problem)}", highlight=False)
    if problems:
        raise typer.Exit(1)
    out.print(f"{manifest}: {len(loaded.scans)} scans, all files present and hashes match", highlight=False)
