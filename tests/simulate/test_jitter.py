"""Block jitter: blocks of backward lines with their own offset, a field as truth, nothing changed without it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.geometry import split
from orpam_pipeline.register.apply_displacement import apply_displacement
from orpam_pipeline.simulate import (
    DISPLACEMENT_CONVENTION,
    FIELD_CONVENTION,
    SimulationParams,
    displacement_field,
    jitter_offsets,
    simulate,
    simulate_blocks,
    write_simulation,
)
from orpam_pipeline.simulate.sequence import min_block_lines

JITTER = {"jitter_blocks": 5, "jitter_min": 4.0, "jitter_max": 30.0}


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_offsets_are_blocks_with_bounded_jumps() -> None:
    p = SimulationParams.randomised(3, frames=6, height=64, width=96, **JITTER)
    for t in range(p.frames):
        offsets = jitter_offsets(p, t)
        assert offsets.shape == (48,)
        edges = np.flatnonzero(np.diff(offsets)) + 1
        lengths = np.diff(np.concatenate([[0], edges, [48]]))
        assert edges.size == 4 and lengths.min() >= min_block_lines(48, 5)
        steps = np.abs(np.diff(offsets)[edges - 1])
        assert steps.min() >= 4.0 and steps.max() <= 30.0 and np.abs(offsets).max() <= 30.0
    assert not np.array_equal(jitter_offsets(p, 0), jitter_offsets(p, 1))  # drawn per frame
    assert np.array_equal(jitter_offsets(p, 2), jitter_offsets(p, 2))


def test_truth_is_the_profile_plus_the_offsets_and_undoes_the_jitter() -> None:
    p = SimulationParams.randomised(5, frames=3, height=128, width=96, **JITTER).ideal()
    sim = simulate(p)
    assert sim.displacement.shape == (3, 128, 48) and sim.displacement.dtype == np.float32
    profile = displacement_field(dataclasses.replace(p, jitter_blocks=0))
    for t in range(3):
        np.testing.assert_allclose(sim.displacement[t], profile[t][:, None] + jitter_offsets(p, t)[None, :], atol=1e-4)
    np.testing.assert_allclose(displacement_field(p), sim.displacement, atol=1e-4)
    crop = 36
    registered = split(apply_displacement(sim.frames, sim.displacement))[1]
    good = _ncc(registered[:, crop:-crop], sim.even_true[:, crop:-crop])
    raw = _ncc(split(sim.frames)[1][:, crop:-crop], sim.even_true[:, crop:-crop])
    assert good > 0.99 and raw < 0.8, (good, raw)


def test_jitter_streams_like_the_rest() -> None:
    p = SimulationParams.randomised(2, frames=5, height=64, width=48, **JITTER)
    whole = simulate(p)
    blocks = list(simulate_blocks(p, 2))
    assert np.concatenate([b[3] for b in blocks]).tobytes() == whole.displacement.tobytes()
    assert np.concatenate([b[1] for b in blocks]).tobytes() == whole.frames.tobytes()
    plain = simulate(SimulationParams.randomised(2, frames=5, height=64, width=48, margin=p.margin))
    np.testing.assert_array_equal(split(plain.frames)[0], split(whole.frames)[0])  # forward lines untouched


def test_no_jitter_records_what_it_recorded_before() -> None:
    p = SimulationParams.randomised(9, frames=3, height=32, width=32)
    assert not p.jittered and not any(k.startswith("jitter") for k in p.to_dict())
    assert p.margin == 16 and simulate(p).displacement.shape == (3, 32)
    q = SimulationParams.randomised(9, frames=3, height=32, width=32, **JITTER)
    assert q.margin == 42 and q.to_dict()["jitter_blocks"] == 5 and "jitter_min" not in q.to_dict()
    assert SimulationParams.from_dict(json.loads(json.dumps(q.to_dict()))) == q
    assert dataclasses.replace(q, jitter_blocks=0).to_dict().keys() == {*p.to_dict(), "jitter_max"}


def test_bad_jitter_is_refused() -> None:
    with pytest.raises(OrpamError, match="jitter_min <= jitter_max"):
        SimulationParams(width=64, jitter_blocks=3, jitter_min=5.0, jitter_max=4.0)
    with pytest.raises(OrpamError, match="jitter_blocks must be between 0 and 10"):
        SimulationParams(width=64, jitter_blocks=11, jitter_max=10.0)
    with pytest.raises(OrpamError, match="margin"):
        simulate(SimulationParams(frames=1, height=32, width=32, jitter_blocks=2, jitter_max=30.0))


def test_write_and_cli_store_a_field(tmp_path: Path) -> None:
    p = SimulationParams.randomised(4, frames=3, height=48, width=40, **JITTER)
    paths = write_simulation(tmp_path / "w", p, chunk_frames=2)
    g = zarr.open_group(paths.truth, mode="r")
    assert g["displacement"].shape == (3, 48, 20) and g["displacement"].chunks == (2, 48, 20)
    assert tuple(g["displacement"].metadata.dimension_names) == ("t", "y", "x")
    assert g.attrs["displacement_convention"] == FIELD_CONVENTION != DISPLACEMENT_CONVENTION
    np.testing.assert_array_equal(g["displacement"][:], simulate(p).displacement)

    res = CliRunner().invoke(app, ["simulate", str(tmp_path / "c"), "--frames", "2", "--size", "64", "48",
                                   "--jitter-blocks", "3", "--jitter-max", "20"])  # fmt: skip
    assert res.exit_code == 0, res.output
    truth = zarr.open_group(tmp_path / "c" / "truth" / "sim-0000.zarr", mode="r")
    assert truth["displacement"].shape == (2, 64, 24)
    assert truth.attrs["params"]["jitter_blocks"] == 3 and truth.attrs["params"]["jitter_max"] == 20.0
