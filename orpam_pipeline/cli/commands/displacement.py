"""``orpam apply-displacement``: warp another array of an acquisition with a store's displacement."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orpam_pipeline.cli.console import friendly, out, progress_bars


@friendly
def apply_displacement_command(
    store: Annotated[Path, typer.Argument(metavar="STORE", help="A registered scan store holding a displacement (phase, pcregnet-flow).")],
    array_file: Annotated[
        Path, typer.Argument(metavar="ARRAY_FILE", help="Array of the same acquisition: (T, Y, X) scan, or (T, Z, Y, X) .npy/.zarr volume.")
    ],
    out_path: Annotated[Path, typer.Argument(metavar="OUT", help="Output: .npy file, or a zarr v3 array for any other name.")],
    variable: Annotated[
        str | None, typer.Option("--variable", "-v", help="Variable, dataset or zarr array name inside ARRAY_FILE.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> None:
    """Resample the backward lines of ARRAY_FILE with the displacement registered in STORE; forward lines are kept."""
    from orpam_pipeline.register.apply_displacement import apply_displacement_store

    with progress_bars() as bars:
        task = bars.add_task("apply displacement", total=None)
        summary = apply_displacement_store(
            store, array_file, out_path, variable=variable, overwrite=overwrite,
            progress=lambda done, total: bars.update(task, completed=done, total=total),
        )  # fmt: skip
    shape = "x".join(str(s) for s in summary["shape"])
    disp = "x".join(str(s) for s in summary["displacement_shape"])
    out.print(
        f"warped {summary['frames']} frames ({shape}) with the {summary['method']} displacement ({disp}) "
        f"of {summary['store']}\nwrote {summary['out']}",
        highlight=False,
    )
