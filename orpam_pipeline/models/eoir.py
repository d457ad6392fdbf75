"""EOIR for bidirectional lines: an encoder-only registration network predicting a displacement along Y.

A 2-D port of Encoder-Only Image Registration (docs/eoir.md) to the backward (moving) and forward
(fixed) half-frames:

* one small encoder, shared by both half-frames: three Conv-Norm-Act blocks (3x3 convolution,
  instance normalisation, leaky ReLU), the second and third after a 2x average-pooling, so it yields a
  three-level feature pyramid (full, 1/2, 1/4 resolution). Instance normalisation harmonises the two
  directions' contrast, which is what the paper finds the ConvNet is for;
* one flow estimator per level (same structure, own weights): the Hadamard product of the warped
  moving features and the fixed features, with a local 1-D correlation along Y (the features'
  agreement at shifts of -K..K pixels, ``correlation_radius``: the product alone cannot tell up from
  down), three Conv-Norm-Act blocks and one zero-initialised convolution giving a residual
  displacement, bounded by ``max_step`` pixels of that level;
* coarse to fine composition: the displacement of the level below is upsampled (values doubled), the
  moving features are warped by it, the residual is estimated and composed,
  ``d(y) = r(y) + d_up(y + r(y))``;
* the output is the measured backward lines resampled once, ``final = a · warp_rows(moving, d) + b``,
  with one gain ``a`` and offset ``b`` per frame fitted by least squares to the fixed half-frame: two
  numbers per frame cannot carry the fixed image's structure, so the method passes the leak check by
  construction.

Inputs of any H, W are reflect-padded to a multiple of 4 and the displacement is cropped back. The
forward returns ``(final, coarse, fields)`` like PCReg-Net-Flow, so training shares its losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig
from .pcregnet import pad_to_multiple
from .warp import warp_cols, warp_rows

ARCH = "eoir"
LEVELS = 3


@dataclass
class EOIRConfig(ModelConfig):
    """Hyper-parameters that determine the network's shape (stored in checkpoints with ``arch``)."""

    channels: int = 12
    """Feature channels of the encoder (every level)."""
    estimator_channels: int = 16
    correlation_radius: int = 3
    """Shifts -K..K (pixels of each level) of the local correlation along Y."""
    max_step: float = 3.0
    """Bound of each level's residual displacement, in pixels of that level (8 px at full resolution
    needs 2 px at 1/4; the bound leaves room for steep profiles)."""
    cross_axis: bool = False
    """Also a displacement along X (across lines, in backward-line pitches, bounded to ±1)."""
    in_moving: int = 1
    in_fixed: int = 1
    arch: str = ARCH

    def __post_init__(self) -> None:
        if self.arch != ARCH:
            raise ValueError(f"EOIRConfig arch must be {ARCH!r}, not {self.arch!r}")
        if self.channels < 1 or self.estimator_channels < 1 or self.correlation_radius < 0 or self.max_step <= 0:
            raise ValueError("channels and estimator_channels must be positive, correlation_radius >= 0, max_step > 0")
        if self.in_moving != 1 or self.in_fixed != 1:
            raise ValueError("EOIR takes one channel for the moving and one for the fixed image")



