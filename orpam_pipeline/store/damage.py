"""Finding damaged bytes in a scan store: unreadable array metadata, and chunks missing or corrupted.

``orpam verify`` reports what :func:`find_damage` finds; ``orpam repair`` recomputes exactly those
chunks. Every chunk is decoded through the CRC32C codec, so a flipped, zeroed or truncated chunk
file is found, and a chunk file missing from a stage that says it is complete is found too.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from orpam_pipeline.geometry import moving_width
from orpam_pipeline.store.layout import (
    DEPTH_MAP,
    DIMS_FRAMES,
    DISPLACEMENT,
    FRAMES,
    IMAGES,
    MERGED,
    REGISTERED_EVEN,
    ZARR_JSON,
    array_path,
    create_frame_array,
    image_attrs,
    stage_complete,
)
from orpam_pipeline.store.ngff import level_shape
from orpam_pipeline.store.stage import recorded_chunk_frames, stage_record

WRITTEN_BY = {FRAMES: "ingest", DEPTH_MAP: "ingest", REGISTERED_EVEN: "register", MERGED: "register", DISPLACEMENT: "register"}
INGEST_ARRAYS = tuple(name for name, stage in WRITTEN_BY.items() if stage == "ingest")
"""Arrays the ingest stage writes: a damaged chunk of any of them is read again from the source."""


def base_name(path: str) -> str:
    """The array or image an array path belongs to (``merged/1`` -> ``merged``)."""
    return path.split("/")[0]


@dataclass(frozen=True)
class ChunkDamage:
    """One damaged chunk of one array: ``missing`` or ``corrupted (...)``."""

    array: str
    chunk: int
    frames: tuple[int, int]
    reason: str


@dataclass
class StoreDamage:
    """What is wrong with one store's bytes (sources are checked elsewhere)."""

    store: Path
    metadata: list[str] = field(default_factory=list)
    """Arrays whose ``zarr.json`` cannot be read."""
    chunks: list[ChunkDamage] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.metadata and not self.chunks

    def problems(self) -> list[str]:
        """One line per problem, naming the file."""
        lines = [f"{self.store}: array {name}: metadata ({name}/{ZARR_JSON}) is damaged" for name in self.metadata]
        lines += [
            f"{self.store}: array {c.array} chunk {c.chunk} (frames {c.frames[0]}-{c.frames[1]}): {c.reason}"
            for c in self.chunks
        ]
        return lines


def _fold(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text if len(text) <= limit else text[: limit - 3] + '...'}"


def expected_arrays(group: zarr.Group) -> dict[str, dict[str, Any]]:
    """Array path -> shape, chunk_frames and dimension names of every array the complete stages say exist
    (every level of an image: ``frames/0``, ``frames/1``, ...)."""
    levels = int((stage_record(group, "ingest") or {}).get("levels", 0))
    out: dict[str, dict[str, Any]] = {}
    for name, spec in expected_images(group).items():
        if name not in IMAGES:
            out[name] = spec
            continue
        for level in range(levels + 1):
            out[array_path(name, level)] = {**spec, "shape": level_shape(spec["shape"], spec["dims"], level)}
    return out


def expected_images(group: zarr.Group) -> dict[str, dict[str, Any]]:
    """Name -> full-resolution shape, chunk_frames and dimension names of every image and array the
    complete stages say exist."""
    ingest = stage_record(group, "ingest") or {}
    params = ingest.get("params") or {}
    shape = params.get("shape")
    if shape is None or not ingest.get("complete"):
        return {}
    n, rows, cols = (int(s) for s in shape)
    height, width = (rows, cols) if params.get("scan_lines", "columns") == "columns" else (cols, rows)
    chunk = recorded_chunk_frames(ingest) or n
    out: dict[str, dict[str, Any]] = {FRAMES: {"shape": (n, height, width), "chunk": chunk, "dims": DIMS_FRAMES}}
    if ingest.get("depth_map"):
        out[DEPTH_MAP] = dict(out[FRAMES])
    register = stage_record(group, "register") or {}
    if not register.get("complete"):
        return out
    chunk = recorded_chunk_frames(register) or chunk
    n_moving = moving_width(width, params.get("first_line", "forward"))
    out[REGISTERED_EVEN] = {"shape": (n, height, n_moving), "chunk": chunk, "dims": DIMS_FRAMES}
    out[MERGED] = {"shape": (n, height, width), "chunk": chunk, "dims": DIMS_FRAMES}
    kind = dict(group.attrs.get("registration", {})).get("displacement", "none")
    if kind == "profile":
        out[DISPLACEMENT] = {"shape": (n, height), "chunk": chunk, "dims": ("t", "y")}
    elif kind == "field":
        out[DISPLACEMENT] = {"shape": (n, height, n_moving), "chunk": chunk, "dims": DIMS_FRAMES}
    return out


