"""One lifecycle for every stage (ingest, register, report): from its record in the group attribute
``stages``, decide whether its result is complete, can be resumed, must be made afresh, or is refused.

A record holds ``complete``, ``fingerprint`` (of the stage's parameters), ``params`` and, for chunked
stages, ``chunk_frames``. Chunking is not a parameter: results are bit-identical across chunkings, so
a complete stage is kept whatever its chunking, and a partial one chunked otherwise restarts (its chunk
markers count chunks of the old size). Stores written before this rule recorded ``chunk_frames`` among
the parameters; such records count as the same parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import zarr

from orpam_pipeline.errors import StoreError
from orpam_pipeline.store.resume import describe_mismatch, fingerprint

Decision = Literal["complete", "resume", "fresh"]
StageState = Literal["absent", "partial", "complete"]
CHUNKING = "chunk_frames"

_REFUSAL: dict[str, tuple[str, str]] = {
    "ingest": ("store already exists with different ingest parameters", "it"),
    "register": ("already registered with different parameters", "the registration"),
}
"""Per stage: how a refusal starts and what --overwrite replaces."""


def stage_record(group: zarr.Group, stage: str) -> dict[str, Any] | None:
    """The ``stages`` record of ``stage``, None when there is none."""
    record = dict(group.attrs.get("stages", {})).get(stage)
    return dict(record) if record else None


def stage_state(record: Mapping[str, Any] | None) -> StageState:
    """``absent``, ``partial`` or ``complete`` as the record says (data are not checked)."""
    if record is None:
        return "absent"
    return "complete" if record.get("complete") else "partial"


def without_chunking(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters without the ``chunk_frames`` that stores written before it left them recorded."""
    return {k: v for k, v in params.items() if k != CHUNKING}


def recorded_chunk_frames(record: Mapping[str, Any]) -> int | None:
    """The chunking a record was written with (older records keep it among their parameters)."""
    value = record.get(CHUNKING, (record.get("params") or {}).get(CHUNKING))
    return None if value is None else int(value)


def same_parameters(record: Mapping[str, Any], fp: str) -> bool:
    """Whether the record was made with the parameters of fingerprint ``fp`` (older records included)."""
    if record.get("fingerprint") == fp:
        return True
    params = record.get("params")
    return isinstance(params, Mapping) and CHUNKING in params and fingerprint(without_chunking(params)) == fp


def decide(
    stage: str,
    record: Mapping[str, Any] | None,
    fp: str,
    params: dict[str, Any],
    *,
    overwrite: bool,
    path: Path,
    chunk_frames: int | None = None,
) -> Decision:
    """``complete``, ``resume`` or ``fresh`` for ``stage`` given its record (None: nothing recorded).

    A record of other parameters is ``fresh`` with ``overwrite`` and otherwise refused with a one-line
    :class:`StoreError` naming what changed; so is a record without a fingerprint (``{}``: data exist
    but say nothing). A partial record chunked other than ``chunk_frames`` (when given) is ``fresh``.
    """
    if record is None:
        return "fresh"
    if not same_parameters(record, fp):
        if overwrite:
            return "fresh"
        if "fingerprint" not in record:
            raise StoreError(path, f"store already exists without a resumable {stage} record; pass --overwrite to replace it")
        start, what = _REFUSAL.get(stage, (f"{stage} was made with different parameters", "it"))
        old = without_chunking(record.get("params") or {}) or None
        raise StoreError(path, f"{start} ({describe_mismatch(old, params)}); pass --overwrite to replace {what}")
    if record.get("complete"):
        return "complete"
    if chunk_frames is not None and recorded_chunk_frames(record) != chunk_frames:
        return "fresh"
    return "resume"
