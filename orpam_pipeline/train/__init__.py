"""PCReg-Net training: lazy (even → odd) pair sampling, the paper's loss, and a resumable trainer.

Submodules: ``frames`` (lazy frame readers, torch-free), ``data`` (pairs and augmentation),
``loss`` (L1 + MSE + SSIM, coarse and final), ``trainer`` (``TrainConfig``, ``train``). Names are
imported lazily so that ``orpam_pipeline.train.frames`` (used by manifest checks) never loads torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FrameReader": "frames",
    "open_frames": "frames",
    "PairScan": "data",
    "ScanPairs": "data",
    "TrainPairs": "data",
    "ValPair": "data",
    "normalise_pair": "data",
    "pair_images": "data",
    "val_pairs": "data",
    "LossWeights": "loss",
    "image_loss": "loss",
    "pcreg_loss": "loss",
    "ssim": "loss",
    "ssim_map": "loss",
    "TrainConfig": "trainer",
    "TrainResult": "trainer",
    "evaluate": "trainer",
    "train": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
