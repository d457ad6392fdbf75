"""PCReg-Net (docs/pcregnet.md): coarse registration U-Net plus contrast-guided refinement U-Net.

Design decisions the paper leaves open, fixed here:

* The registration U-Net sees only the moving image by default
  (``coarse_sees_fixed=False``): the paper says its encoder "learns transformation-relevant
  features from the moving image" while a separate encoder captures the fixed image, and
  the contrast module exists precisely to bring the fixed image in. Setting
  ``coarse_sees_fixed=True`` feeds ``concat(moving, fixed)`` instead (+288 parameters).
* "Four decoder levels" of the refinement U-Net are the bottleneck (1/8 scale, 256 ch)
  and the three up-sampling blocks (128, 64, 32 ch); each receives a residual 1x1
  projection (with bias) of the same-scale contrast feature, resized bilinearly.
* Convolutions followed by BatchNorm carry no bias (BN's shift makes it redundant).

With the defaults the model has 2,598,914 parameters (paper: 2.56 M).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig

MULTIPLE = 8
"""Spatial sizes are padded to this multiple so the three 2x max-pools divide evenly."""


@dataclass
class PCRegNetConfig(ModelConfig):
    """Hyper-parameters that determine the network's shape (stored in checkpoints)."""

    base_channels: int = 32
    in_moving: int = 1
    in_fixed: int = 1
    coarse_sees_fixed: bool = False


    def channels(self) -> tuple[int, int, int, int]:
        """Channel count at the four scales (full, 1/2, 1/4, 1/8 resolution)."""
        c = self.base_channels
        return (c, 2 * c, 4 * c, 8 * c)


def conv_block(in_ch: int, out_ch: int, kernel: int = 3) -> nn.Sequential:
    """Conv-BN-ReLU as a ``Sequential`` so :func:`fold_batchnorm` can find the pair."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize to ``size`` (no-op when it already matches)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class Encoder(nn.Module):
    """Four single-conv levels with 2x max-pool between them; returns all four features."""

    def __init__(self, in_ch: int, channels: tuple[int, int, int, int]) -> None:
        super().__init__()
        ins = (in_ch, *channels[:-1])
        self.levels = nn.ModuleList(conv_block(i, o) for i, o in zip(ins, channels))

    def forward(self, x: Tensor) -> list[Tensor]:
        feats: list[Tensor] = []
        for i, level in enumerate(self.levels):
            if i:
                x = F.max_pool2d(x, 2)
            x = level(x)
            feats.append(x)
        return feats


class Decoder(nn.Module):
    """Bilinear up-sampling, skip concatenation and one conv block per level, then 1x1 to 1 ch.

    ``inject`` (optional) holds one tensor per decoder level, deepest first, added to
    that level's features: the bottleneck, then each up-sampling block's output.
    """

    def __init__(self, channels: tuple[int, int, int, int]) -> None:
        super().__init__()
        deep = list(reversed(channels))
        self.blocks = nn.ModuleList(
            conv_block(deep[i] + deep[i + 1], deep[i + 1]) for i in range(len(deep) - 1)
        )
        self.head = nn.Conv2d(channels[0], 1, 1)

    def forward(self, feats: list[Tensor], inject: list[Tensor] | None = None) -> Tensor:
        x = feats[-1]
        if inject is not None:
            x = x + inject[0]
        for i, block in enumerate(self.blocks):
            skip = feats[-2 - i]
            x = block(torch.cat([_resize(x, tuple(skip.shape[-2:])), skip], dim=1))
            if inject is not None:
                x = x + inject[i + 1]
        return self.head(x)


class ContrastModule(nn.Module):
    """Per scale: concat(registration, reference) -> 1x1 conv -> BN -> ReLU back to C channels."""

    def __init__(self, channels: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.fuse = nn.ModuleList(conv_block(2 * c, c, kernel=1) for c in channels)

    def forward(self, reg: list[Tensor], ref: list[Tensor]) -> list[Tensor]:
        return [f(torch.cat([a, b], dim=1)) for f, a, b in zip(self.fuse, reg, ref)]


def pad_to_multiple(x: Tensor, multiple: int = MULTIPLE) -> Tensor:
    """Pad bottom/right of ``x`` so H and W are multiples of ``multiple``.

    Reflect padding where possible (no artificial edges); replicate on a side too small
    to reflect (padding >= size). Undo with ``x[..., :H, :W]``.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_w:
        x = F.pad(x, (0, pad_w, 0, 0), mode="reflect" if pad_w < w else "replicate")
    if pad_h:
        x = F.pad(x, (0, 0, 0, pad_h), mode="reflect" if pad_h < h else "replicate")
    return x


class PCRegNet(nn.Module):
    """Maps (moving, fixed) frames of any H, W to ``(final, coarse)`` registered frames.

    Inputs are (N, in_moving, H, W) and (N, in_fixed, H, W); both outputs are (N, 1, H, W).
    """

    def __init__(self, config: PCRegNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or PCRegNetConfig()
        ch = self.config.channels()
        cfg = self.config
        self.reg_encoder = Encoder(cfg.in_moving + (cfg.in_fixed if cfg.coarse_sees_fixed else 0), ch)
        self.reg_decoder = Decoder(ch)
        self.ref_encoder = Encoder(self.config.in_fixed, ch)
        self.contrast = ContrastModule(ch)
        self.refine_encoder = Encoder(1 + ch[0], ch)
        self.refine_decoder = Decoder(ch)
        self.inject = nn.ModuleList(nn.Conv2d(c, c, 1) for c in reversed(ch))

    def forward(self, moving: Tensor, fixed: Tensor) -> tuple[Tensor, Tensor]:
        if moving.shape[0] != fixed.shape[0] or moving.shape[-2:] != fixed.shape[-2:]:
            raise ValueError(
                f"moving {tuple(moving.shape)} and fixed {tuple(fixed.shape)} "
                "differ in batch or size"
            )
        h, w = moving.shape[-2:]
        moving = pad_to_multiple(moving)
        fixed = pad_to_multiple(fixed)

        reg_in = torch.cat([moving, fixed], dim=1) if self.config.coarse_sees_fixed else moving
        reg_feats = self.reg_encoder(reg_in)
        coarse = self.reg_decoder(reg_feats)

        contrast = self.contrast(reg_feats, self.ref_encoder(fixed))
        ref_feats = self.refine_encoder(torch.cat([coarse, contrast[0]], dim=1))
        injected = [
            proj(_resize(c, tuple(f.shape[-2:])))
            for proj, c, f in zip(self.inject, reversed(contrast), reversed(ref_feats))
        ]
        final = self.refine_decoder(ref_feats, injected)
        return final[..., :h, :w], coarse[..., :h, :w]


def count_parameters(model: nn.Module) -> int:
    """Total number of parameter elements (trainable or not)."""
    return sum(p.numel() for p in model.parameters())
