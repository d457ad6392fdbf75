"""Copy one scan from its source file(s) into a new zarr store, a chunk of frames at a time.

The store is built under a hidden temporary name beside its final place and renamed only once every
frame is written and the ingest stage is marked complete, so an interrupted ingest never leaves a
store that looks usable. Sources are opened read-only and never touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import zarr

from orpam_pipeline import __version__
from orpam_pipeline.errors import ScanError, StoreError
from orpam_pipeline.geometry import FirstLine, fixed_parity
from orpam_pipeline.io import ScanSource
from orpam_pipeline.store.layout import (
    FRAMES,
    STORE_NAME,
    auto_chunk_frames,
    create_frame_array,
    mark_stage,
    now_iso,
    remove_tree,
)

ScanLines = Literal["columns", "rows"]
MIN_LINES = 2
MIN_LINE_LENGTH = 4


def _partial_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


def _clean_stale_partials(target: Path) -> None:
    for stale in target.parent.glob(f".{target.name}.partial-*"):
        remove_tree(stale)


def ingest_scan(
    source: ScanSource,
    out_dir: Path,
    *,
    scan_lines: ScanLines = "columns",
    first_line: FirstLine = "forward",
    chunk_frames: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``source`` to ``out_dir/<scan name>/scan.zarr`` and return the store path."""
    fixed_parity(first_line)
    if scan_lines not in ("columns", "rows"):
        raise ValueError(f"scan_lines must be 'columns' or 'rows', not {scan_lines!r}")
    target = Path(out_dir) / source.name / STORE_NAME
    if target.exists() and not overwrite:
        raise StoreError(target, "store already exists; pass --overwrite to replace it")

    n_frames, rows, cols = source.shape
    height, width = (rows, cols) if scan_lines == "columns" else (cols, rows)
    where = source.paths[0] if len(source.paths) == 1 else source.paths[0].parent
    if width < MIN_LINES or height < MIN_LINE_LENGTH:
        raise ScanError(
            where,
            f"frames of {height}x{width} (Y x X) are too small: need at least {MIN_LINE_LENGTH} rows and "
            f"{MIN_LINES} lines (check --scan-lines)",
        )
    chunk = int(chunk_frames or auto_chunk_frames((height, width), n_frames))
    chunk = max(1, min(chunk, n_frames))

    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_partials(target)
    partial = _partial_path(target)
    try:
        group = zarr.open_group(partial, mode="w")
        group.attrs.update(
            {
                "scan": source.name,
                "source": source.provenance(),
                "conventions": {
                    "scan_lines": scan_lines,
                    "first_line": first_line,
                    "fast_axis": "y",
                    "frame_axes": ["t", "y", "x"],
                    "transposed_on_ingest": scan_lines == "rows",
                },
                "package_version": __version__,
                "created": now_iso(),
            }
        )
        mark_stage(group, "ingest", False)
        frames = create_frame_array(group, FRAMES, (n_frames, height, width), chunk)
        done = 0
        for start in range(0, n_frames, chunk):
            stop = min(start + chunk, n_frames)
            block = source.read(start, stop)
            if scan_lines == "rows":
                block = block.transpose(0, 2, 1)
            frames[start:stop] = block
            done += 1
            if progress is not None:
                progress(done, -(-n_frames // chunk))
        mark_stage(group, "ingest", True, frames=n_frames, chunk_frames=chunk)
        if target.exists():
            remove_tree(target)
        partial.rename(target)
    except BaseException:
        remove_tree(partial)
        raise
    return target
