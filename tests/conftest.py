"""Shared fixtures: small simulated sequences and stores built through the real ingest path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orpam_pipeline.geometry import odd_at_even, split
from orpam_pipeline.io import open_scan
from orpam_pipeline.register.phase import resample_columns
from orpam_pipeline.simulate import Simulation, SimulationParams, simulate
from orpam_pipeline.store.ingest import ingest_scan


def make_store(tmp: Path, frames: np.ndarray, name: str = "scan", chunk_frames: int | None = None, **kw) -> Path:
    """Save ``frames`` as .npy and ingest it; returns the store path."""
    src = tmp / "src" / f"{name}.npy"
    src.parent.mkdir(parents=True, exist_ok=True)
    np.save(src, frames)
    with open_scan(src) as source:
        return ingest_scan(source, tmp / "out", chunk_frames=chunk_frames, **kw)


@pytest.fixture(scope="session")
def small_sim() -> Simulation:
    """A realistic noisy 24-frame 128x96 sequence with known truth."""
    return simulate(SimulationParams.randomised(3, frames=24, height=128, width=96))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained PCReg-Net (base 8 channels) checkpoint: fast, for plumbing tests of learned methods."""
    import torch

    from orpam_pipeline.models.checkpoint import save_checkpoint
    from orpam_pipeline.models.pcregnet import PCRegNet, PCRegNetConfig

    torch.manual_seed(0)
    model = PCRegNet(PCRegNetConfig(base_channels=8))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model_config=model.config.to_dict(), model_state=model.state_dict())
    return path


def shifted_frames(sim_frames: np.ndarray, k: float) -> np.ndarray:
    """Frames whose backward columns show the scene (the forward lines interpolated to their places) k px
    further along Y: the displacement is k."""
    frames = np.array(sim_frames, dtype=np.float32)
    odd, even = split(frames)
    rows = np.arange(frames.shape[1], dtype=np.float32)[None, :, None]
    source = np.ascontiguousarray(odd_at_even(odd, frames.shape[-1]), dtype=np.float32)
    frames[..., 1::2] = resample_columns(source, np.broadcast_to(rows - k, source.shape))
    return frames
