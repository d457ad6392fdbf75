"""PCReg-Net-Flow: PCReg-Net's four modules with heads that predict a displacement and intensity maps.

PCReg-Net (``models.pcregnet``) synthesises the registered image pixel by pixel, which lets it invent
structure the backward lines never measured. This variant keeps the same four modules — registration
U-Net, reference encoder, multi-scale contrast module, refinement U-Net with contrast injection at its
four decoder levels — but its outputs are fields, and the registered image is always one resampling
of the measured data:

* PCReg-Net's ``Decoder`` classes are reused with their 1x1 image head replaced by ``nn.Identity``;
  separate heads (``coarse_head``, ``residual_head``) turn the last decoder features into fields;
* the registration U-Net predicts a coarse displacement along Y, ``d0 = max_displacement·tanh(·)``;
  the coarse output is ``warp_rows(moving, d0)`` and is supervised like PCReg-Net's coarse output;
* the refinement U-Net, fed ``concat(coarse, finest contrast feature)`` as in PCReg-Net, predicts a
  residual ``d1`` (same bound) that is composed with the coarse one: ``d(y) = d1(y) + d0(y + d1(y))``
  (the coarse output at ``y + d1`` is the moving image at ``y + d1 + d0(y + d1)``);
* a 3x3 head on the refinement bottleneck (1/8 resolution, after its contrast injection) predicts a
  log-gain (bounded to ±``max_log_gain``) and an offset. With ``intensity="global"`` (default) both are
  averaged over the frame: one gain and one offset per frame, the backward channel's response. With
  ``intensity="map"`` they are upsampled bilinearly into smooth maps — but a spatial offset map can
  carry the fixed image's coarse structure into the output (measured: leak-check excess 0.42 on pure
  noise input), so maps are only for data whose response really varies across the field;
* ``final = gain · warp_rows(moving, d) + offset``.

The registration U-Net sees ``concat(moving, fixed)`` by default (``coarse_sees_fixed=True``, unlike
PCReg-Net's default): a displacement between two images cannot be estimated from one of them.

The displacement and intensity heads are initialised to zero, so an untrained model is the identity
(``d = 0``, ``gain = 1``, ``offset = 0``), and they run in float32 even under autocast.

``cross_axis=True`` adds a second output channel to both displacement heads: a displacement along X
(across lines, in units of the backward-line pitch), each bounded to ±1 and summed (clamped to ±1; at
this size first-order composition is enough), applied by a separable second warp along X after the Y
warp (``warp_cols``). It is off by default; with it the
output is two resamplings of the data, and only the Y component is reported as ``displacement``.

Inputs of any H, W are reflect-padded to a multiple of 8; the fields are cropped back and the warps
that produce the outputs run on the unpadded moving image (edge-clamped at its real border).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig
from .pcregnet import ContrastModule, Decoder, Encoder, _resize, pad_to_multiple
from .warp import warp_cols, warp_rows

ARCH = "pcregnet-flow"


@dataclass
class PCRegNetFlowConfig(ModelConfig):
    """Hyper-parameters that determine the flow network's shape (stored in checkpoints with ``arch``)."""

    base_channels: int = 32
    max_displacement: float = 8.0
    """Bound of each of the coarse and residual Y displacements, in pixels."""
    max_log_gain: float = 1.0
    """Bound of the log-gain (gain within [1/e, e])."""
    cross_axis: bool = False
    intensity: str = "global"
    """"global": one gain and offset per frame (cannot paint structure); "map": smooth spatial maps."""
    in_moving: int = 1
    in_fixed: int = 1
    coarse_sees_fixed: bool = True
    arch: str = ARCH

    def __post_init__(self) -> None:
        if self.arch != ARCH:
            raise ValueError(f"PCRegNetFlowConfig arch must be {ARCH!r}, not {self.arch!r}")
        if self.max_displacement <= 0 or self.max_log_gain <= 0:
            raise ValueError("max_displacement and max_log_gain must be positive")
        if self.intensity not in ("global", "map"):
            raise ValueError(f"intensity must be 'global' or 'map', not {self.intensity!r}")


    def channels(self) -> tuple[int, int, int, int]:
        """Channel count at the four scales (full, 1/2, 1/4, 1/8 resolution)."""
        c = self.base_channels
        return (c, 2 * c, 4 * c, 8 * c)


