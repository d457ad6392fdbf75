"""Streams a registration method over a scan store with dask, one block of whole frames at a time.

The engine reads ``frames`` lazily, optionally runs the method's cheap first pass (a per-frame
reduction gathered into a small table), then registers the blocks as independent dask tasks: each
task reads its frames, writes its chunk of ``registered_even``, ``merged`` and (when the method
reports one) ``displacement``, and only then marks the chunk done. Nothing ever holds the whole
sequence in memory. The stage is resumable (:mod:`orpam_pipeline.store.stage`): the first-pass table
is kept beside the store, chunks marked done are skipped on a rerun with the same parameter
fingerprint, and a rerun with different parameters is refused unless ``overwrite``.

What a method reports (no displacement, a profile or a field) may depend on its plan, so the
``displacement`` array is created, or replaced when its shape no longer fits, only after the plan;
``registered_even`` and ``merged`` are created before the first pass.

The tasks run wherever :mod:`orpam_pipeline.scheduling` says (local threads or a ``dask.distributed``
cluster). They carry the store's absolute path, the chunk index, the chunk's plan rows and the small
method object, never frames or model weights: workers read and write the store themselves. A learned
method's model is loaded once per worker by a worker plugin, and its chunk tasks ask for the
resources the method names (``GPU``) when the cluster advertises them.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr

from orpam_pipeline import __version__
from orpam_pipeline.scheduling import ProgressFn, active_client, make_tasks, placement, run_tasks
from orpam_pipeline.errors import OrpamError, StoreError
from orpam_pipeline.geometry import interleave, moving_width, split
from orpam_pipeline.register.base import DisplacementKind, RegistrationMethod
from orpam_pipeline.report.chunk_scores import (
    ChunkScores,
    chunk_of_cache,
    chunk_samples,
    clear_scores,
    load_unregistered,
    save_scores,
    score_arrays,
    scores_dir,
    unregistered_cached,
)
from orpam_pipeline.store.layout import (
    DISPLACEMENT,
    FRAMES,
    MERGED,
    REGISTERED_EVEN,
    create_frame_array,
    delete_array,
    frames_per_chunk,
    get_array,
    has_array,
    image_levels,
    mark_stage,
    now_iso,
    open_scan_store,
    read_frames,
    resolve_store_path,
    write_image,
)
from orpam_pipeline.store.lock import store_lock
from orpam_pipeline.store.resume import ChunkMarkers, clean_strays, fingerprint
from orpam_pipeline.store.stage import decide, stage_record

def _measure_block(block: np.ndarray, method: RegistrationMethod, first_line: str) -> np.ndarray:
    odd, even = split(block, first_line)
    return method.measure(odd, even).astype(np.float64)


def _apply_block(
    block: np.ndarray, plan_rows: np.ndarray | None, method: RegistrationMethod, first_line: str, kind: DisplacementKind
) -> np.ndarray:
    """Run the method on a block and pack (registered_even | displacement of ``kind``) along the last axis."""
    odd, even = split(block, first_line)
    reg, disp = method.apply(odd, even, plan_rows)
    reg = np.asarray(reg, dtype=np.float32)
    if kind == "none":
        return reg
    disp = np.asarray(disp, dtype=np.float32)
    if kind == "profile":
        disp = disp[..., None]
    return np.concatenate([reg, disp], axis=-1)


def _merge_block(block: np.ndarray, reg: np.ndarray, first_line: str) -> np.ndarray:
    odd, _ = split(block, first_line)
    return interleave(odd, reg, first_line).astype(np.float32)


RegisterState = Literal["created", "resumed", "complete"]

_CONVENTIONS: dict[str, str] = {
    "none": "registered_even[t, y, j] = even[t, y + displacement[t, y], j]",
    "profile": "registered_even[t, y, j] = even[t, y + displacement[t, y], j]",
    "field": "registered_even[t, y, j] = even[t, y + displacement[t, y, j], j]",
}
"""The displacement convention (docs/conventions.md) recorded with each kind of displacement."""


@dataclass(frozen=True)
class RegisterResult:
    """The recorded registration attributes and what this call did."""

    info: dict[str, Any]
    state: RegisterState
    chunks: int
    chunks_written: int


def register_params(method: RegistrationMethod, group: zarr.Group) -> dict[str, Any]:
    """What the registered arrays depend on: the method and its parameters, conventions, frames (not the chunking)."""
    params = dict(method.params())
    if "checkpoint_sha256" in params:
        params.pop("checkpoint", None)
    frames_z = get_array(group, FRAMES)
    ingest = dict(group.attrs.get("stages", {})).get("ingest", {})
    return {
        "method": method.name,
        "params": params,
        "first_line": group.attrs["conventions"]["first_line"],
        "shape": [int(s) for s in frames_z.shape],
        "ingest": ingest.get("fingerprint"),
    }


def _open_group(store: str, mode: Literal["r", "r+"]) -> zarr.Group:
    return zarr.open_group(store, mode=mode)


@dataclass(frozen=True)
class _ChunkMeasurer:
    """First pass over chunk ``index``: reads its frames from the store path, returns ``(t, plan_width)``."""

    store: str
    method: RegistrationMethod
    first_line: str
    chunk: int

    def __call__(self, index: int) -> np.ndarray:
        frames = get_array(_open_group(self.store, "r"), FRAMES)
        start = index * self.chunk
        return _measure_block(read_frames(frames, start, min(start + self.chunk, frames.shape[0])), self.method,
                              self.first_line)  # fmt: skip


@dataclass(frozen=True)
class _ChunkWriter:
    """Registers chunk ``index`` and writes every output array of it, then marks it done.

    It holds the store's absolute path and small settings only (the tasks of a cluster carry it), and
    opens the arrays where it runs; ``plan_rows`` are this chunk's rows of the plan, ``displacement``
    what the method reports for that plan.
    """

    store: str
    outputs: tuple[str, ...]
    method: RegistrationMethod
    first_line: str
    n_moving: int
    chunk: int
    markers: ChunkMarkers
    displacement: DisplacementKind
    scores: str | None = None
    """Folder where the report's metrics of each chunk are saved (``report.chunk_scores``); None: not scored here."""
    unregistered: bool = True
    """Whether those include the metrics of the frames as ingested (not yet cached in the store)."""

    def __call__(self, index: int, plan_rows: np.ndarray | None) -> int:
        group = _open_group(self.store, "r+")
        frames = get_array(group, FRAMES)
        start = index * self.chunk
        stop = min(start + self.chunk, frames.shape[0])
        block = read_frames(frames, start, stop)
        packed = _apply_block(block, plan_rows, self.method, self.first_line, self.displacement)
        reg = packed[..., : self.n_moving]
        outputs = {REGISTERED_EVEN: reg, MERGED: _merge_block(block, reg, self.first_line)}
        if self.displacement == "profile":
            outputs[DISPLACEMENT] = packed[..., self.n_moving]
        elif self.displacement == "field":
            outputs[DISPLACEMENT] = packed[..., self.n_moving :]
        for name in self.outputs:
            write_image(image_levels(group, name), start, stop, outputs[name])
        if self.scores is not None:
            known = self.unregistered or self._cached(group, block, reg, start, stop)
            scores = score_arrays(block, reg, outputs[MERGED], self.first_line, known)
            scores.samples = chunk_samples(block, outputs[MERGED], start, int(frames.shape[0]))
            save_scores(Path(self.scores), index, scores)
        self.markers.mark(index)
        return index

    def _cached(self, group: zarr.Group, block: np.ndarray, reg: np.ndarray, start: int, stop: int) -> ChunkScores | bool:
        """The cached metrics of this chunk as ingested where the method left its lines as they were (``none``):
        they are then the registered metrics too, and nothing is scored twice."""
        if not np.array_equal(reg, split(block, self.first_line)[1]):
            return False
        cache = load_unregistered(group, int(get_array(group, FRAMES).shape[0]))
        return False if cache is None else chunk_of_cache(cache, start, stop, block, self.first_line)


