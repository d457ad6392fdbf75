import errno
import threading

import numpy as np
import pytest
import zarr

from orpam_pipeline.errors import ScanError, StoreError
from orpam_pipeline.io import open_scan, sha256_file
from orpam_pipeline.store.ingest import ingest, ingest_scan
from orpam_pipeline.store.layout import open_scan_store, stage_complete
from tests.conftest import make_store


def test_frames_round_trip_with_provenance_and_codecs(tmp_path, small_sim):
    frames = small_sim.frames[:7]
    store = make_store(tmp_path, frames, chunk_frames=3)
    group = open_scan_store(store)
    np.testing.assert_array_equal(group["frames/0"][:], frames)
    arr = group["frames/0"]
    assert arr.dtype == np.float32 and arr.chunks == (3,) + frames.shape[1:]
    assert arr.metadata.dimension_names == ("t", "y", "x")
    codec_names = [c.to_dict()["name"] for c in arr.metadata.codecs]
    assert "crc32c" in codec_names and "blosc" in codec_names
    files = group.attrs["source"]["files"]
    src = tmp_path / "src" / "scan.npy"
    assert files[0]["sha256"] == sha256_file(src) and files[0]["size"] == src.stat().st_size
    assert group.attrs["conventions"]["first_line"] == "forward"
    assert stage_complete(group, "ingest")


def test_scan_lines_rows_transposes_on_ingest(tmp_path, small_sim):
    frames = small_sim.frames[:2]
    src = tmp_path / "rows.npy"
    np.save(src, frames.transpose(0, 2, 1))
    with open_scan(src) as source:
        store = ingest_scan(source, tmp_path / "out", scan_lines="rows")
    np.testing.assert_array_equal(zarr.open_group(store)["frames/0"][:], frames)


def test_existing_store_same_source_is_complete_whatever_the_chunking_different_source_is_refused(tmp_path, small_sim):
    store = make_store(tmp_path, small_sim.frames[:2])
    with open_scan(tmp_path / "src" / "scan.npy") as source:
        again = ingest(source, tmp_path / "out")
    assert again.state == "complete" and again.store == store and again.chunks_written == 0
    with open_scan(tmp_path / "src" / "scan.npy") as source:
        other = ingest(source, tmp_path / "out", chunk_frames=1)  # another chunking: still the same frames
    assert other.state == "complete" and open_scan_store(store)["frames/0"].chunks[0] == 2
    with pytest.raises(StoreError, match="already exists with different ingest parameters .*source files differ.*--overwrite"):
        make_store(tmp_path, small_sim.frames[:3])
    make_store(tmp_path, small_sim.frames[:3], overwrite=True)
    np.testing.assert_array_equal(open_scan_store(store)["frames/0"][:], small_sim.frames[:3])


def test_failed_ingest_leaves_nothing_that_looks_complete(tmp_path, small_sim):
    frames = small_sim.frames[:6].copy()
    frames[4, 3, 3] = np.inf
    src = tmp_path / "bad.npy"
    np.save(src, frames)
    with open_scan(src) as source, pytest.raises(ScanError, match="frame 4"):
        ingest_scan(source, tmp_path / "out", chunk_frames=2)
    assert list((tmp_path / "out" / "bad").iterdir()) == []


def test_too_few_lines_is_refused(tmp_path):
    src = tmp_path / "thin.npy"
    np.save(src, np.ones((2, 16, 3), dtype=np.float32))
    with open_scan(src) as source, pytest.raises(ScanError, match="too small"):
        ingest_scan(source, tmp_path / "out", scan_lines="rows")


def test_chunks_are_written_side_by_side_and_land_as_written(tmp_path, small_sim, monkeypatch):
    """Two chunk writes must be under way at once (a barrier both have to reach), and the frames read back
    bit for bit, in order, whatever order the writes finish in."""
    from orpam_pipeline.store import ingest as ingest_mod

    real, barrier = ingest_mod.write_image, threading.Barrier(2, timeout=10)
    monkeypatch.setattr(ingest_mod, "write_threads", lambda: 2)

    def paired(levels, start, stop, data):
        if start < 4:  # the first two chunks wait for each other
            barrier.wait()
        real(levels, start, stop, data)

    monkeypatch.setattr(ingest_mod, "write_image", paired)
    src = tmp_path / "s.npy"
    np.save(src, small_sim.frames[:9])
    done = []
    with open_scan(src) as source:
        result = ingest(source, tmp_path / "out", chunk_frames=2, progress=lambda d, n: done.append((d, n)))
    assert result.chunks_written == 5 and done == [(i, 5) for i in range(1, 6)]
    np.testing.assert_array_equal(zarr.open_group(result.store, mode="r")["frames/0"][:], small_sim.frames[:9])


def test_a_failed_chunk_write_names_the_store_and_the_rerun_continues(tmp_path, small_sim, monkeypatch):
    from orpam_pipeline.store import ingest as ingest_mod
    from orpam_pipeline.store.resume import ChunkMarkers

    real = ingest_mod.write_image

    def full_disk(levels, start, stop, data):
        if start == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(levels, start, stop, data)

    src = tmp_path / "s.npy"
    np.save(src, small_sim.frames[:12])
    monkeypatch.setattr(ingest_mod, "write_image", full_disk)
    with open_scan(src) as source, pytest.raises(StoreError) as err:
        ingest(source, tmp_path / "out", chunk_frames=2)
    store = tmp_path / "out" / "s" / "scan.zarr"
    assert str(store) in str(err.value) and "writing frames failed (No space left on device)" in str(err.value)
    assert "\n" not in str(err.value) and not stage_complete(zarr.open_group(store, mode="r"), "ingest")
    before = ChunkMarkers(store, "ingest").done()
    assert 2 not in before and {0, 1} <= before  # the chunks before the failed one were written and marked
    monkeypatch.setattr(ingest_mod, "write_image", real)
    with open_scan(src) as source:
        again = ingest(source, tmp_path / "out", chunk_frames=2)
    assert again.state == "resumed" and again.chunks_written == 6 - len(before)
    np.testing.assert_array_equal(zarr.open_group(store, mode="r")["frames/0"][:], small_sim.frames[:12])
    assert stage_complete(open_scan_store(store), "ingest")
