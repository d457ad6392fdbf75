"""PCReg-Net and PCReg-Net-Flow models, BatchNorm folding for inference, and code-free checkpoints.

Names are imported on first access, so ``orpam_pipeline.models.architectures`` (torch-free) can be
read without importing torch.
"""

from orpam_pipeline.lazy import lazy_exports

_WHERE = {
    "load_checkpoint": "checkpoint", "load_model": "checkpoint", "save_checkpoint": "checkpoint",
    "sha256_file": "checkpoint", "fold_batchnorm": "fold", "PCRegNet": "pcregnet", "PCRegNetConfig": "pcregnet",
    "count_parameters": "pcregnet", "pad_to_multiple": "pcregnet",
}  # fmt: skip
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
