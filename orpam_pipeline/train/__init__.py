"""PCReg-Net training: lazy (even → odd) pair sampling, the paper's loss, and a resumable trainer.

Submodules: ``data`` (pairs and augmentation), ``loss`` (L1 + MSE + SSIM, coarse and final),
``trainer`` (``TrainConfig``, ``train``). The torch-free frame readers live in
:mod:`orpam_pipeline.io.frame_reader` and are re-exported here. Names are imported lazily so that
importing this package does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FrameReader": "orpam_pipeline.io.frame_reader",
    "open_frames": "orpam_pipeline.io.frame_reader",
    "PairScan": ".data",
    "ScanPairs": ".data",
    "TrainPairs": ".data",
    "ValPair": ".data",
    "normalise_pair": ".data",
    "pair_images": ".data",
    "val_pairs": ".data",
    "LossWeights": ".loss",
    "image_loss": ".loss",
    "pcreg_loss": ".loss",
    "ssim": ".loss",
    "ssim_map": ".loss",
    "TrainConfig": ".trainer",
    "TrainResult": ".trainer",
    "evaluate": ".trainer",
    "train": ".trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
