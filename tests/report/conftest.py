"""Real reports, made once per session through ``run_batch``: each kind of run the report must handle."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.simulate import SimulationParams, simulate, write_simulation


@dataclass(frozen=True)
class Run:
    """One scan's output folder and its report.json."""

    folder: Path
    report: dict

    @property
    def store(self) -> Path:
        return self.folder / "scan.zarr"


def _run(src: Path, out: Path, **options) -> Run:
    [outcome] = run_batch(src, out, RunOptions(**options))
    assert outcome.ok, outcome.error
    folder = next(p for p in out.iterdir() if (p / "report.json").is_file())
    return Run(folder, json.loads((folder / "report.json").read_text(encoding="utf-8")))


def _npy(folder: Path, name: str, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{name}.npy", np.asarray(frames, dtype=np.float32))
    return folder


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Run]:
    """``phase`` (pixel size and frame interval known), ``field`` (block jitter: a field, with truth),
    ``truth`` (a profile, with truth), ``none`` (no displacement)."""
    root = tmp_path_factory.mktemp("reports")
    sim = simulate(SimulationParams.randomised(3, frames=8, height=64, width=48))
    jitter = SimulationParams.randomised(5, frames=6, height=96, width=96, jitter_blocks=3, jitter_min=3.0, jitter_max=6.0)
    field = write_simulation(root / "sim-field", jitter, overwrite=True)
    truth = write_simulation(root / "sim-truth", SimulationParams.randomised(7, frames=8, height=64, width=64), overwrite=True)
    return {
        "phase": _run(_npy(root / "src-phase", "phase", sim.frames), root / "out-phase", method="phase",
                      pixel_size="2.5,4", frame_interval=0.05),
        "field": _run(field.scan.parent, root / "out-field", method="phase"),
        "truth": _run(truth.scan.parent, root / "out-truth", method="phase"),
        "none": _run(_npy(root / "src-none", "none", sim.frames), root / "out-none", method="none"),
    }  # fmt: skip


@pytest.fixture(scope="session")
def long_run(tmp_path_factory) -> Run:
    """2,000 frames of 32 × 32 registered with ``phase``: per-frame plots must bin them."""
    root = tmp_path_factory.mktemp("long")
    sim = simulate(SimulationParams.randomised(9, frames=2000, height=32, width=32))
    return _run(_npy(root / "src", "long", sim.frames), root / "out", method="phase")