def _block(in_ch: int, out_ch: int) -> nn.Sequential:
    """Conv-Norm-Act: 3x3 convolution, instance normalisation (learned affine), leaky ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1),
        nn.InstanceNorm2d(out_ch, affine=True),
        nn.LeakyReLU(0.1, inplace=True),
    )


def correlation_y(moving: Tensor, fixed: Tensor, radius: int) -> Tensor:
    """Channel-mean products ``mean_c moving[c, y + k, x] · fixed[c, y, x]`` for k = -radius..radius,
    as (N, 2·radius + 1, H, W); rows beyond the border repeat the edge."""
    if radius == 0:
        return (moving * fixed).mean(dim=1, keepdim=True)
    padded = F.pad(moving, (0, 0, radius, radius), mode="replicate")
    h = moving.shape[-2]
    return torch.cat([(padded[:, :, k : k + h] * fixed).mean(dim=1, keepdim=True) for k in range(2 * radius + 1)], 1)


class Encoder(nn.Module):
    """Three Conv-Norm-Act blocks with 2x average pooling between them: features at 1, 1/2, 1/4."""

    def __init__(self, in_ch: int, channels: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([_block(in_ch, channels), _block(channels, channels), _block(channels, channels)])

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = [self.blocks[0](x)]
        for block in self.blocks[1:]:
            feats.append(block(F.avg_pool2d(feats[-1], 2)))
        return feats


class FlowEstimator(nn.Module):
    """Hadamard product and local correlation of two feature maps -> a bounded residual displacement."""

    def __init__(self, channels: int, hidden: int, radius: int, outputs: int) -> None:
        super().__init__()
        self.radius = radius
        in_ch = 2 * channels + 2 * radius + 1
        self.body = nn.Sequential(_block(in_ch, hidden), _block(hidden, hidden), _block(hidden, hidden))
        self.head = nn.Conv2d(hidden, outputs, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, moving: Tensor, fixed: Tensor) -> Tensor:
        x = torch.cat([moving * fixed, fixed, correlation_y(moving, fixed, self.radius)], dim=1)
        raw = self.body(x)
        with torch.autocast(raw.device.type, enabled=False):
            return self.head(raw.float())


def _upsample(d: Tensor, size: tuple[int, int], factor: float) -> Tensor:
    return factor * F.interpolate(d, size=size, mode="bilinear", align_corners=False)


def frame_gain_offset(warped: Tensor, fixed: Tensor) -> tuple[Tensor, Tensor]:
    """Least-squares ``a, b`` per frame (N, 1, 1, 1) with ``a · warped + b ≈ fixed`` (a kept positive)."""
    w, f = warped.float(), fixed.float()
    wm, fm = w.mean(dim=(2, 3), keepdim=True), f.mean(dim=(2, 3), keepdim=True)
    cov = ((w - wm) * (f - fm)).mean(dim=(2, 3), keepdim=True)
    var = ((w - wm) ** 2).mean(dim=(2, 3), keepdim=True)
    a = (cov / var.clamp_min(1e-8)).clamp_min(1e-3)
    return a, fm - a * wm


class EOIR(nn.Module):
    """Maps (moving, fixed) frames of any H, W to ``(final, coarse, fields)``.

    Inputs are (N, 1, H, W); ``final`` and ``coarse`` are (N, 1, H, W) and ``fields`` holds (N, 1, H, W)
    maps ``displacement``, ``coarse_displacement`` (pixels along Y: the full-resolution result and the
    coarsest level's, upsampled), ``gain`` and ``offset`` (constant per frame), plus ``displacement_x``
    with ``cross_axis``.
    """

    def __init__(self, config: EOIRConfig | None = None) -> None:
        super().__init__()
        self.config = config or EOIRConfig()
        cfg = self.config
        self.encoder = Encoder(1, cfg.channels)
        outputs = 2 if cfg.cross_axis else 1
        self.estimators = nn.ModuleList(
            FlowEstimator(cfg.channels, cfg.estimator_channels, cfg.correlation_radius, outputs) for _ in range(LEVELS)
        )

    def _bound(self, raw: Tensor) -> tuple[Tensor, Tensor | None]:
        dy = self.config.max_step * torch.tanh(raw[:, :1])
        dx = torch.tanh(raw[:, 1:2]) if self.config.cross_axis else None
        return dy, dx

    def forward(self, moving: Tensor, fixed: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        if moving.shape[0] != fixed.shape[0] or moving.shape[-2:] != fixed.shape[-2:]:
            raise ValueError(f"moving {tuple(moving.shape)} and fixed {tuple(fixed.shape)} differ in batch or size")
        h, w = moving.shape[-2:]
        measured = moving[:, :1].float()
        both = self.encoder(pad_to_multiple(torch.cat([moving[:, :1], fixed[:, :1]], 0), 4))
        n = moving.shape[0]
        d: Tensor | None = None
        dx: Tensor | None = None
        coarse_d: Tensor | None = None
        for level in reversed(range(LEVELS)):
            fm, ff = both[level][:n], both[level][n:]
            size = tuple(fm.shape[-2:])
            if d is None:
                d_up = fm.new_zeros((n, 1, *size), dtype=torch.float32)
                dx_up = None if not self.config.cross_axis else d_up.clone()
            else:
                d_up = _upsample(d, size, 2.0)
                dx_up = None if dx is None else _upsample(dx, size, 1.0)
            warped = warp_rows(fm, d_up).to(fm.dtype)
            if dx_up is not None:
                warped = warp_cols(warped, dx_up).to(fm.dtype)
            r, rx = self._bound(self.estimators[level](warped, ff))
            d = r + warp_rows(d_up, r)
            if rx is not None and dx_up is not None:
                dx = (rx + dx_up).clamp(-1.0, 1.0)
            if coarse_d is None:
                coarse_d = d
        assert d is not None and coarse_d is not None
        full = tuple(both[0].shape[-2:])
        d = d[..., :h, :w]
        coarse_d = _upsample(coarse_d, full, 4.0)[..., :h, :w]
        warped = warp_rows(measured, d)
        coarse = warp_rows(measured, coarse_d)
        fields: dict[str, Tensor] = {"displacement": d, "coarse_displacement": coarse_d}
        if dx is not None:
            dx = dx[..., :h, :w]
            warped = warp_cols(warped, dx)
            fields["displacement_x"] = dx
        target = fixed[:, :1].float()
        a, b = frame_gain_offset(warped, target)
        ac, bc = frame_gain_offset(coarse, target)
        fields["gain"] = a.expand(-1, -1, h, w)
        fields["offset"] = b.expand(-1, -1, h, w)
        return a * warped + b, ac * coarse + bc, fields
