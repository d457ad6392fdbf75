"""Correct settings give no warning on the held-out benchmark and on random simulated scans; the same
scans read with a wrong setting give the warning that names it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orpam_pipeline.evaluate.benchmark import BENCHMARK_SCANS, ensure_benchmark
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.simulate import SimulationParams, simulate

RANDOM_SEEDS = tuple(range(31, 39))


def warned(outcomes) -> dict[str, list[str]]:
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    return {o.name: [w["code"] for w in o.warnings] for o in outcomes}


def _benchmark(tmp_path: Path, frames: int) -> None:
    root = tmp_path / "bench"
    ensure_benchmark(root, frames=frames)
    found = warned(run_batch(root / "scans", tmp_path / "out", RunOptions(method="phase")))
    assert found == {s.name: [] for s in BENCHMARK_SCANS}


def test_no_warning_on_the_held_out_benchmark(tmp_path):
    _benchmark(tmp_path, frames=8)


@pytest.mark.slow
def test_no_warning_on_the_full_held_out_benchmark(tmp_path):
    _benchmark(tmp_path, frames=48)


@pytest.fixture(scope="module")
def random_scans(tmp_path_factory) -> dict[str, np.ndarray]:
    """Random simulated scans of random sizes (randomised appearance, displacement and noise)."""
    scans = {}
    for seed in RANDOM_SEEDS:
        rng = np.random.default_rng(seed)
        height, width = (int(v) for v in rng.integers(48, 160, size=2))
        params = SimulationParams.randomised(seed, frames=int(rng.integers(3, 12)), height=height, width=width)
        scans[f"r{seed}"] = simulate(params).frames
    return scans


def _write(folder: Path, scans: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for name, frames in scans.items():
        np.save(folder / f"{name}.npy", frames)
    return folder


def test_no_warning_on_random_simulated_scans(tmp_path, random_scans):
    found = warned(run_batch(_write(tmp_path / "s", random_scans), tmp_path / "out", RunOptions(method="phase")))
    assert found == {name: [] for name in random_scans}


def test_the_same_scans_with_wrong_settings_are_caught(tmp_path, random_scans):
    some = dict(list(random_scans.items())[:4])
    transposed = {f"{k}-t": v.transpose(0, 2, 1) for k, v in some.items()}
    flipped = {}
    for k, v in some.items():
        f = v.copy()
        f[:, :, 1::2] = f[:, ::-1, 1::2]
        flipped[f"{k}-r"] = f
    found = warned(run_batch(_write(tmp_path / "s", {**transposed, **flipped}), tmp_path / "out", RunOptions()))
    for name in transposed:
        assert "lines-are-rows" in found[name], found
    for name in flipped:
        assert "backward-reversed" in found[name] and "lines-are-rows" not in found[name], found
    again = warned(run_batch(tmp_path / "s", tmp_path / "out2", RunOptions(scan_lines="rows", reverse_backward=False)))
    for name in transposed:
        assert "lines-are-rows" not in again[name], again
