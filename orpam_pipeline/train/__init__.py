"""PCReg-Net training: lazy (even → odd) pair sampling, the paper's loss, and a resumable trainer.

Submodules: ``config`` (``TrainConfig``, torch-free), ``data`` (pairs and augmentation), ``loss``
(L1 + MSE + SSIM, coarse and final), ``trainer`` (``train``). The torch-free frame readers live in
:mod:`orpam_pipeline.io.frame_reader`. Names are imported lazily so that importing this package
does not load torch.
"""

from orpam_pipeline.lazy import lazy_exports

_WHERE = {
    "PairScan": "data", "ScanPairs": "data", "TrainPairs": "data", "ValPair": "data", "normalise_pair": "data",
    "pair_images": "data", "val_pairs": "data", "LossWeights": "loss", "image_loss": "loss", "pcreg_loss": "loss",
    "ssim": "loss", "ssim_map": "loss", "TrainConfig": "config", "TrainResult": "trainer", "evaluate": "trainer",
    "train": "trainer",
}  # fmt: skip
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
