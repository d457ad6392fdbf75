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
