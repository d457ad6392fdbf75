"""Writing: files land in scans/ and truth/, truth attrs parse, streaming equals simulate()."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import zarr

import orpam_pipeline
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.simulate import DISPLACEMENT_CONVENTION, SimulationParams, simulate, write_simulation

P = SimulationParams.randomised(4, frames=7, height=48, width=40)


def test_write_layout_and_content(tmp_path: Path) -> None:
    paths = write_simulation(tmp_path, P, chunk_frames=3)
    assert paths.scan == tmp_path / "scans" / "sim-0004.npy"
    assert paths.truth == tmp_path / "truth" / "sim-0004.zarr"
    assert sorted(p.name for p in (tmp_path / "scans").iterdir()) == ["sim-0004.npy"]
    assert sorted(p.name for p in (tmp_path / "truth").iterdir()) == ["sim-0004.zarr"]

    sim = simulate(P)
    scan = np.load(paths.scan)
    assert scan.dtype == np.float32 and scan.shape == (7, 48, 40)
    assert scan.tobytes() == sim.frames.tobytes()

    g = zarr.open_group(paths.truth, mode="r")
    assert g.metadata.zarr_format == 3
    for key, ref, dims in (
        ("scene", sim.scene, ("t", "y", "x")),
        ("even_true", sim.even_true, ("t", "y", "x")),
        ("displacement", sim.displacement, ("t", "y")),
    ):
        arr = g[key]
        assert arr.dtype == np.float32
        assert arr.chunks[0] == 3 and arr.chunks[1:] == ref.shape[1:]
        assert tuple(arr.metadata.dimension_names) == dims
        np.testing.assert_array_equal(arr[:], ref)

    attrs = json.loads(json.dumps(dict(g.attrs)))
    assert SimulationParams.from_dict(attrs["params"]) == P
    assert attrs["version"] == orpam_pipeline.__version__
    assert attrs["displacement_convention"] == DISPLACEMENT_CONVENTION
    assert (tmp_path / attrs["scan_path"]) == paths.scan
    assert attrs["scan_sha256"] == hashlib.sha256(paths.scan.read_bytes()).hexdigest()


def test_existing_outputs_refused_unless_overwrite(tmp_path: Path) -> None:
    p = dataclasses.replace(P, frames=2)
    write_simulation(tmp_path, p, name="a")
    with pytest.raises(OrpamError, match="already exists") as err:
        write_simulation(tmp_path, p, name="a")
    assert "\n" not in str(err.value)
    (tmp_path / "truth" / "a.zarr").rename(tmp_path / "truth" / "moved.zarr")
    with pytest.raises(OrpamError, match="already exists"):
        write_simulation(tmp_path, p, name="a")
    paths = write_simulation(tmp_path, dataclasses.replace(p, frames=3), name="a", overwrite=True)
    assert np.load(paths.scan).shape[0] == 3
    assert zarr.open_group(paths.truth, mode="r")["scene"].shape[0] == 3


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import orpam_pipeline.simulate.sequence as seq

    real = seq.simulate_blocks

    def boom(params: SimulationParams, chunk_frames: int):
        for block in real(params, chunk_frames):
            yield block
            raise KeyboardInterrupt

    monkeypatch.setattr(seq, "simulate_blocks", boom)
    with pytest.raises(KeyboardInterrupt):
        seq.write_simulation(tmp_path, P, name="x", chunk_frames=2)
    leftovers = [p for d in ("scans", "truth") for p in (tmp_path / d).iterdir()]
    assert leftovers == []
