"""Whole chunks written straight to their files hold zarr's own bytes, and everything else is left to zarr."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import zarr

from orpam_pipeline.store.chunk_files import read_chunk, write_chunk
from orpam_pipeline.store.files import partial_path
from orpam_pipeline.store.layout import codecs, read_frames, write_frames
from orpam_pipeline.store.resume import clean_strays

SHAPE, CHUNK = (70, 24, 20), 32


def _array(root: Path, name: str, **kwargs) -> zarr.Array:
    group = zarr.open_group(root, mode="a")
    options = codecs() if not kwargs else kwargs
    return group.create_array(name, shape=SHAPE, chunks=(CHUNK, *SHAPE[1:]), dtype="float32", fill_value=np.nan,
                              **options)  # fmt: skip


def _files(array: zarr.Array) -> dict[str, bytes]:
    folder = Path(array.store.root) / array.path
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "zarr.json"}


def _data(kind: str) -> np.ndarray:
    rng = np.random.default_rng(3)
    if kind == "counts":
        return rng.poisson(40.0, SHAPE).astype(np.float32)
    return (rng.normal(size=SHAPE) * 1e3).astype(np.float32)


@pytest.mark.parametrize("kind", ["float", "counts"])
def test_chunk_files_are_zarrs_bytes_and_read_back_through_zarr(tmp_path, kind):
    data = _data(kind)
    by_zarr, direct = _array(tmp_path, "zarr"), _array(tmp_path, "direct")
    for start in range(0, SHAPE[0], CHUNK):
        stop = min(start + CHUNK, SHAPE[0])
        by_zarr[start:stop] = data[start:stop]
        assert write_chunk(direct, start, stop, data[start:stop])
    assert len(_files(direct)) == 3  # the last chunk (6 frames) padded with NaN, as zarr pads it
    assert _files(direct) == _files(by_zarr)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "direct", mode="r")[:], data)


def test_a_chunk_encoded_on_a_worker_thread_is_the_same_as_on_the_main_thread(tmp_path):
    """numcodecs' Blosc may use its own threads when called from the main thread and never from others."""
    data = _data("float")
    main, worker = _array(tmp_path, "main"), _array(tmp_path, "worker")
    assert write_chunk(main, 0, CHUNK, data[:CHUNK])
    thread = threading.Thread(target=write_chunk, args=(worker, 0, CHUNK, data[:CHUNK]))
    thread.start()
    thread.join()
    assert _files(main) == _files(worker) and len(_files(main)) == 1


def test_only_whole_chunks_with_the_stores_codecs_are_written_here(tmp_path):
    data = _data("float")
    array = _array(tmp_path, "a")
    assert not write_chunk(array, 1, 33, data[1:33])  # not at a chunk boundary
    assert not write_chunk(array, 0, 16, data[:16])  # part of a chunk
    assert not write_chunk(array, 64, 69, data[64:69])  # the last chunk, but not to its end
    other = _array(tmp_path, "b", compressors=[zarr.codecs.ZstdCodec(level=1)])
    assert not write_chunk(other, 0, CHUNK, data[:CHUNK])
    assert _files(array) == {} and _files(other) == {}


def test_a_chunk_of_fill_values_has_no_file_as_with_zarr(tmp_path):
    nan = np.full((CHUNK, *SHAPE[1:]), np.nan, dtype=np.float32)
    by_zarr, direct = _array(tmp_path, "zarr"), _array(tmp_path, "direct")
    for array in (by_zarr, direct):
        write_frames(array, 0, CHUNK, _data("float")[:CHUNK])
    by_zarr[0:CHUNK] = nan
    assert write_chunk(direct, 0, CHUNK, nan)
    assert _files(direct) == _files(by_zarr) == {}
    partly = _data("float")[:CHUNK]
    partly[0, 0, 0] = np.nan  # the first value alone is the fill value: the chunk is written
    by_zarr[0:CHUNK] = partly
    assert write_chunk(direct, 0, CHUNK, partly)
    assert _files(direct) == _files(by_zarr) and len(_files(direct)) == 1


def test_write_frames_goes_through_zarr_where_the_direct_path_does_not_apply(tmp_path):
    data = _data("float")
    array = _array(tmp_path, "a", compressors=[zarr.codecs.ZstdCodec(level=1)])
    write_frames(array, 0, CHUNK, data[:CHUNK])
    np.testing.assert_array_equal(array[:CHUNK], data[:CHUNK])


def test_a_killed_writers_temporary_inside_the_store_is_cleaned(tmp_path):
    array = _array(tmp_path / "scan.zarr", "frames")
    write_chunk(array, 0, CHUNK, _data("float")[:CHUNK])
    chunk = next(p for p in (tmp_path / "scan.zarr" / "frames").rglob("0") if p.is_file())
    stray = partial_path(chunk)
    stray.write_bytes(b"half a chunk")
    assert clean_strays(tmp_path / "scan.zarr") == [stray] and not stray.exists() and chunk.exists()


def test_whole_chunks_read_from_their_files_equal_zarrs_reads(tmp_path):
    data = _data("counts")
    array = _array(tmp_path, "a")
    array[:] = data
    for start in range(0, SHAPE[0], CHUNK):
        stop = min(start + CHUNK, SHAPE[0])
        block = read_chunk(array, start, stop)
        assert block is not None and block.dtype == np.float32
        np.testing.assert_array_equal(block, data[start:stop])
    assert read_chunk(array, 0, 16) is None and read_chunk(array, 64, 69) is None
    np.testing.assert_array_equal(read_frames(array, 3, 40), data[3:40])


def test_a_missing_or_damaged_chunk_file_is_left_to_zarr_and_its_errors(tmp_path):
    array = _array(tmp_path, "a")
    array[:] = _data("float")
    files = sorted(p for p in (tmp_path / "a").rglob("*") if p.is_file() and p.name != "zarr.json")
    files[0].unlink()
    assert read_chunk(array, 0, CHUNK) is None
    assert np.isnan(read_frames(array, 0, CHUNK)).all()  # zarr's fill value, which `missing_chunks` reports
    raw = bytearray(files[1].read_bytes())
    raw[100] ^= 0xFF
    files[1].write_bytes(bytes(raw))
    assert read_chunk(array, CHUNK, 2 * CHUNK) is None
    with pytest.raises(Exception, match="(?i)checksum"):
        read_frames(array, CHUNK, 2 * CHUNK)
