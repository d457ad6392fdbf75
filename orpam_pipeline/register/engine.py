"""Streams a registration method over a scan store with dask, one block of whole frames at a time.

The engine reads ``frames`` lazily, optionally runs the method's cheap first pass (a per-frame
reduction gathered into a small table), then registers the blocks as independent dask tasks: each
task reads its frames, writes its chunk of ``registered_even``, ``merged`` and (when the method
reports one) ``displacement``, and only then marks the chunk done. Nothing ever holds the whole
sequence in memory. The stage is resumable: the first-pass table is kept beside the store, chunks
marked done are skipped on a rerun with the same parameter fingerprint, and a rerun with different
parameters is refused unless ``overwrite``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
import zarr
from dask.callbacks import Callback

from orpam_pipeline import __version__
from orpam_pipeline.errors import StoreError
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
    resolve_store_path,
)
from orpam_pipeline.store.lock import store_lock
from orpam_pipeline.store.resume import ChunkMarkers, clean_strays, describe_mismatch, fingerprint

ProgressFn = Callable[[str, int, int], None]
"""Called as ``progress(stage, blocks_done, blocks_total)``."""


class _BlockProgress(Callback):
    """Counts finished tasks of one named layer and reports them."""

    def __init__(self, layer: str, stage: str, total: int, report: ProgressFn, done: int = 0) -> None:
        super().__init__()
        self.layer, self.stage, self.total, self.report = layer, stage, total, report
        self.done = done

    def _start(self, dsk: Any) -> None:
        self.report(self.stage, self.done, self.total)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if isinstance(name, str) and name.startswith(self.layer):
            self.done += 1
            self.report(self.stage, self.done, self.total)


def _run(
    stage: str, layer: str, total: int, progress: ProgressFn | None, fn: Callable[[], Any], done: int = 0
) -> Any:
    if progress is None:
        return fn()
    with _BlockProgress(layer, stage, total, progress, done):
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


RegisterState = Literal["created", "resumed", "complete"]


@dataclass(frozen=True)
class RegisterResult:
    """The recorded registration attributes and what this call did."""

    info: dict[str, Any]
    state: RegisterState
    chunks: int
    chunks_written: int


def register_params(method: RegistrationMethod, group: zarr.Group) -> dict[str, Any]:
    """What the registered arrays depend on: the method and its parameters, conventions, chunking, frames."""
    params = dict(method.params())
    if "checkpoint_sha256" in params:
        params.pop("checkpoint", None)
    frames_z = group[FRAMES]
    ingest = dict(group.attrs.get("stages", {})).get("ingest", {})
    return {
        "method": method.name,
        "params": params,
        "first_line": group.attrs["conventions"]["first_line"],
        "shape": [int(s) for s in frames_z.shape],
        "chunk_frames": int(frames_z.chunks[0]),
        "ingest": ingest.get("fingerprint"),
    }


@dataclass
class _ChunkWriter:
    """Registers chunk ``index`` and writes every output array of it, then marks it done."""

    frames: zarr.Array
    targets: dict[str, zarr.Array]
    plan: np.ndarray | None
    method: RegistrationMethod
    first_line: str
    width: int
    n_moving: int
    chunk: int
    markers: ChunkMarkers

    def __call__(self, index: int) -> int:
        start = index * self.chunk
        stop = min(start + self.chunk, self.frames.shape[0])
        block = self.frames[start:stop]
        rows = None if self.plan is None else self.plan[start:stop]
        packed = _apply_block(block, rows, self.method, self.first_line, self.width)
        reg = packed[..., : self.n_moving]
        outputs = {REGISTERED_EVEN: reg, MERGED: _merge_block(block, reg, self.first_line)}
        if self.method.displacement == "profile":
            outputs[DISPLACEMENT] = packed[..., self.n_moving]
        elif self.method.displacement == "field":
            outputs[DISPLACEMENT] = packed[..., self.n_moving :]
        for name, data in outputs.items():
            write_chunk(self.targets[name], start, stop, data)
        self.markers.mark(index)
        return index


def write_chunk(array: zarr.Array, start: int, stop: int, data: np.ndarray) -> None:
    """Write frames ``start:stop`` of one output array (a whole chunk: one atomic zarr file write)."""
    array[start:stop] = data


def _output_shapes(method: RegistrationMethod, n_frames: int, height: int, width: int, n_moving: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {
        REGISTERED_EVEN: (n_frames, height, n_moving),
        MERGED: (n_frames, height, width),
    }
    if method.displacement == "profile":
        shapes[DISPLACEMENT] = (n_frames, height)
    elif method.displacement == "field":
        shapes[DISPLACEMENT] = (n_frames, height, n_moving)
    return shapes


def _targets_intact(group: zarr.Group, shapes: dict[str, tuple[int, ...]], chunk: int) -> bool:
    for name, shape in shapes.items():
        if name not in group:
            return False
        arr = group[name]
        if tuple(arr.shape) != shape or int(arr.chunks[0]) != chunk:
            return False
    return True


def _create_targets(group: zarr.Group, shapes: dict[str, tuple[int, ...]], chunk: int) -> None:
    for name, shape in shapes.items():
        dims = ("t", "y") if len(shape) == 2 else ("t", "y", "x")
        create_frame_array(group, name, shape, chunk, dims, overwrite=True)
    if DISPLACEMENT not in shapes and DISPLACEMENT in group:
        del group[DISPLACEMENT]


def _stage_decision(group: zarr.Group, fp: str, params: dict[str, Any], store: Path, overwrite: bool) -> str:
    """``complete``, ``resume`` or ``fresh`` for the register stage; refuses a different one unless ``overwrite``."""
    record = dict(group.attrs.get("stages", {})).get("register")
    if not record:
        return "fresh"
    if record.get("fingerprint") == fp:
        if record.get("complete") and "registration" in group.attrs:
            return "complete"
        return "resume"
    if not overwrite:
        raise StoreError(
            store,
            f"already registered with different parameters ({describe_mismatch(record.get('params'), params)}); "
            "pass --overwrite to replace the registration",
        )
    return "fresh"


def register(
    path: Path,
    method: RegistrationMethod,
    progress: ProgressFn | None = None,
    *,
    overwrite: bool = True,
) -> RegisterResult:
    """Register every frame of the store at ``path`` with ``method``, continuing an interrupted run.

    A store already registered with the same fingerprint is left as is (state ``complete``); one
    registered with different parameters is replaced when ``overwrite`` is true, refused otherwise.
    """
    store = resolve_store_path(path)
    with store_lock(store.parent):
        group = open_scan_store(store, mode="r+")
        clean_strays(store)
        frames_z = group[FRAMES]
        n_frames, height, width = frames_z.shape
        first_line = group.attrs["conventions"]["first_line"]
        n_moving = moving_width(width, first_line)
        method.configure(height, width, first_line)
        chunk = int(frames_z.chunks[0])
        n_blocks = -(-n_frames // chunk)
        params = register_params(method, group)
        fp = fingerprint(params)
        markers = ChunkMarkers(store, "register")
        decision = _stage_decision(group, fp, params, store, overwrite)
        if decision == "complete":
            if progress is not None:
                if method.plan_width:
                    progress("measure", n_blocks, n_blocks)
                progress("register", n_blocks, n_blocks)
            markers.clear()
            return RegisterResult(dict(group.attrs["registration"]), "complete", n_blocks, 0)

        shapes = _output_shapes(method, n_frames, height, width, n_moving)
        if decision == "resume" and not _targets_intact(group, shapes, chunk):
            decision = "fresh"
        if decision == "fresh":
            markers.clear()
            stages = dict(group.attrs.get("stages", {}))
            stages.pop("report", None)
            group.attrs["stages"] = stages
            mark_stage(group, "register", False, method=method.name, fingerprint=fp, params=params, chunks=n_blocks)
            _create_targets(group, shapes, chunk)
        started = time.perf_counter()
        already = len(markers.done())
        try:
            info = _register_chunks(group, store, method, markers, progress, first_line, n_moving, decision == "resume")
        except OSError as exc:
            raise StoreError(
                store, f"writing registered chunks failed ({exc.strerror or exc}); fix the cause and rerun to continue"
            ) from None
        info["seconds"] = round(time.perf_counter() - started, 3)
        group.attrs["registration"] = info
        mark_stage(group, "register", True, method=method.name, fingerprint=fp, params=params, chunks=n_blocks)
        markers.clear()
    return RegisterResult(info, "resumed" if decision == "resume" else "created", n_blocks, n_blocks - already)


def _register_chunks(
    group: zarr.Group,
    store: Path,
    method: RegistrationMethod,
    markers: ChunkMarkers,
    progress: ProgressFn | None,
    first_line: str,
    n_moving: int,
    resume: bool,
) -> dict[str, Any]:
    """First pass (or its saved table), then every chunk not yet marked done; returns the attributes."""
    frames_z = group[FRAMES]
    n_frames, height, width = frames_z.shape
    chunk = int(frames_z.chunks[0])
    n_blocks = -(-n_frames // chunk)
    plan = None
    with dask.config.set(scheduler="threads"):
        if method.plan_width:
            stats_np = markers.load_array("measure") if resume else None
            if stats_np is None or stats_np.shape != (n_frames, method.plan_width):
                frames = da.from_zarr(frames_z)
                stats = frames.map_blocks(
                    _measure_block,
                    method,
                    first_line,
                    dtype=np.float64,
                    chunks=(frames.chunks[0], (method.plan_width,)),
                    drop_axis=2,
                    name=f"orpam-measure-{method.name}-{dask.base.tokenize(frames, method.params())}",
                )
                stats_np = _run("measure", "orpam-measure", n_blocks, progress, stats.compute)
                markers.save_array("measure", stats_np)
            elif progress is not None:
                progress("measure", n_blocks, n_blocks)
            plan = method.plan(stats_np)

        done = markers.done()
        writer = _ChunkWriter(
            frames_z, {name: group[name] for name in _output_shapes(method, n_frames, height, width, n_moving)},
            plan, method, first_line, width, n_moving, chunk, markers,
        )  # fmt: skip
        token = uuid.uuid4().hex
        tasks = [
            dask.delayed(writer, pure=False)(i, dask_key_name=f"orpam-apply-{token}-{i}")
            for i in range(n_blocks)
            if i not in done
        ]
        _run("register", "orpam-apply", n_blocks, progress, lambda: dask.compute(*tasks), done=len(done))

    return {
        "method": method.name,
        "kind": method.kind,
        "params": method.params(),
        "displacement": method.displacement,
        "displacement_convention": "registered_even[t, y, j] = even[t, y + displacement[t, y], j]",
        "plan": method.plan_summary(plan) if plan is not None else {},
        "package_version": __version__,
        "finished": now_iso(),
    }


def register_store(
    path: Path,
    method: RegistrationMethod,
    progress: ProgressFn | None = None,
    *,
    overwrite: bool = True,
) -> dict[str, Any]:
    """Register every frame of the store at ``path`` (see :func:`register`); returns the recorded attributes."""
    return register(path, method, progress, overwrite=overwrite).info
