"""``--keep-volume``: the depth-resolved data beside the MAP, and the same registration applied to them.

``volume (T, Zw, Y, X)`` holds, for every A-line, the depth profile whose maximum is the MAP value
(the envelope with ``--map-method envelope``), inside ``--depth-range``, oriented like the frames.
After registration ``volume_registered`` is the volume with the MAP's displacement applied to its
backward lines at every depth (``register.apply_displacement``): a corrected 3-D data set, not only
a corrected projection. Only geometry is transferred; an intensity correction belongs to the image it
was estimated on. Both are stages of their own (``volume``, ``volume_register``) with chunk markers,
one frame per chunk, so they resume like every other stage; their fingerprints are those of the
ingest and register stages they follow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr

from orpam_pipeline.errors import StoreError
from orpam_pipeline.geometry import FirstLine, fixed_parity
from orpam_pipeline.store.layout import (
    DISPLACEMENT,
    VOLUME,
    VOLUME_REGISTERED,
    create_frame_array,
    get_array,
    has_array,
    mark_stage,
    write_frames,
)
from orpam_pipeline.store.resume import ChunkMarkers
from orpam_pipeline.store.stage import decide, stage_record

DIMS = ("t", "z", "y", "x")
State = Literal["created", "resumed", "complete"]


def _flip_backward(volume: np.ndarray, first_line: FirstLine) -> np.ndarray:
    out = np.array(volume, copy=True)
    moving = 1 - fixed_parity(first_line)
    out[..., moving::2] = out[..., ::-1, moving::2]
    return out


def _target(group: zarr.Group, name: str, shape: tuple[int, ...], fresh: bool) -> zarr.Array:
    if not fresh and has_array(group, name) and tuple(get_array(group, name).shape) == shape:
        return get_array(group, name)
    return create_frame_array(group, name, shape, 1, DIMS, overwrite=True)


def _stage(group: zarr.Group, store: Path, stage: str, after: str, n_frames: int) -> tuple[str, str, ChunkMarkers]:
    """Decide the stage from the fingerprint of the stage it follows (nothing else determines it)."""
    fp = str((stage_record(group, after) or {}).get("fingerprint"))
    params = {"after": after, "fingerprint": fp}
    decision = decide(stage, stage_record(group, stage), fp, params, overwrite=True, path=store, chunk_frames=1)
    markers = ChunkMarkers(store, stage)
    if decision == "fresh":
        markers.clear()
        mark_stage(group, stage, False, fingerprint=fp, params=params, chunk_frames=1, chunks=n_frames)
    return decision, fp, markers


def write_volume(source: Any, store: Path, scan_lines: str, first_line: FirstLine, reverse_backward: bool) -> State:
    """Write ``volume`` from an open scan source that reduces a depth axis (after its ingest completed)."""
    if getattr(source, "reduction", None) is None:
        raise StoreError(store, "--keep-volume needs A-line data: name a depth axis (--axes with z, or --depth-axis)")
    group = zarr.open_group(store, mode="r+")
    n_frames = int(source.shape[0])
    decision, fp, markers = _stage(group, store, VOLUME, "ingest", n_frames)
    if decision == "complete":
        return "complete"
    first = source.read_volume(0, 1)
    _, depth, height, width = first.shape
    shape = (n_frames, depth, width, height) if scan_lines == "rows" else (n_frames, depth, height, width)
    array = _target(group, VOLUME, shape, decision == "fresh")
    done = markers.done()
    for t in range(n_frames):
        if t in done:
            continue
        block = first if t == 0 else source.read_volume(t, t + 1)
        if scan_lines == "rows":
            block = block.transpose(0, 1, 3, 2)
        if reverse_backward:
            block = _flip_backward(block, first_line)
        write_frames(array, t, t + 1, block)
        markers.mark(t)
    mark_stage(group, VOLUME, True, fingerprint=fp, params={"after": "ingest", "fingerprint": fp}, chunk_frames=1,
               chunks=n_frames)  # fmt: skip
    markers.clear()
    return "resumed" if decision == "resume" else "created"


def register_volume(store: Path) -> State | None:
    """Write ``volume_registered`` from ``volume`` and the registration's displacement.

    None when the method reports no displacement (there is nothing to transfer to the volume).
    """
    from orpam_pipeline.register.apply_displacement import apply_displacement

    group = zarr.open_group(store, mode="r+")
    if not has_array(group, VOLUME) or not has_array(group, DISPLACEMENT):
        return None
    volume, displacement = get_array(group, VOLUME), get_array(group, DISPLACEMENT)
    first_line = group.attrs["conventions"]["first_line"]
    n_frames = int(volume.shape[0])
    decision, fp, markers = _stage(group, store, "volume_register", "register", n_frames)
    if decision == "complete":
        return "complete"
    array = _target(group, VOLUME_REGISTERED, tuple(volume.shape), decision == "fresh")
    done = markers.done()
    for t in range(n_frames):
        if t not in done:
            write_frames(array, t, t + 1, apply_displacement(volume[t : t + 1], displacement[t : t + 1], first_line))
            markers.mark(t)
    mark_stage(group, "volume_register", True, fingerprint=fp, params={"after": "register", "fingerprint": fp},
               chunk_frames=1, chunks=n_frames)  # fmt: skip
    markers.clear()
    return "resumed" if decision == "resume" else "created"
