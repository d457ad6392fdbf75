"""Whole chunks of a local store written to and read from their files directly, as zarr itself would.

``array[a:b] = data`` and ``array[a:b]`` send every chunk through zarr's asyncio event loop and its
thread pool: two hand-offs per chunk, the calling thread waiting on both, and Python work on the loop
thread that competes for the GIL with the chunk tasks. For the common case (one whole chunk of a local
array with this package's codec chain: little-endian bytes, Blosc, CRC32C, see ``layout.codecs``),
:func:`write_chunk` and :func:`read_chunk` make the same numcodecs Blosc and google-crc32c calls on the
calling thread; a write goes through :func:`~orpam_pipeline.store.files.atomic_file` (flushed, then
renamed into place). Everything else (another codec chain, a remote store, part of a chunk, a missing
or damaged chunk file on reading) goes through zarr, whose errors therefore stay the ones users see.
The tests compare the files byte for byte with zarr's own.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec

from orpam_pipeline.store.files import atomic_file, sync_dir

_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


@lru_cache(maxsize=32)
def _blosc(cname: str, clevel: int, shuffle: str, blocksize: int) -> object:
    from numcodecs import Blosc

    return Blosc(cname=cname, clevel=clevel, shuffle=_SHUFFLE[shuffle], blocksize=blocksize)


def _chunk_file(array: zarr.Array, start: int, stop: int, writing: bool) -> tuple[Path, object] | None:
    """The file of the chunk that frames ``start:stop`` fill exactly, and the numcodecs Blosc to code it with, when
    ``array`` lives in a local folder (writable, for ``writing``), its chunks are whole frames and its codec
    chain is exactly bytes (little-endian) → Blosc → CRC32C; None otherwise."""
    root = getattr(array.store, "root", None)
    if root is None or (writing and array.store.read_only) or array.metadata.zarr_format != 3:
        return None
    frames = int(array.chunks[0])
    if start % frames or stop != min(start + frames, array.shape[0]) or tuple(array.chunks[1:]) != array.shape[1:]:
        return None
    chain = array.metadata.codecs
    if tuple(type(c) for c in chain) != (BytesCodec, BloscCodec, Crc32cCodec):
        return None
    order, blosc = chain[0], chain[1]
    if order.endian is not None and order.endian.value != "little":
        return None
    key = array.metadata.encode_chunk_key((start // frames,) + (0,) * (array.ndim - 1))
    return Path(root) / array.path / key, _blosc(blosc.cname.value, int(blosc.clevel), blosc.shuffle.value,
                                                 int(blosc.blocksize))  # fmt: skip


def _checksum(data: bytes | np.ndarray) -> bytes:
    import google_crc32c

    return struct.pack("<I", google_crc32c.value(data))


def write_chunk(array: zarr.Array, start: int, stop: int, data: np.ndarray) -> bool:
    """Write frames ``start:stop`` of ``array`` as one chunk file if they are exactly one whole chunk (the last
    chunk padded with the fill value, as zarr pads it) and the codec chain allows it; False (nothing
    written) otherwise.

    As zarr does with its default ``write_empty_chunks=False``, a chunk holding only the fill value is
    not written and any earlier file of it is removed.
    """
    target = _chunk_file(array, start, stop, writing=True)
    if target is None:
        return False
    block = np.asarray(data, dtype=array.dtype)
    if block.shape != (stop - start, *array.shape[1:]):
        return False
    path, codec = target
    fill = np.asarray(array.metadata.fill_value, dtype=array.dtype)
    if not zarr.config.get("array.write_empty_chunks") and _only(block, fill):
        if path.exists():
            path.unlink()
            sync_dir(path.parent)
        return True
    frames = int(array.chunks[0])
    if block.shape[0] < frames:
        padded = np.full((frames, *block.shape[1:]), fill, dtype=array.dtype)
        padded[: block.shape[0]] = block
        block = padded
    encoded = codec.encode(np.ascontiguousarray(block, dtype=block.dtype.newbyteorder("<")))  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp, tmp.open("wb") as out:
        out.write(encoded)
        out.write(_checksum(encoded))
    return True


def read_chunk(array: zarr.Array, start: int, stop: int) -> np.ndarray | None:
    """Frames ``start:stop`` of ``array`` read from their chunk file when they are exactly one whole chunk of a
    local array with the store's codec chain and the file is there with a matching checksum; None (read
    them through zarr) otherwise."""
    target = _chunk_file(array, start, stop, writing=False)
    if target is None:
        return None
    path, codec = target
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if len(raw) < 4:
        return None
    body = np.frombuffer(raw, dtype=np.uint8)[:-4]
    if _checksum(body) != raw[-4:]:
        return None
    out = np.empty((int(array.chunks[0]), *array.shape[1:]), dtype=array.dtype.newbyteorder("<"))
    try:
        codec.decode(body, out=out)  # type: ignore[attr-defined]
    except Exception:  # a chunk of another size or a broken frame: zarr's read says what is wrong
        return None
    return out[: stop - start].astype(array.dtype, copy=False)


def _only(block: np.ndarray, fill: np.ndarray) -> bool:
    """Whether every value of ``block`` is the fill value (NaN counting as equal to a NaN fill); the first value
    usually answers without a pass over the chunk."""
    nan = np.issubdtype(block.dtype, np.floating) and bool(np.isnan(fill))
    first = block.flat[0] if block.size else fill
    if not (np.isnan(first) if nan else first == fill):
        return False
    return bool(np.isnan(block).all()) if nan else bool((block == fill).all())
