"""Commands that make or bring in data: ``simulate``, ``ingest`` and ``manifest create|check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orpam_pipeline.cli.console import esc, err, friendly, out, progress_bars
from orpam_pipeline.cli.options import (
    SRC,
    ChunkFrames,
    DepthAxis,
    FirstLine,
    FirstLineOpt,
    Overwrite,
    ScanLines,
    ScanLinesOpt,
    Variable,
    run_options,
)


@friendly
def simulate(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="Folder to write scans/ and truth/ into.")],
    frames: Annotated[int, typer.Option("--frames", "-t", min=1, help="Frames per scan.")] = 64,
    size: Annotated[tuple[int, int], typer.Option("--size", help="Frame height (Y, fast axis) and width (X).")] = (256, 256),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first scan.")] = 0,
    scans: Annotated[int, typer.Option("--scans", min=1, help="Number of scans (seeds seed, seed+1, ...).")] = 1,
    jitter_blocks: Annotated[int, typer.Option(
        "--jitter-blocks", min=0, help="Motor jitter: cut every frame's lines into N blocks, each shifted along Y by its "
        "own offset (0 = none); the truth displacement becomes a (T, Y, X//2) field.")] = 0,
    jitter_min: Annotated[float, typer.Option("--jitter-min", min=0.0, help="Smallest jump between blocks, px.")] = 4.0,
    jitter_max: Annotated[float, typer.Option("--jitter-max", min=0.0, help="Largest jump (and offset), px.")] = 40.0,
    overwrite: Overwrite = False,
) -> None:
    """Simulate bidirectional sequences of OR-PAM vasculature with ground truth beside them."""
    from orpam_pipeline.simulate import SimulationParams, write_simulation

    jitter = {"jitter_blocks": jitter_blocks, "jitter_min": jitter_min, "jitter_max": jitter_max} if jitter_blocks else {}
    for i in range(scans):
        params = SimulationParams.randomised(seed + i, frames=frames, height=size[0], width=size[1], **jitter)
        paths = write_simulation(out_dir, params, overwrite=overwrite)
        out.print(f"scan  {paths.scan}\ntruth {paths.truth}", highlight=False)


@friendly
def ingest(
    src: SRC,
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="Output folder; each scan gets OUT/<scan>/scan.zarr.")],
    variable: Variable = None,
    scan_lines: ScanLines = ScanLinesOpt.columns,
    first_line: FirstLine = FirstLineOpt.forward,
    chunk_frames: ChunkFrames = None,
    depth_axis: DepthAxis = None,
    overwrite: Overwrite = False,
) -> None:
    """Copy scans into zarr stores (float32, chunked by frames, checksummed, with provenance)."""
    from orpam_pipeline.pipeline import run_batch

    options = run_options("none", {}, variable, scan_lines, first_line, chunk_frames, depth_axis, overwrite)
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
