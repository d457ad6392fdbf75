"""The training recipe as a torch-free dataclass: what ``orpam train`` and train workflows accept."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.fieldnames import unknown_keys
from orpam_pipeline.settings import PRECISIONS

if TYPE_CHECKING:
    from orpam_pipeline.train.loss import LossWeights

RUNTIME_FIELDS = {"device", "num_workers", "cache_frames"}
"""TrainConfig fields that may change on resume (they do not define the run's numbers)."""


@dataclass(frozen=True)
class TrainConfig:
    """Training recipe. ``steps_per_epoch=None`` = one pass over the train frames per epoch.

    ``precision``: ``"auto"`` (CUDA: bf16 if supported else fp16; CPU: fp32), ``"fp32"``, ``"fp16"``
    (CUDA only) or ``"bf16"``. ``device``: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    ``lambda_displacement > 0`` (pcregnet-flow only) adds the supervised displacement error; every
    train and val scan then needs a truth store with a ``displacement`` array. ``init`` starts from the
    weights of a checkpoint of the same architecture and config (fine-tuning) instead of random ones.
    ``freeze_batchnorm`` normalises with the (initial) running statistics and never updates them, so a
    training step computes the same function as inference. Use it for fine-tuning: with batch
    statistics of 8 crops the absolute displacement shifted by about 1 px between training and
    evaluation mode in our runs, and the validation error swung from 0.3 to 1.2 px between epochs.
    ``shift`` > 0 adds random integer shifts of up to that many rows between the moving and the fixed
    crop (``train.data``), so the network sees small and large displacements, not only the data's own.
    """

    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-5
    crop: int = 128
    steps_per_epoch: int | None = None
    val_pairs: int = 64
    seed: int = 0
    lambda_coarse: float = 0.5
    w_l1: float = 1.0
    w_mse: float = 1.0
    w_ssim: float = 1.0
    lambda_smooth: float = 0.1
    lambda_intensity: float = 0.1
    lambda_displacement: float = 0.0
    init: str | None = None
    freeze_batchnorm: bool = False
    shift: int = 0
    grad_clip: float = 1.0
    augment: bool = True
    device: str = "auto"
    precision: str = "auto"
    num_workers: int = 0
    cache_frames: int = 256

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.lr > 0, "lr must be positive"),
            (self.weight_decay >= 0, "weight_decay must not be negative"),
            (self.steps_per_epoch is None or self.steps_per_epoch >= 1, "steps_per_epoch must be at least 1"),
            (self.val_pairs >= 0, "val_pairs must not be negative"),
            (self.grad_clip > 0, "grad_clip must be positive"),
            (self.lambda_displacement >= 0, "lambda_displacement must not be negative"),
            (self.shift >= 0, "shift must not be negative"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "device must be auto, cpu, cuda or cuda:N"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.num_workers >= 0, "num_workers must not be negative"),
        ]
        for ok, message in checks:
            if not ok:
                raise OrpamError(f"train config: {message}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for checkpoints and metrics."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (``amp`` of older records is ``precision``)."""
        values = upgrade_config(values)
        unknown = unknown_keys(cls, values)
        if unknown:
            raise OrpamError(f"unknown train config keys: {', '.join(unknown)}")
        return cls(**values)

    def loss_weights(self) -> LossWeights:
        """The loss weights of this recipe."""
        from orpam_pipeline.train.loss import LossWeights

        return LossWeights(l1=self.w_l1, mse=self.w_mse, ssim=self.w_ssim, coarse=self.lambda_coarse,
                           smooth=self.lambda_smooth, intensity=self.lambda_intensity,
                           displacement=self.lambda_displacement)


def upgrade_config(values: dict[str, Any]) -> dict[str, Any]:
    """A train config recorded before ``amp`` became ``precision`` (``off`` = fp32), in today's names."""
    if "amp" not in values:
        return dict(values)
    out = {k: v for k, v in values.items() if k != "amp"}
    out.setdefault("precision", "fp32" if values["amp"] == "off" else values["amp"])
    return out
