"""The per-scan zarr v3 store: array names, chunking, codecs and stage markers (docs/store.md).

A scan lives in ``OUT/<scan-name>/scan.zarr``. Arrays are float32, chunked by whole frames, compressed
with Blosc/zstd and protected by a CRC32C checksum codec. Each pipeline stage records itself in the
group attribute ``stages`` only after all of its data are written, so an interrupted stage never looks
complete.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zarr.codecs

from orpam_pipeline.errors import StoreError
from orpam_pipeline.store.files import sync_chunks, sync_dir, sync_file

STORE_NAME = "scan.zarr"
ZARR_JSON = "zarr.json"
FRAMES = "frames"
DEPTH_MAP = "depth_map"
REGISTERED_EVEN = "registered_even"
MERGED = "merged"
DISPLACEMENT = "displacement"
DIMS_FRAMES = ("t", "y", "x")
TARGET_CHUNK_BYTES = 8 * 2**20


def auto_chunk_frames(frame_shape: tuple[int, ...], n_frames: int) -> int:
    """Frames per chunk so that one chunk holds about 8 MiB of float32."""
    per_frame = int(np.prod(frame_shape)) * 4
    return int(max(1, min(n_frames, TARGET_CHUNK_BYTES // max(per_frame, 1))))


def codecs() -> dict[str, Any]:
    """Compressor chain shared by every array: zstd inside Blosc, then a CRC32C checksum."""
    return {
        "compressors": [
            zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),
            zarr.codecs.Crc32cCodec(),
        ]
    }


def create_frame_array(
    group: zarr.Group,
    name: str,
    shape: tuple[int, ...],
    chunk_frames: int,
    dims: tuple[str, ...] = DIMS_FRAMES,
    overwrite: bool = False,
) -> zarr.Array:
    """Create a float32 array chunked by whole frames (NaN fill marks never-written chunks)."""
    chunks = (chunk_frames,) + tuple(shape[1:])
    return group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype="float32",
        fill_value=np.nan,
        dimension_names=dims,
        overwrite=overwrite,
        **codecs(),
    )


def get_array(group: zarr.Group, name: str) -> zarr.Array:
    """The full-resolution array ``name`` of a scan store (``frames``, ``merged``, ``displacement``, ...)."""
    return group[name]


def has_array(group: zarr.Group, name: str) -> bool:
    """Whether the scan store holds the array ``name``."""
    return name in group


def delete_array(group: zarr.Group, name: str) -> None:
    """Remove the array ``name`` from a scan store if present."""
    if has_array(group, name):
        del group[name]


def frames_per_chunk(group_or_array: zarr.Group | zarr.Array) -> int:
    """Frames per chunk of an array, or of a store's ``frames`` (every array of a stage shares it)."""
    array = get_array(group_or_array, FRAMES) if isinstance(group_or_array, zarr.Group) else group_or_array
    return int(array.chunks[0])


def now_iso() -> str:
    """UTC time stamp recorded in attributes and lock files."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def resolve_store_path(path: Path) -> Path:
    """The store itself when given its output folder (``OUT/<scan>`` -> ``OUT/<scan>/scan.zarr``)."""
    path = Path(path)
    if path.name != STORE_NAME and (path / STORE_NAME).exists():
        return path / STORE_NAME
    return path


def is_store(path: Path) -> bool:
    """Whether ``path`` is a zarr store (has ``zarr.json``) or a scan output folder holding ``scan.zarr``."""
    path = Path(path)
    return (path / ZARR_JSON).is_file() or (path / STORE_NAME / ZARR_JSON).is_file()


def open_scan_store(path: Path, mode: str = "r") -> zarr.Group:
    """Open an existing scan store whose ingest stage is complete."""
    path = resolve_store_path(path)
    if not is_store(path):
        raise StoreError(path, "not a scan store (no zarr.json); run `orpam ingest` first")
    try:
        group = zarr.open_group(path, mode=mode)
    except Exception as exc:  # zarr raises several types for damaged metadata
        raise StoreError(path, f"cannot open zarr group ({type(exc).__name__}: {exc})") from None
    if not stage_complete(group, "ingest"):
        raise StoreError(path, "ingest did not complete; rerun the same `orpam ingest` or `orpam run` to continue it")
    return group


def stage_complete(group: zarr.Group, stage: str) -> bool:
    """Whether ``stage`` recorded itself complete in the group attributes."""
    stages = group.attrs.get("stages", {})
    return bool(stages.get(stage, {}).get("complete", False))


def mark_stage(group: zarr.Group, stage: str, complete: bool, **info: Any) -> None:
    """Record a stage's state; ``complete=True`` only after its data are on disk (the record is
    flushed to the disk too, see ``store/files.py``)."""
    stages = dict(group.attrs.get("stages", {}))
    stages[stage] = {"complete": complete, "updated": now_iso(), **info}
    group.attrs["stages"] = stages
    root = getattr(group.store, "root", None)
    if root is not None:
        sync_file(Path(root) / ZARR_JSON)
        sync_dir(Path(root))


def write_frames(array: zarr.Array, start: int, stop: int, data: np.ndarray) -> None:
    """Write frames ``start:stop`` (one whole chunk: one atomic zarr file write) and flush that chunk
    file to the disk, so that the chunk marker written next never vouches for data a power loss took."""
    array[start:stop] = data
    root = getattr(array.store, "root", None)
    if root is not None:
        index = start // int(array.chunks[0])
        key = array.metadata.encode_chunk_key((index,) + (0,) * (array.ndim - 1))
        sync_chunks(Path(root) / array.path, [key])


def remove_tree(path: Path) -> None:
    """Remove a file, link or folder if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def store_root(group_or_path: zarr.Group | Path) -> Path:
    """Filesystem path of a local store group."""
    if isinstance(group_or_path, (str, Path)):
        return Path(group_or_path)
    root = getattr(group_or_path.store, "root", None)
    if root is None:
        raise StoreError(Path("?"), "store is not on a local filesystem")
    return Path(root)