def _image_shapes(n_frames: int, height: int, width: int, n_moving: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the arrays every method writes, known before any plan."""
    return {REGISTERED_EVEN: (n_frames, height, n_moving), MERGED: (n_frames, height, width)}


def _displacement_shape(kind: DisplacementKind, n_frames: int, height: int, n_moving: int) -> tuple[int, ...] | None:
    """Shape of the ``displacement`` array for what the method reports (None: no array)."""
    if kind == "profile":
        return (n_frames, height)
    if kind == "field":
        return (n_frames, height, n_moving)
    return None


def _targets_intact(group: zarr.Group, shapes: dict[str, tuple[int, ...]], chunk: int) -> bool:
    for name, shape in shapes.items():
        if not has_array(group, name):
            return False
        arr = get_array(group, name)
        if tuple(arr.shape) != shape or frames_per_chunk(arr) != chunk:
            return False
    return True


def _create_targets(group: zarr.Group, shapes: dict[str, tuple[int, ...]], chunk: int) -> None:
    levels = int((dict(group.attrs.get("stages", {})).get("ingest") or {}).get("levels", 0))
    for name, shape in shapes.items():
        dims = ("t", "y") if len(shape) == 2 else ("t", "y", "x")
        create_frame_array(group, name, shape, chunk, dims, overwrite=True, levels=levels)
    if DISPLACEMENT not in shapes:
        delete_array(group, DISPLACEMENT)


def _prepare_displacement(group: zarr.Group, shape: tuple[int, ...] | None, chunk: int, markers: ChunkMarkers,
                          stats: np.ndarray | None) -> None:  # fmt: skip
    """Make the ``displacement`` array fit what the plan reports: keep, create, replace or remove it.

    Replacing it loses what finished chunks wrote there, so their markers are cleared (the first-pass
    table is saved again) and every chunk is registered anew.
    """
    if shape is None:
        delete_array(group, DISPLACEMENT)
        return
    if _targets_intact(group, {DISPLACEMENT: shape}, chunk):
        return
    if markers.count():
        markers.clear()
        if stats is not None:
            markers.save_array("measure", stats)
    create_frame_array(group, DISPLACEMENT, shape, chunk, ("t", "y") if len(shape) == 2 else ("t", "y", "x"),
                       overwrite=True)  # fmt: skip


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
        n_frames, height, width = get_array(group, FRAMES).shape
        first_line = group.attrs["conventions"]["first_line"]
        n_moving = moving_width(width, first_line)
        method.configure(height, width, first_line)
        chunk = frames_per_chunk(group)
        n_blocks = -(-n_frames // chunk)
        params = register_params(method, group)
        fp = fingerprint(params)
        markers = ChunkMarkers(store, "register")
        decision = decide("register", stage_record(group, "register"), fp, params, overwrite=overwrite, path=store,
                          chunk_frames=chunk)  # fmt: skip
        if decision == "complete" and "registration" not in group.attrs:
            decision = "resume"
        if decision == "complete":
            if progress is not None:
                if method.plan_width:
                    progress("measure", n_blocks, n_blocks)
                progress("register", n_blocks, n_blocks)
            markers.clear()
            return RegisterResult(dict(group.attrs["registration"]), "complete", n_blocks, 0)

        shapes = _image_shapes(n_frames, height, width, n_moving)
        if decision == "resume" and not _targets_intact(group, shapes, chunk):
            decision = "fresh"
        if decision == "fresh":
            markers.clear()
            clear_scores(store)
            stages = dict(group.attrs.get("stages", {}))
            stages.pop("report", None)
            group.attrs["stages"] = stages
            mark_stage(group, "register", False, method=method.name, fingerprint=fp, params=params, chunk_frames=chunk,
                       chunks=n_blocks)  # fmt: skip
            _create_targets(group, shapes, chunk)
        started = time.perf_counter()
        try:
            info, already = _register_chunks(group, store, method, markers, progress, first_line, n_moving,
                                             decision == "resume", fp)  # fmt: skip
        except OSError as exc:
            raise StoreError(
                store, f"writing registered chunks failed ({exc.strerror or exc}); fix the cause and rerun to continue"
            ) from None
        info["seconds"] = round(time.perf_counter() - started, 3)
        group.attrs["registration"] = info
        mark_stage(group, "register", True, method=method.name, fingerprint=fp, params=params, chunk_frames=chunk,
                   chunks=n_blocks)  # fmt: skip
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
    register_fp: str,
) -> tuple[dict[str, Any], int]:
    """First pass (or its saved table), then every chunk not yet marked done; the attributes and the chunks skipped."""
    n_frames, height, width = get_array(group, FRAMES).shape
    chunk = frames_per_chunk(group)
    n_blocks = -(-n_frames // chunk)
    path = str(Path(store).absolute())
    token = uuid.uuid4().hex
    client = active_client()
    resources = placement(client, method.resources())
    if client is not None and method.uses_network:
        _preload(client, method, store)
    plan = stats_np = None
    if method.plan_width:
        stats_np = markers.load_array("measure") if resume else None
        if stats_np is None or stats_np.shape != (n_frames, method.plan_width):
            measurer = _ChunkMeasurer(path, method, first_line, chunk)
            tasks = make_tasks(measurer, [(i,) for i in range(n_blocks)], f"orpam-measure-{token}")
            stats_np = np.concatenate(run_tasks(tasks, "measure", f"orpam-measure-{token}", progress), axis=0)
            markers.save_array("measure", stats_np)
        elif progress is not None:
            progress("measure", n_blocks, n_blocks)
        plan = method.plan(stats_np)

    kind = method.displacement_kind()
    disp_shape = _displacement_shape(kind, n_frames, height, n_moving)
    _prepare_displacement(group, disp_shape, chunk, markers, stats_np)
    done = markers.done()
    outputs = tuple(_image_shapes(n_frames, height, width, n_moving)) + ((DISPLACEMENT,) if disp_shape else ())
    writer_markers = ChunkMarkers(Path(path), "register")
    scores = scores_dir(Path(path), register_fp)
    clear_scores(Path(path), keep=scores)
    writer = _ChunkWriter(path, outputs, method, first_line, n_moving, chunk, writer_markers, kind, str(scores),
                          not unregistered_cached(group))  # fmt: skip
    todo = [i for i in range(n_blocks) if i not in done]
    args = [(i, None if plan is None else plan[i * chunk : (i + 1) * chunk]) for i in todo]
    tasks = make_tasks(writer, args, f"orpam-apply-{token}", resources)
    run_tasks(tasks, "register", f"orpam-apply-{token}", progress, total=n_blocks, done=len(done))

    info = {
        "method": method.name,
        "kind": method.kind,
        "params": method.params(),
        "displacement": kind,
        "displacement_convention": _CONVENTIONS[kind],
        "plan": method.plan_summary(plan) if plan is not None else {},
        "package_version": __version__,
        "finished": now_iso(),
        "compute": _compute_record(client, resources),
    }
    return info, len(done)


def _compute_record(client: Any, resources: dict[str, float]) -> dict[str, Any]:
    """Where the chunks ran: ``local`` threads, or a cluster's scheduler address and worker count."""
    if client is None:
        return {"mode": "local"}
    info = client.scheduler_info(n_workers=-1)
    return {"mode": "distributed", "scheduler": info.get("address"), "workers": len(info.get("workers", {})),
            "resources": resources}  # fmt: skip


def _preload(client: Any, method: RegistrationMethod, store: Path) -> None:
    """Load the method's model once on every worker before any chunk task runs."""
    from orpam_pipeline.register.preload import preload_on_workers

    try:
        preload_on_workers(client, method)
    except OrpamError:
        raise
    except Exception as exc:
        raise StoreError(store, f"loading the {method.name} model on the dask workers failed: {type(exc).__name__}: {exc}") from None


def register_store(
    path: Path,
    method: RegistrationMethod,
    progress: ProgressFn | None = None,
    *,
    overwrite: bool = True,
) -> dict[str, Any]:
    """Register every frame of the store at ``path`` (see :func:`register`); returns the recorded attributes."""
    return register(path, method, progress, overwrite=overwrite).info
