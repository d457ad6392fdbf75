"""Small simulated scans with ground truth and one shared evaluation of the classical methods."""

from __future__ import annotations

from pathlib import Path

import pytest

from orpam_pipeline.evaluate import EvaluateOptions, evaluate
from orpam_pipeline.simulate import SimulationParams, write_simulation

SEEDS = (0, 2, 3)
FRAMES, SIZE = 8, 96


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory) -> Path:
    """``root/scans/*.npy`` with ``root/truth/*.zarr`` beside them (the simulate layout), three scans."""
    root = tmp_path_factory.mktemp("evalsim")
    for seed in SEEDS:
        write_simulation(root, SimulationParams.randomised(seed, frames=FRAMES, height=SIZE, width=SIZE))
    return root


@pytest.fixture(scope="session")
def classical(sim_root, tmp_path_factory) -> dict:
    """One evaluation of none, copy-odd and phase on the three scans."""
    out = tmp_path_factory.mktemp("evalout")
    return evaluate(sim_root / "scans", out, EvaluateOptions(methods=("none", "copy-odd", "phase"), leak_frames=8))
