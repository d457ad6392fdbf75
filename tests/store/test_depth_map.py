"""Ingest of A-line volumes: ``depth_map`` beside ``frames``, physical attributes, the reduction in the
fingerprint, chunk invariance, verify and repair; plain scans are stored exactly as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from orpam_pipeline.errors import StoreError
from orpam_pipeline.io import ReadSpec, open_scan
from orpam_pipeline.io.reduce import Reduction
from orpam_pipeline.register import get_method
from orpam_pipeline.register.engine import register
from orpam_pipeline.repair import repair_store
from orpam_pipeline.simulate import SimulationParams, write_simulation
from orpam_pipeline.simulate.raw import RawParams
from orpam_pipeline.store.damage import expected_arrays
from orpam_pipeline.store.ingest import ingest
from orpam_pipeline.store.layout import get_array
from orpam_pipeline.store.status import verify_outputs

SPEC = ReadSpec(axes="tzyx", reduction=Reduction(sampling_rate=250.0, speed_of_sound=1500.0))


@pytest.fixture(scope="module")
def raw_sim(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("raw")
    params = SimulationParams.randomised(2, frames=4, height=64, width=48)
    return write_simulation(root, params, raw=RawParams(depth_samples=64))


def _ingest(scan: Path, out: Path, spec: ReadSpec = SPEC, **kw: object) -> Path:
    with open_scan(scan, spec=spec) as source:
        return ingest(source, out, **kw).store  # type: ignore[arg-type]


def test_depth_map_and_physical_attributes(tmp_path, raw_sim):
    store = _ingest(raw_sim.scan, tmp_path / "out", chunk_frames=3)
    group = zarr.open_group(store, mode="r")
    frames, depth = group["frames/0"], group["depth_map/0"]
    assert depth.shape == frames.shape == (4, 64, 48) and depth.chunks == frames.chunks == (3, 64, 48)
    assert depth.dtype == np.float32 and tuple(depth.metadata.dimension_names) == ("t", "y", "x")
    truth = zarr.open_group(raw_sim.truth, mode="r")
    strong = truth["amplitude"][:] > 0.2
    assert np.abs(depth[:] - truth["depth"][:])[strong].max() < 1.0
    attrs = dict(group.attrs)
    assert attrs["physical"] == {"sampling_rate_mhz": 250.0, "speed_of_sound_m_s": 1500.0,
                                 "depth_um_per_sample": 6.0, "depth_map_units": "samples"}  # fmt: skip
    assert attrs["source"]["axes"] == "tzyx"
    record = attrs["stages"]["ingest"]
    assert record["depth_map"] is True
    assert record["params"]["axes"] == "tzyx" and record["params"]["map"]["method"] == "envelope"
    assert record["params"]["map"]["baseline"] == "median"
    assert set(expected_arrays(group)) == {"frames/0", "depth_map/0"}
    assert "warnings" not in attrs


def test_chunking_does_not_change_a_bit(tmp_path, raw_sim):
    one = zarr.open_group(_ingest(raw_sim.scan, tmp_path / "a", chunk_frames=1), mode="r")
    all_ = zarr.open_group(_ingest(raw_sim.scan, tmp_path / "b", chunk_frames=4), mode="r")
    for name in ("frames", "depth_map"):
        np.testing.assert_array_equal(get_array(one, name)[:], get_array(all_, name)[:])


def test_another_reduction_is_refused_unless_overwrite(tmp_path, raw_sim):
    _ingest(raw_sim.scan, tmp_path / "out")
    other = ReadSpec(axes="tzyx", reduction=Reduction("peak-to-peak", sampling_rate=250.0, speed_of_sound=1500.0))
    with pytest.raises(StoreError, match="different ingest parameters.*map") as err:
        _ingest(raw_sim.scan, tmp_path / "out", other)
    assert "\n" not in str(err.value)
    store = _ingest(raw_sim.scan, tmp_path / "out", other, overwrite=True)
    assert zarr.open_group(store, mode="r").attrs["stages"]["ingest"]["params"]["map"]["method"] == "peak-to-peak"


def test_repair_recomputes_a_damaged_depth_map_chunk(tmp_path, raw_sim):
    store = _ingest(raw_sim.scan, tmp_path / "out", chunk_frames=2)
    register(store, get_method("none"))
    group = zarr.open_group(store, mode="r")
    before = {name: get_array(group, name)[:] for name in ("frames", "depth_map", "registered_even", "merged")}
    array = zarr.open_array(store / "depth_map" / "0", mode="r")
    chunk = store / "depth_map" / "0" / array.metadata.encode_chunk_key((1, 0, 0))
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    found = verify_outputs(tmp_path / "out")
    assert any("array depth_map/0 chunk 1" in p for p in found.problems), found.problems
    result = repair_store(store)
    assert result.ok and result.chunks_recomputed == {"ingest": [1]}
    group = zarr.open_group(store, mode="r")
    for name, want in before.items():
        np.testing.assert_array_equal(get_array(group, name)[:], want, err_msg=name)
    assert not verify_outputs(tmp_path / "out").problems


def test_plain_scans_are_stored_as_before(tmp_path):
    path = tmp_path / "s.npy"
    np.save(path, np.random.default_rng(0).random((3, 8, 6), dtype=np.float32))
    with open_scan(path) as source:
        store = ingest(source, tmp_path / "out").store
    group = zarr.open_group(store, mode="r")
    assert sorted(group.group_keys()) == ["frames"] and not list(group.array_keys())
    record = group.attrs["stages"]["ingest"]
    assert "depth_map" not in record and "physical" not in group.attrs
    assert sorted(record["params"]) == ["depth_axis", "files", "first_line", "reader", "scan_lines", "shape",
                                        "source_dtype", "source_shape", "variable"]  # fmt: skip
    assert group.attrs["source"]["axes"] == "tyx"
