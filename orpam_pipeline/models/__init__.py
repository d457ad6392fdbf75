"""PCReg-Net model, BatchNorm folding for inference, and code-free checkpoints."""

from .checkpoint import load_checkpoint, load_model, save_checkpoint, sha256_file
from .fold import fold_batchnorm
from .pcregnet import PCRegNet, PCRegNetConfig, count_parameters, pad_to_multiple

__all__ = [
    "PCRegNet",
    "PCRegNetConfig",
    "count_parameters",
    "fold_batchnorm",
    "load_checkpoint",
    "load_model",
    "pad_to_multiple",
    "save_checkpoint",
    "sha256_file",
]
