"""``orpam repair``: recompute exactly the damaged parts of a store, then check it again.

Damage becomes an interrupted run: damaged array metadata is rewritten (its chunks are untouched),
damaged chunk files are removed, their chunk markers left out, and the stages that wrote them marked
incomplete, so the ordinary resume machinery recomputes those chunks and nothing else. A damaged
``frames`` or ``depth_map`` chunk (both are written by ingest) is read again from the source (refused
if the source changed), which rewrites that chunk of both; the registered chunks of damaged frames
are recomputed from them; the report is rewritten last. The result is bit-identical to an undamaged
run, because every stage is chunk-invariant and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zarr

from orpam_pipeline.errors import OrpamError, StoreError
from orpam_pipeline.io import ReadSpec, ScanEntry, open_scan
from orpam_pipeline.register import accepted_settings, get_method
from orpam_pipeline.register.engine import ProgressFn, register
from orpam_pipeline.report.scan_report import write_report
from orpam_pipeline.store.damage import (
    INGEST_ARRAYS,
    base_name,
    expected_arrays,
    expected_images,
    find_damage,
    image_metadata_bytes,
    metadata_bytes,
)
from orpam_pipeline.store.files import atomic_write
from orpam_pipeline.store.ingest import ingest
from orpam_pipeline.store.layout import FRAMES, ZARR_JSON, check_layout, mark_stage, resolve_store_path
from orpam_pipeline.store.lock import store_lock
from orpam_pipeline.store.resume import ChunkMarkers
from orpam_pipeline.store.stage import recorded_chunk_frames, stage_record


@dataclass
class RepairResult:
    """What was found and what was recomputed in one store."""

    store: Path
    problems: list[str] = field(default_factory=list)
    metadata_rewritten: list[str] = field(default_factory=list)
    chunks_recomputed: dict[str, list[int]] = field(default_factory=dict)
    remaining: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.remaining

    def summary(self) -> dict[str, Any]:
        return {"store": str(self.store), "ok": self.ok, "problems": self.problems,
                "metadata_rewritten": self.metadata_rewritten, "chunks_recomputed": self.chunks_recomputed,
                "remaining": self.remaining}  # fmt: skip


def _remove_chunk(store: Path, name: str, index: int) -> None:
    array = zarr.open_array(store / name, mode="r")
    coords = (index,) + (0,) * (array.ndim - 1)
    (store / name / array.metadata.encode_chunk_key(coords)).unlink(missing_ok=True)


def _reopen_stage(group: zarr.Group, store: Path, stage: str, bad: set[int]) -> None:
    """Mark ``stage`` incomplete with every chunk but ``bad`` marked done (a resumable state)."""
    record = stage_record(group, stage) or {}
    markers = ChunkMarkers(store, stage)
    markers.clear()
    for index in range(int(record["chunks"])):
        if index not in bad:
            markers.mark(index)
    mark_stage(group, stage, False, **{k: v for k, v in record.items() if k not in ("complete", "updated")})


def _reingest(store: Path, group: zarr.Group) -> None:
    """Continue the reopened ingest stage from the recorded source and reading options."""
    record = stage_record(group, "ingest") or {}
    params = record.get("params", {})
    provenance = dict(group.attrs.get("source", {}))
    paths = tuple(Path(f["path"]) for f in provenance.get("files", []))
    entry = ScanEntry(store.parent.name, paths)
    with open_scan(entry, spec=ReadSpec.from_params(params)) as source:
        ingest(source, store.parent.parent, scan_lines=params.get("scan_lines", "columns"),
               first_line=params.get("first_line", "forward"), chunk_frames=recorded_chunk_frames(record),
               reverse_backward=bool(params.get("reverse_backward", False)), scale=params.get("scale"),
               levels=int(params.get("levels", 0)))  # fmt: skip


def _recorded_method(group: zarr.Group) -> Any:
    info = dict(group.attrs.get("registration", {}))
    name = info.get("method")
    if name is None:
        raise StoreError(Path("."), "no registration recorded")
    return get_method(name, **accepted_settings(name, dict(info.get("params", {}))))


def repair_store(path: Path, progress: ProgressFn | None = None) -> RepairResult:
    """Find the damage of the store at ``path`` and recompute exactly what it affects."""
    store = resolve_store_path(path)
    result = RepairResult(store)
    with store_lock(store.parent):
        try:
            group = zarr.open_group(store, mode="r+")
        except Exception as exc:  # zarr raises several types for damaged group metadata
            raise StoreError(store, f"the group metadata ({ZARR_JSON}) is damaged ({type(exc).__name__}); it holds the "
                                    "provenance and cannot be recomputed: rerun `orpam run` with --overwrite") from None  # fmt: skip
        check_layout(group, store)
        damage = find_damage(store, group)
        result.problems = damage.problems()
        if damage.ok:
            return result
        expected, images = expected_arrays(group), expected_images(group)
        for name in damage.metadata:
            rebuilt = metadata_bytes(expected[name]) if name in expected else image_metadata_bytes(group, name, images[name])
            atomic_write(store / name / ZARR_JSON, rebuilt)
            result.metadata_rewritten.append(name)
        damage = find_damage(store, group)
        bad_frames = {c.chunk for c in damage.chunks if base_name(c.array) in INGEST_ARRAYS}
        bad_registered = {c.chunk for c in damage.chunks if base_name(c.array) not in INGEST_ARRAYS}
        bad_registered |= {c.chunk for c in damage.chunks if base_name(c.array) == FRAMES}
        ingested = [name for name in expected if base_name(name) in INGEST_ARRAYS]
        registered = [name for name in expected if base_name(name) not in INGEST_ARRAYS]
        if not registered:
            bad_registered = set()
        for index in bad_frames:
            for name in ingested:
                _remove_chunk(store, name, index)
        for index in bad_registered:
            for name in registered:
                _remove_chunk(store, name, index)
        if bad_frames:
            _reopen_stage(group, store, "ingest", bad_frames)
        if bad_registered:
            _reopen_stage(group, store, "register", bad_registered)
        stages = dict(group.attrs.get("stages", {}))
        stages.pop("report", None)
        group.attrs["stages"] = stages
        if bad_frames:
            _reingest(store, group)
        if registered:
            register(store, _recorded_method(group), progress=progress, overwrite=False)
            write_report(store)
        result.chunks_recomputed = {k: sorted(v) for k, v in (("ingest", bad_frames), ("register", bad_registered)) if v}
        result.remaining = find_damage(store, zarr.open_group(store, mode="r")).problems()
    return result


def repair_outputs(path: Path, progress: ProgressFn | None = None) -> list[RepairResult | OrpamError]:
    """:func:`repair_store` for every store under an output folder; a store that cannot be repaired is
    returned as its one-line error and the others go on."""
    from orpam_pipeline.store.status import find_stores

    stores = find_stores(Path(path))
    if not stores:
        raise OrpamError(f"{path}: no scan stores found")
    out: list[RepairResult | OrpamError] = []
    for store in stores:
        try:
            out.append(repair_store(store, progress))
        except OrpamError as exc:
            out.append(exc)
    return out
