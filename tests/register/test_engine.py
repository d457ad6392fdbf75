
import numpy as np
import pytest
import zarr

from orpam_pipeline.errors import OrpamError, StoreError
from orpam_pipeline.geometry import interleave, split
from orpam_pipeline.register import METHODS, get_method
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.store.layout import get_array, has_array, open_scan_store, stage_complete
from tests.conftest import make_store

ARRAYS = ("registered_even", "merged", "displacement")


# One frame per network batch: oneDNN picks kernels by batch size, so batches of different sizes
# round float32 differently (about 1e-6); one-frame batches make every chunking bit-identical.
NETWORK_SETTINGS = {"device": "cpu", "precision": "fp32", "batch_size": 1}


@pytest.mark.parametrize("method", list(METHODS))
def test_chunked_equals_whole(tmp_path, small_sim, method):
    """Every registered method (learned ones with their shipped checkpoints) gives the same arrays, bit
    for bit, whatever the chunking."""
    frames = small_sim.frames[:7] if METHODS[method].uses_network else small_sim.frames
    settings = NETWORK_SETTINGS if METHODS[method].uses_network else {}
    n = frames.shape[0]
    results = []
    for chunk in (1, 3, n):
        store = make_store(tmp_path / str(chunk), frames, chunk_frames=chunk)
        register_store(store, get_method(method, **settings))
        group = open_scan_store(store)
        assert group["merged/0"].chunks[0] == chunk
        results.append({k: get_array(group, k)[:] for k in ARRAYS if has_array(group, k)})
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        for key in other:
            np.testing.assert_array_equal(other[key], results[0][key])


def test_merged_keeps_forward_lines_and_interleaves(tmp_path, small_sim):
    store = make_store(tmp_path, small_sim.frames, chunk_frames=5)
    info = register_store(store, get_method("phase"))
    group = open_scan_store(store)
    odd, _ = split(small_sim.frames)
    merged = group["merged/0"][:]
    np.testing.assert_array_equal(merged[..., 0::2], odd)
    np.testing.assert_array_equal(merged, interleave(odd, group["registered_even/0"][:]))
    assert group["displacement"].shape == small_sim.displacement.shape
    assert group["registered_even/0"].metadata.dimension_names == ("t", "y", "x")
    assert stage_complete(group, "register")
    assert group.attrs["registration"]["method"] == "phase" == info["method"]
    assert np.isfinite(merged).all()


def test_reregistering_without_displacement_removes_the_stale_one(tmp_path, small_sim):
    store = make_store(tmp_path, small_sim.frames[:6])
    register_store(store, get_method("phase"))
    register_store(store, get_method("none"))
    group = open_scan_store(store)
    assert "displacement" not in group
    np.testing.assert_array_equal(group["registered_even/0"][:], small_sim.frames[:6, :, 1::2])


@pytest.mark.parametrize("first_line", ["forward", "backward"])
def test_odd_width_and_first_line_backward(tmp_path, small_sim, first_line):
    frames = small_sim.frames[:4, :, :95]
    store = make_store(tmp_path, frames, first_line=first_line)
    register_store(store, get_method("phase"))
    group = open_scan_store(store)
    odd, even = split(frames, first_line)
    assert group["registered_even/0"].shape == even.shape
    np.testing.assert_array_equal(split(group["merged/0"][:], first_line)[0], odd)


def test_progress_reports_every_block(tmp_path, small_sim):
    store = make_store(tmp_path, small_sim.frames, chunk_frames=4)
    calls = []
    register_store(store, get_method("phase"), progress=lambda s, d, n: calls.append((s, d, n)))
    assert ("measure", 6, 6) in calls and ("register", 6, 6) in calls


def test_refuses_a_store_whose_ingest_did_not_complete(tmp_path, small_sim):
    store = make_store(tmp_path, small_sim.frames[:3])
    group = zarr.open_group(store, mode="r+")
    group.attrs["stages"] = {"ingest": {"complete": False}}
    with pytest.raises(StoreError, match="ingest did not complete"):
        register_store(store, get_method("none"))


def test_unknown_method_is_a_clear_error():
    with pytest.raises(OrpamError, match="unknown method 'nope'"):
        get_method("nope")
