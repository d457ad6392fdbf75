"""PCReg-Net and PCReg-Net-Flow models, BatchNorm folding for inference, and code-free checkpoints.

Names are imported on first access, so ``orpam_pipeline.models.architectures`` (torch-free) can be
read without importing torch.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "load_checkpoint": "checkpoint",
    "load_model": "checkpoint",
    "save_checkpoint": "checkpoint",
    "sha256_file": "checkpoint",
    "fold_batchnorm": "fold",
    "PCRegNet": "pcregnet",
    "PCRegNetConfig": "pcregnet",
    "count_parameters": "pcregnet",
    "pad_to_multiple": "pcregnet",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
