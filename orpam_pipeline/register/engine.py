"""Streams a registration method over a scan store with dask, one block of whole frames at a time.

The engine reads ``frames`` lazily, optionally runs the method's cheap first pass (a per-frame
reduction gathered into a small table), then maps the method over the blocks and stores
``registered_even``, ``merged`` and (when the method reports one) ``displacement`` into pre-created
arrays that share the frame chunking. Nothing ever holds the whole sequence in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.callbacks import Callback

from orpam_pipeline import __version__
from orpam_pipeline.geometry import interleave, moving_width, split
from orpam_pipeline.register.base import RegistrationMethod
from orpam_pipeline.store.layout import (
    DISPLACEMENT,
    FRAMES,
    MERGED,
    REGISTERED_EVEN,
    create_frame_array,
    mark_stage,
    now_iso,
    open_scan_store,
)

ProgressFn = Callable[[str, int, int], None]
"""Called as ``progress(stage, blocks_done, blocks_total)``."""


class _BlockProgress(Callback):
    """Counts finished tasks of one named layer and reports them."""

    def __init__(self, layer: str, stage: str, total: int, report: ProgressFn) -> None:
        super().__init__()
        self.layer, self.stage, self.total, self.report = layer, stage, total, report
        self.done = 0

    def _start(self, dsk: Any) -> None:
        self.report(self.stage, 0, self.total)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if isinstance(name, str) and name.startswith(self.layer):
            self.done += 1
            self.report(self.stage, self.done, self.total)


def _run(stage: str, layer: str, total: int, progress: ProgressFn | None, fn: Callable[[], Any]) -> Any:
    if progress is None:
        return fn()
    with _BlockProgress(layer, stage, total, progress):
        return fn()


def _measure_block(block: np.ndarray, method: RegistrationMethod, first_line: str) -> np.ndarray:
    odd, even = split(block, first_line)
    return method.measure(odd, even).astype(np.float64)


def _apply_block(
    block: np.ndarray, plan_rows: np.ndarray | None, method: RegistrationMethod, first_line: str, width: int
) -> np.ndarray:
    """Run the method on a block and pack (registered_even | displacement) along the last axis."""
    odd, even = split(block, first_line)
    reg, disp = method.apply(odd, even, plan_rows)
    reg = np.asarray(reg, dtype=np.float32)
    if method.displacement == "none":
        return reg
    disp = np.asarray(disp, dtype=np.float32)
    if method.displacement == "profile":
        disp = disp[..., None]
    return np.concatenate([reg, disp], axis=-1)


def _merge_block(block: np.ndarray, reg: np.ndarray, first_line: str) -> np.ndarray:
    odd, _ = split(block, first_line)
    return interleave(odd, reg, first_line).astype(np.float32)


def register_store(
    path: Path,
    method: RegistrationMethod,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Register every frame of the store at ``path`` with ``method``; returns the recorded attributes."""
    group = open_scan_store(path, mode="r+")
    frames_z = group[FRAMES]
    n_frames, height, width = frames_z.shape
    first_line = group.attrs["conventions"]["first_line"]
    n_moving = moving_width(width, first_line)
    method.configure(height, width, first_line)
    frames = da.from_zarr(frames_z)
    tchunks = frames.chunks[0]
    n_blocks = len(tchunks)
    started = time.perf_counter()
    mark_stage(group, "register", False, method=method.name)

    plan = None
    plan_da = None
    with dask.config.set(scheduler="threads"):
        if method.plan_width:
            stats = frames.map_blocks(
                _measure_block,
                method,
                first_line,
                dtype=np.float64,
                chunks=(tchunks, (method.plan_width,)),
                drop_axis=2,
                name=f"orpam-measure-{method.name}-{dask.base.tokenize(frames, method.params())}",
            )
            stats_np = _run("measure", "orpam-measure", n_blocks, progress, stats.compute)
            plan = method.plan(stats_np)
            plan_da = da.from_array(plan, chunks=(tchunks, plan.shape[1]))

        out_width = n_moving + {"none": 0, "profile": 1, "field": n_moving}[method.displacement]
        apply_name = f"orpam-apply-{method.name}-{dask.base.tokenize(frames, plan, method.params())}"
        if plan_da is None:
            packed = frames.map_blocks(
                _apply_block,
                None,
                method,
                first_line,
                width,
                dtype=np.float32,
                chunks=(tchunks, (height,), (out_width,)),
                name=apply_name,
            )
        else:
            packed = da.blockwise(
                _apply_block, "tyz",
                frames, "tyx",
                plan_da, "tk",
                method=method, first_line=first_line, width=width,
                new_axes={"z": out_width}, concatenate=True, dtype=np.float32, name=apply_name,
            )  # fmt: skip
        reg = packed[..., :n_moving]
        merged = da.map_blocks(_merge_block, frames, reg, first_line, dtype=np.float32, chunks=frames.chunks)

        chunk_frames = int(frames_z.chunks[0])
        sources = [reg, merged]
        targets = [
            create_frame_array(group, REGISTERED_EVEN, (n_frames, height, n_moving), chunk_frames, overwrite=True),
            create_frame_array(group, MERGED, (n_frames, height, width), chunk_frames, overwrite=True),
        ]
        if method.displacement == "profile":
            sources.append(packed[..., n_moving])
            targets.append(
                create_frame_array(group, DISPLACEMENT, (n_frames, height), chunk_frames, ("t", "y"), True)
            )
        elif method.displacement == "field":
            sources.append(packed[..., n_moving:])
            targets.append(create_frame_array(group, DISPLACEMENT, (n_frames, height, n_moving), chunk_frames, overwrite=True))
        elif DISPLACEMENT in group:
            del group[DISPLACEMENT]
        _run("register", "orpam-apply", n_blocks, progress, lambda: da.store(sources, targets, lock=False))

    info = {
        "method": method.name,
        "kind": method.kind,
        "params": method.params(),
        "displacement": method.displacement,
        "displacement_convention": "registered_even[t, y, j] = even[t, y + displacement[t, y], j]",
        "plan": method.plan_summary(plan) if plan is not None else {},
        "package_version": __version__,
        "finished": now_iso(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    group.attrs["registration"] = info
    mark_stage(group, "register", True, method=method.name)
    return info
