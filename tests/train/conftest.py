"""Small simulated datasets and manifests for the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from orpam_pipeline.manifest import create_manifest
from orpam_pipeline.simulate import SimulationParams, write_simulation


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    """Two shared CPU cores: keep torch from oversubscribing them."""
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three simulated scans (8 frames, 64x64) with truth, laid out as `orpam simulate` writes them."""
    root = tmp_path_factory.mktemp("sim")
    for seed in (11, 12, 13):
        write_simulation(root, SimulationParams.randomised(seed, frames=8, height=64, width=64))
    return root


@pytest.fixture(scope="session")
def sim_manifest(sim_dir: Path) -> Path:
    """A manifest over ``sim_dir``: two train scans, one val scan."""
    out = sim_dir.parent / "sim-manifest" / "sim.toml"
    create_manifest(sim_dir / "scans", out, val_fraction=0.34, test_fraction=0.0, seed=0, name="sim")
    return out


def coded_frames(t: int, y: int, x: int) -> np.ndarray:
    """Frames whose value encodes position: ``1000*t + 10*row + col`` (float32)."""
    tt, yy, xx = np.meshgrid(np.arange(t), np.arange(y), np.arange(x), indexing="ij")
    return (100000.0 * tt + 10.0 * yy + xx).astype(np.float32)
