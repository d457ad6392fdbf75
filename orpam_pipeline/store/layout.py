"""The per-scan zarr v3 store: array names, chunking, codecs and stage markers (docs/store.md).

A scan lives in ``OUT/<scan-name>/scan.zarr``. Images (``frames``, ``merged``, ...) are OME-Zarr 0.5
image groups whose level ``0`` is the full-resolution array (``store/ngff.py``); ``displacement`` is a
plain array. Arrays are float32, chunked by whole frames, compressed with Blosc/zstd and protected by
a CRC32C checksum codec. Each pipeline stage records itself in the group attribute ``stages`` only
after all of its data are written, so an interrupted stage never looks complete. Read and write arrays
through :func:`get_array`, :func:`image_levels` and :func:`write_image`, which know where they live.
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
from orpam_pipeline.geometry import fixed_parity
from orpam_pipeline.store.chunk_files import read_chunk, write_chunk
from orpam_pipeline.store.files import sync_chunks, sync_dir, sync_file
from orpam_pipeline.store.ngff import halve, image_metadata, level_count, level_shape

STORE_NAME = "scan.zarr"
ZARR_JSON = "zarr.json"
FRAMES = "frames"
DEPTH_MAP = "depth_map"
REGISTERED_EVEN = "registered_even"
MERGED = "merged"
DISPLACEMENT = "displacement"
VOLUME = "volume"
VOLUME_REGISTERED = "volume_registered"
IMAGES = (FRAMES, DEPTH_MAP, REGISTERED_EVEN, MERGED, VOLUME, VOLUME_REGISTERED)
"""Arrays stored as OME-Zarr images (a group with one array per resolution level)."""
DIMS_FRAMES = ("t", "y", "x")
LAYOUT_ATTR = "layout_version"
LAYOUT_VERSION = 2
"""1: every array at the top of the group (before 0.x); 2: images as OME-Zarr 0.5 groups."""
TARGET_CHUNK_BYTES = 8 * 2**20


def auto_chunk_frames(frame_shape: tuple[int, ...], n_frames: int) -> int:
    """Frames per chunk so that one chunk holds about 8 MiB of float32."""
    per_frame = int(np.prod(frame_shape)) * 4
    return int(max(1, min(n_frames, TARGET_CHUNK_BYTES // max(per_frame, 1))))


def codecs() -> dict[str, Any]:
    """Compressor chain shared by every array: zstd inside Blosc, then a CRC32C checksum.

    Level 1: within 2 % of level 3's ratio on float, count and thresholded frames, in 0.4-0.9x its time
    (``benchmarks/bench_codecs.py``, docs/store.md).
    """
    return {
        "compressors": [
            zarr.codecs.BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle"),
            zarr.codecs.Crc32cCodec(),
        ]
    }


def _create_array(group: zarr.Group, name: str, shape: tuple[int, ...], chunk_frames: int, dims: tuple[str, ...],
                  overwrite: bool) -> zarr.Array:  # fmt: skip
    chunks = (chunk_frames,) + tuple(shape[1:])
    return group.create_array(name, shape=shape, chunks=chunks, dtype="float32", fill_value=np.nan,
                              dimension_names=dims, overwrite=overwrite, **codecs())  # fmt: skip


def image_attrs(root_attrs: Any, name: str, dims: tuple[str, ...], levels: int) -> dict[str, Any]:
    """The ``ome`` attribute of image ``name`` of a store whose group attributes are ``root_attrs``."""
    placement: dict[str, int] = {}
    if name == REGISTERED_EVEN:
        first_line = dict(root_attrs.get("conventions") or {}).get("first_line", "forward")
        placement = {"x_stride": 2, "x_offset": 1 - fixed_parity(first_line)}
    elif "z" in dims:
        window = dict(dict(root_attrs.get("source") or {}).get("map") or {}).get("depth_range")
        placement = {"z_offset": int(window[0])} if window and window[0] is not None else {}
    return image_metadata(name, dims, levels, root_attrs.get("physical"), **placement)


def create_frame_array(
    group: zarr.Group,
    name: str,
    shape: tuple[int, ...],
    chunk_frames: int,
    dims: tuple[str, ...] = DIMS_FRAMES,
    overwrite: bool = False,
    levels: int = 0,
) -> zarr.Array:
    """Create a float32 array chunked by whole frames (NaN fill marks never-written chunks); for an
    image, its OME-Zarr group with ``levels`` lower-resolution levels. Returns the full-resolution array."""
    if name not in IMAGES:
        return _create_array(group, name, shape, chunk_frames, dims, overwrite)
    image = group.create_group(name, overwrite=overwrite)
    for level in range(levels + 1):
        _create_array(image, str(level), level_shape(shape, dims, level), chunk_frames, dims, False)
    image.attrs["ome"] = image_attrs(group.attrs, name, dims, levels)
    return image["0"]


def array_path(name: str, level: int = 0) -> str:
    """Path of array ``name`` (at ``level``, for images) inside the store."""
    return f"{name}/{level}" if name in IMAGES else name


def get_array(group: zarr.Group, name: str, level: int = 0) -> zarr.Array:
    """The array ``name`` of a scan store (``frames``, ``merged``, ``displacement``, ...), full resolution
    unless ``level`` says otherwise."""
    return group[array_path(name, level)]


def has_array(group: zarr.Group, name: str) -> bool:
    """Whether the scan store holds the array ``name``."""
    return array_path(name) in group


def delete_array(group: zarr.Group, name: str) -> None:
    """Remove the array (or image with all its levels) ``name`` from a scan store if present."""
    if name in group:
        del group[name]


def image_levels(group: zarr.Group, name: str) -> list[zarr.Array]:
    """Every resolution level of ``name``, full resolution first (a plain array is its only level)."""
    if name not in IMAGES:
        return [group[name]]
    image = group[name]
    return [image[str(level)] for level in range(level_count(image.attrs))]


def store_arrays(group: zarr.Group) -> list[str]:
    """Names of the arrays and images a scan store holds, sorted."""
    images = [n for n in group.group_keys() if n in IMAGES]
    return sorted(images + [n for n in group.array_keys()])


def layout_version(group: zarr.Group) -> int:
    """The layout a store was written with (1 for stores made before the version was recorded)."""
    return int(group.attrs.get(LAYOUT_ATTR, 1))


def check_layout(group: zarr.Group, path: Path) -> None:
    """Refuse a store of another layout with the way out."""
    version = layout_version(group)
    if version != LAYOUT_VERSION:
        raise StoreError(path, f"made with store layout {version} by an earlier orpam_pipeline, this one reads layout "
                               f"{LAYOUT_VERSION} (OME-Zarr images, docs/store.md); rerun `orpam run` on the sources "
                               "with --overwrite to rebuild it")  # fmt: skip


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
    check_layout(group, path)
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
    """Write frames ``start:stop`` (one whole chunk: one atomic file write) and flush that chunk file to the
    disk, so that the chunk marker written next never vouches for data a power loss took.

    A whole chunk of a local store is encoded and written on the calling thread
    (:func:`~orpam_pipeline.store.chunk_files.write_chunk`, zarr's bytes); anything else goes through zarr.
    """
    if write_chunk(array, start, stop, data):
        return
    array[start:stop] = data
    root = getattr(array.store, "root", None)
    if root is not None:
        index = start // int(array.chunks[0])
        key = array.metadata.encode_chunk_key((index,) + (0,) * (array.ndim - 1))
        sync_chunks(Path(root) / array.path, [key])


def read_frames(array: zarr.Array, start: int, stop: int) -> np.ndarray:
    """Frames ``start:stop`` of ``array``: one whole chunk straight from its file where that applies
    (:func:`~orpam_pipeline.store.chunk_files.read_chunk`), anything else through zarr."""
    block = read_chunk(array, start, stop)
    return np.asarray(array[start:stop]) if block is None else block


def write_image(levels: list[zarr.Array], start: int, stop: int, data: np.ndarray) -> None:
    """Write frames ``start:stop`` of every level of an image (as :func:`write_frames`), each level
    computed from the one above while the chunk is in memory."""
    for level, array in enumerate(levels):
        if level:
            data = halve(data)
        write_frames(array, start, stop, data)


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