def metadata_bytes(spec: dict[str, Any]) -> bytes:
    """The ``zarr.json`` an array of ``spec`` has in a store this package writes (no chunk is made)."""
    with tempfile.TemporaryDirectory() as tmp:
        create_frame_array(zarr.open_group(tmp, mode="w"), "a", spec["shape"], spec["chunk"], spec["dims"])
        return (Path(tmp) / "a" / ZARR_JSON).read_bytes()


def image_metadata_bytes(group: zarr.Group, name: str, spec: dict[str, Any]) -> bytes:
    """The ``zarr.json`` of image ``name`` (its OME-Zarr attributes) in a store whose group is ``group``."""
    levels = int((stage_record(group, "ingest") or {}).get("levels", 0))
    with tempfile.TemporaryDirectory() as tmp:
        image = zarr.open_group(tmp, mode="w")
        image.attrs["ome"] = image_attrs(group.attrs, name, spec["dims"], levels)
        return (Path(tmp) / ZARR_JSON).read_bytes()


def unreadable_images(store: Path, group: zarr.Group) -> list[str]:
    """Expected images whose group metadata (the OME-Zarr attributes) cannot be read."""
    bad = []
    for name, spec in expected_images(group).items():
        if name not in IMAGES:
            continue
        try:
            zarr.open_group(Path(store) / name, mode="r").attrs["ome"]["multiscales"]
        except Exception:  # zarr raises several types for damaged metadata
            bad.append(name)
    return bad


def unreadable_arrays(store: Path, group: zarr.Group) -> list[str]:
    """Expected arrays whose metadata cannot be read (cheap: no chunk is decoded)."""
    bad = []
    for name in expected_arrays(group):
        try:
            zarr.open_array(Path(store) / name, mode="r")
        except Exception:  # zarr raises several types for damaged metadata
            bad.append(name)
    return bad


def find_damage(
    store: Path, group: zarr.Group, progress: Callable[[str, int, int], None] | None = None
) -> StoreDamage:
    """Read every expected array's metadata and decode every chunk of it."""
    damage = StoreDamage(Path(store))
    damage.metadata = unreadable_images(store, group) + unreadable_arrays(store, group)
    for name in expected_arrays(group):
        if name in damage.metadata:
            continue
        array = zarr.open_array(Path(store) / name, mode="r")
        must_exist = stage_complete(group, WRITTEN_BY[base_name(name)])
        per_chunk = int(array.chunks[0])
        grid = list(itertools.product(*(range(n) for n in array.cdata_shape)))
        for i, coords in enumerate(grid):
            frames = (coords[0] * per_chunk, min((coords[0] + 1) * per_chunk, array.shape[0]) - 1)
            if not (Path(store) / name / array.metadata.encode_chunk_key(coords)).is_file():
                if must_exist:
                    damage.chunks.append(ChunkDamage(name, coords[0], frames, "chunk file is missing"))
                continue
            try:
                np.asarray(array.get_block_selection(coords))
            except Exception as exc:  # the codecs raise several types; every one means damaged bytes
                damage.chunks.append(ChunkDamage(name, coords[0], frames, f"corrupted ({_fold(exc)})"))
            damage.checked += 1
            if progress is not None:
                progress(f"{Path(store).parent.name}/{name}", i + 1, len(grid))
    return damage


def missing_chunks(store: Path, group: zarr.Group, names: tuple[str, ...] | None = None) -> list[str]:
    """Chunk files that complete stages should have written but are not on disk (a stat per chunk).

    zarr reads a missing chunk as its fill value, so without this check a deleted chunk would pass
    as NaN frames.
    """
    lines = []
    for name in expected_arrays(group):
        if names is not None and name not in names:
            continue
        try:
            array = zarr.open_array(Path(store) / name, mode="r")
        except Exception:  # damaged metadata is reported by unreadable_arrays
            continue
        for coords in itertools.product(*(range(n) for n in array.cdata_shape)):
            if not (Path(store) / name / array.metadata.encode_chunk_key(coords)).is_file():
                lines.append(f"array {name} chunk {coords[0]} is missing")
    return lines
