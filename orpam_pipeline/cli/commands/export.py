"""``orpam export``: one array of a scan store as OME-TIFF, ImageJ TIFF, MATLAB, HDF5 or .npy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orpam_pipeline.cli.console import esc, friendly, out, progress_bars


@friendly
def export(
    store: Annotated[Path, typer.Argument(metavar="STORE", help="A scan store (OUT/<scan> or OUT/<scan>/scan.zarr).")],
    out_path: Annotated[
        Path,
        typer.Argument(
            metavar="OUT",
            help="File to write; its suffix picks the format: .ome.tif(f) OME-TIFF, .tif(f) ImageJ TIFF, "
            ".mat MATLAB v7.3, .h5/.hdf5 HDF5, .npy NumPy.",
        ),
    ],
    array: Annotated[str, typer.Option("--array", "-a", help="Array of the store to export (e.g. merged, frames).")] = "merged",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> None:
    """Export one array of STORE to OUT, one chunk of frames at a time (docs/export.md)."""
    from orpam_pipeline.export import export_array

    with progress_bars() as bars:
        task = bars.add_task("export", total=None)
        summary = export_array(
            store, out_path, array=array, overwrite=overwrite,
            progress=lambda done, total: bars.update(task, completed=done, total=total),
        )  # fmt: skip
    shape = "x".join(str(s) for s in summary["shape"])
    phys = summary["physical"]
    known = ", ".join(f"{k}={v:g}" for k, v in phys.items()) or "no physical sizes known"
    out.print(
        f"exported {esc(summary['array'])} ({shape}, {summary['axes']}) of {esc(summary['store'])} as "
        f"{summary['format']} ({esc(known)})\nwrote {esc(summary['out'])}",
        highlight=False,
    )