def _zero_conv(in_ch: int, out_ch: int, kernel: int = 1) -> nn.Conv2d:
    """A convolution that outputs zeros until trained (the identity transform for the heads)."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _fp32(head: nn.Module, x: Tensor) -> Tensor:
    """Run a head in float32, outside autocast (its outputs are positions and gains)."""
    with torch.autocast(x.device.type, enabled=False):
        return head(x.float())


class PCRegNetFlow(nn.Module):
    """Maps (moving, fixed) frames of any H, W to ``(final, coarse, fields)``.

    Inputs are (N, in_moving, H, W) and (N, in_fixed, H, W); ``final`` and ``coarse`` are (N, 1, H, W)
    and ``fields`` holds (N, 1, H, W) maps ``displacement``, ``coarse_displacement`` (pixels along Y),
    ``gain`` and ``offset`` (plus ``displacement_x`` with ``cross_axis``). The moving image's first
    channel is the one warped.
    """

    def __init__(self, config: PCRegNetFlowConfig | None = None) -> None:
        super().__init__()
        self.config = config or PCRegNetFlowConfig()
        cfg = self.config
        ch = cfg.channels()
        n_disp = 2 if cfg.cross_axis else 1
        self.reg_encoder = Encoder(cfg.in_moving + (cfg.in_fixed if cfg.coarse_sees_fixed else 0), ch)
        self.reg_decoder = Decoder(ch)
        self.reg_decoder.head = nn.Identity()
        self.coarse_head = _zero_conv(ch[0], n_disp)
        self.ref_encoder = Encoder(cfg.in_fixed, ch)
        self.contrast = ContrastModule(ch)
        self.refine_encoder = Encoder(1 + ch[0], ch)
        self.refine_decoder = Decoder(ch)
        self.refine_decoder.head = nn.Identity()
        self.residual_head = _zero_conv(ch[0], n_disp)
        self.inject = nn.ModuleList(nn.Conv2d(c, c, 1) for c in reversed(ch))
        self.intensity_head = _zero_conv(ch[-1], 2, kernel=3)

    def _bound(self, raw: Tensor) -> tuple[Tensor, Tensor | None]:
        """Y displacement (±max_displacement) and, with cross_axis, X displacement (±1)."""
        dy = self.config.max_displacement * torch.tanh(raw[:, :1])
        dx = torch.tanh(raw[:, 1:2]) if self.config.cross_axis else None
        return dy, dx

    def forward(self, moving: Tensor, fixed: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        if moving.shape[0] != fixed.shape[0] or moving.shape[-2:] != fixed.shape[-2:]:
            raise ValueError(
                f"moving {tuple(moving.shape)} and fixed {tuple(fixed.shape)} differ in batch or size"
            )
        h, w = moving.shape[-2:]
        measured = moving[:, :1]
        moving_p = pad_to_multiple(moving)
        fixed_p = pad_to_multiple(fixed)

        reg_in = torch.cat([moving_p, fixed_p], dim=1) if self.config.coarse_sees_fixed else moving_p
        reg_feats = self.reg_encoder(reg_in)
        d0_p, dx0_p = self._bound(_fp32(self.coarse_head, self.reg_decoder(reg_feats)))
        coarse_p = warp_rows(moving_p[:, :1], d0_p)
        if dx0_p is not None:
            coarse_p = warp_cols(coarse_p, dx0_p)

        contrast = self.contrast(reg_feats, self.ref_encoder(fixed_p))
        ref_feats = self.refine_encoder(torch.cat([coarse_p.to(contrast[0].dtype), contrast[0]], dim=1))
        injected = [
            proj(_resize(c, tuple(f.shape[-2:])))
            for proj, c, f in zip(self.inject, reversed(contrast), reversed(ref_feats))
        ]
        d1_p, dx1_p = self._bound(_fp32(self.residual_head, self.refine_decoder(ref_feats, injected)))
        bottleneck = ref_feats[-1] + injected[0]
        raw = _fp32(self.intensity_head, bottleneck)
        if self.config.intensity == "global":
            intensity = raw.mean(dim=(2, 3), keepdim=True).expand(-1, -1, *moving_p.shape[-2:])
        else:
            intensity = F.interpolate(raw, size=moving_p.shape[-2:], mode="bilinear", align_corners=False)

        d0, d1 = d0_p[..., :h, :w], d1_p[..., :h, :w]
        d = d1 + warp_rows(d0, d1)
        log_gain = self.config.max_log_gain * torch.tanh(intensity[:, :1, :h, :w])
        gain, offset = torch.exp(log_gain), intensity[:, 1:2, :h, :w]
        warped = warp_rows(measured, d)
        coarse = warp_rows(measured, d0)
        out_fields = {"displacement": d, "coarse_displacement": d0, "gain": gain, "offset": offset}
        if dx0_p is not None and dx1_p is not None:
            dx0, dx1 = dx0_p[..., :h, :w], dx1_p[..., :h, :w]
            dx = (dx0 + dx1).clamp(-1.0, 1.0)
            warped = warp_cols(warped, dx)
            coarse = warp_cols(coarse, dx0)
            out_fields["displacement_x"] = dx
        final = gain * warped + offset
        return final, coarse, out_fields
