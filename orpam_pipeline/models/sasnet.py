"""SAS-Net (scene-appearance separation) as published, and SAS-Net-Flow, its geometry-faithful variant.

SAS-Net models an image as ``I = R(s, a)``: a scene ``s`` shared by both scan directions and an
appearance ``a`` specific to one of them. Here:

* the scene encoder (``SceneEncoder``) is a 7x7 convolution, two stride-2 4x4 convolutions and
  residual blocks, every layer instance-normalised: instance normalisation removes each channel's
  mean and spread, i.e. the appearance, and keeps the structure (a (4c, H/4, W/4) map);
* the appearance encoder (``AppearanceEncoder``) has no normalisation, four stride-2 convolutions and
  a global average pool: a ``style_dim`` vector per image, which cannot hold where things are;
* the renderer (``Renderer``) turns a scene and an appearance into an image: residual blocks with
  adaptive instance normalisation whose scales and shifts an MLP computes from the appearance, then two
  nearest-neighbour upsamplings with 5x5 convolutions and a 7x7 output convolution.

``SASNet`` re-renders the backward lines' scene under the forward lines' appearance:
``final = R(s_moving, a_fixed)``; ``coarse = R(s_moving, a_moving)`` is the reconstruction of the input
(the cycle term of the loss). The output is synthesised, not resampled: it can invent structure.

``SASNetFlow`` keeps the factorisation only where it helps: the scene features (appearance-free) of
both images feed a small decoder that predicts a displacement along Y (a coarse one at 1/4 resolution
and a full-resolution residual, composed as in ``models.pcregnet_flow``), and the two appearance
vectors feed an MLP that predicts one gain and one offset per frame. The output is
``gain · warp_rows(moving, d) + offset``: one resampling of the measured lines and two numbers per
frame, so nothing spatial from the fixed image can reach it. Heads are zero-initialised (identity).

Inputs of any H, W are reflect-padded to a multiple of 8; outputs are
cropped back and warps run on the unpadded moving image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig
from .pcregnet import pad_to_multiple
from .pcregnet_flow import _fp32, _zero_conv
from .warp import warp_rows

ARCH = "sasnet"
FLOW_ARCH = "sasnet-flow"


@dataclass
class SASNetConfig(ModelConfig):
    """SAS-Net's shape; the defaults give 3.35 M parameters, the paper's count."""

    base_channels: int = 32
    scene_blocks: int = 4
    render_blocks: int = 3
    style_dim: int = 8
    mlp_dim: int = 256
    arch: str = ARCH

    def __post_init__(self) -> None:
        if self.arch != ARCH:
            raise ValueError(f"SASNetConfig arch must be {ARCH!r}, not {self.arch!r}")
        if min(self.base_channels, self.style_dim, self.mlp_dim) < 1 or min(self.scene_blocks, self.render_blocks) < 0:
            raise ValueError("SAS-Net widths must be positive and block counts not negative")


@dataclass
class SASNetFlowConfig(ModelConfig):
    """SAS-Net-Flow's shape and the bounds of its fields."""

    base_channels: int = 32
    scene_blocks: int = 2
    style_dim: int = 8
    max_displacement: float = 8.0
    """Bound of each of the coarse and residual Y displacements, in pixels."""
    max_log_gain: float = 1.0
    arch: str = FLOW_ARCH

    def __post_init__(self) -> None:
        if self.arch != FLOW_ARCH:
            raise ValueError(f"SASNetFlowConfig arch must be {FLOW_ARCH!r}, not {self.arch!r}")
        if self.max_displacement <= 0 or self.max_log_gain <= 0:
            raise ValueError("max_displacement and max_log_gain must be positive")


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2 if stride == 1 else 1, padding_mode="reflect")


class _ResBlock(nn.Module):
    """Two 3x3 convolutions with instance normalisation and a skip connection."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(inplace=True),
                                  _conv(ch, ch, 3), nn.InstanceNorm2d(ch))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SceneEncoder(nn.Module):
    """Instance-normalised features at full, 1/2 and 1/4 resolution (the last one is the scene)."""

    def __init__(self, in_ch: int, c: int, blocks: int) -> None:
        super().__init__()
        self.full = nn.Sequential(_conv(in_ch, c, 7), nn.InstanceNorm2d(c), nn.ReLU(inplace=True))
        self.down1 = nn.Sequential(_conv(c, 2 * c, 4, 2), nn.InstanceNorm2d(2 * c), nn.ReLU(inplace=True))
        self.down2 = nn.Sequential(_conv(2 * c, 4 * c, 4, 2), nn.InstanceNorm2d(4 * c), nn.ReLU(inplace=True),
                                     *(_ResBlock(4 * c) for _ in range(blocks)))

    def forward(self, x: Tensor) -> list[Tensor]:
        f0 = self.full(x)
        f1 = self.down1(f0)
        return [f0, f1, self.down2(f1)]


class AppearanceEncoder(nn.Module):
    """Un-normalised convolutions, global average pooling: one ``style_dim`` vector per image.

    Downsampling is average pooling (ceil mode), so images of any size down to 1x1 at the end pass.
    """

    def __init__(self, in_ch: int, c: int, style_dim: int) -> None:
        super().__init__()
        widths = (c, 2 * c, 4 * c, 4 * c, 4 * c)
        layers: list[nn.Module] = [_conv(in_ch, c, 7), nn.ReLU(inplace=True)]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.AvgPool2d(2, ceil_mode=True), nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(widths[-1], style_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x).mean(dim=(2, 3)))


def adain(x: Tensor, scale: Tensor, shift: Tensor, eps: float = 1e-5) -> Tensor:
    """Adaptive instance normalisation: ``x`` normalised per channel, then ``scale·x̂ + shift`` ((N, C))."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = (x.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return (x - mean) / std * scale[..., None, None] + shift[..., None, None]


class _AdaINBlock(nn.Module):
    """A residual block whose two normalisations take their statistics from the appearance."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = _conv(ch, ch, 3), _conv(ch, ch, 3)

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        s1, b1, s2, b2 = params.chunk(4, dim=1)
        y = F.relu(adain(self.conv1(x), 1 + s1, b1))
        return x + adain(self.conv2(y), 1 + s2, b2)


class Renderer(nn.Module):
    """``R(s, a)``: AdaIN residual blocks driven by the appearance, then upsampling to an image."""

    def __init__(self, c: int, blocks: int, style_dim: int, mlp_dim: int) -> None:
        super().__init__()
        ch = 4 * c
        self.ch = ch
        self.blocks = nn.ModuleList(_AdaINBlock(ch) for _ in range(blocks))
        self.mlp = nn.Sequential(nn.Linear(style_dim, mlp_dim), nn.ReLU(inplace=True), nn.Linear(mlp_dim, mlp_dim),
                                 nn.ReLU(inplace=True), nn.Linear(mlp_dim, 4 * ch * blocks))
        self.up = nn.Sequential(nn.Upsample(scale_factor=2.0), _conv(ch, 2 * c, 5), nn.ReLU(inplace=True),
                                nn.Upsample(scale_factor=2.0), _conv(2 * c, c, 5), nn.ReLU(inplace=True),
                                _conv(c, 1, 7))

    def forward(self, scene: Tensor, appearance: Tensor) -> Tensor:
        params = self.mlp(appearance).chunk(max(1, len(self.blocks)), dim=1)
        x = scene
        for block, p in zip(self.blocks, params):
            x = block(x, p)
        return self.up(x)


def _check_pair(moving: Tensor, fixed: Tensor) -> None:
    if moving.shape[0] != fixed.shape[0] or moving.shape[-2:] != fixed.shape[-2:]:
        raise ValueError(f"moving {tuple(moving.shape)} and fixed {tuple(fixed.shape)} differ in batch or size")


class SASNet(nn.Module):
    """Maps (moving, fixed) (N, 1, H, W) to ``(final, coarse, fields)`` as the paper does (pixel output).

    ``fields`` holds what the loss needs: ``scene_moving``, ``scene_fixed`` (N, 4c, H'/4, W'/4 of the padded
    size), ``appearance_moving``, ``appearance_fixed``, ``appearance_final`` (N, style_dim) and ``moving``.
    """

    def __init__(self, config: SASNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or SASNetConfig()
        cfg = self.config
        self.scene = SceneEncoder(1, cfg.base_channels, cfg.scene_blocks)
        self.appearance = AppearanceEncoder(1, cfg.base_channels, cfg.style_dim)
        self.renderer = Renderer(cfg.base_channels, cfg.render_blocks, cfg.style_dim, cfg.mlp_dim)

    def forward(self, moving: Tensor, fixed: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        _check_pair(moving, fixed)
        h, w = moving.shape[-2:]
        measured = moving[:, :1]
        m, f = pad_to_multiple(measured, 8), pad_to_multiple(fixed[:, :1], 8)
        s_m, s_f = self.scene(m)[-1], self.scene(f)[-1]
        a_m, a_f = self.appearance(m), self.appearance(f)
        final_p = self.renderer(s_m, a_f)
        final = final_p[..., :h, :w].float()
        coarse = self.renderer(s_m, a_m)[..., :h, :w].float()
        fields = {"scene_moving": s_m, "scene_fixed": s_f, "appearance_moving": a_m, "appearance_fixed": a_f,
                  "appearance_final": self.appearance(final_p), "moving": measured}
        return final, coarse, fields


class SASNetFlow(nn.Module):
    """Maps (moving, fixed) (N, 1, H, W) to ``(final, coarse, fields)``: a warp of ``moving`` and a per-frame gain.

    ``fields``: ``displacement``, ``coarse_displacement`` (pixels along Y), ``gain``, ``offset`` (N, 1, H, W,
    constant per frame) and, for the scene-consistency term, ``scene_warped`` (the moving scene warped by
    the displacement at 1/4 resolution) and ``scene_fixed``. Both scenes are detached: that term trains
    the displacement only, so the encoder cannot satisfy it by collapsing to a constant.
    """

    def __init__(self, config: SASNetFlowConfig | None = None) -> None:
        super().__init__()
        self.config = config or SASNetFlowConfig()
        cfg = self.config
        c = cfg.base_channels
        self.scene = SceneEncoder(1, c, cfg.scene_blocks)
        self.appearance = AppearanceEncoder(1, c, cfg.style_dim)
        act = nn.LeakyReLU(0.2, inplace=True)
        self.dec_quarter = nn.Sequential(_conv(8 * c, 4 * c, 3), act)
        self.coarse_head = _zero_conv(4 * c, 1, 3)
        self.dec_half = nn.Sequential(_conv(4 * c + 4 * c, 2 * c, 3), nn.LeakyReLU(0.2, inplace=True))
        self.dec_full = nn.Sequential(_conv(2 * c + 2 * c, c, 3), nn.LeakyReLU(0.2, inplace=True))
        self.residual_head = _zero_conv(c, 1, 3)
        self.intensity = nn.Sequential(nn.Linear(2 * cfg.style_dim, 4 * c), nn.ReLU(inplace=True))
        self.intensity_head = nn.Linear(4 * c, 2)
        nn.init.zeros_(self.intensity_head.weight)
        nn.init.zeros_(self.intensity_head.bias)

    def _up(self, x: Tensor, like: Tensor) -> Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, moving: Tensor, fixed: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        _check_pair(moving, fixed)
        cfg = self.config
        h, w = moving.shape[-2:]
        measured = moving[:, :1]
        m, f = pad_to_multiple(measured, 8), pad_to_multiple(fixed[:, :1], 8)
        fm, ff = self.scene(m), self.scene(f)
        x = self.dec_quarter(torch.cat([fm[2], ff[2]], dim=1))
        d0_q = cfg.max_displacement * torch.tanh(_fp32(self.coarse_head, x))
        x = self.dec_half(torch.cat([self._up(x, fm[1]), fm[1], ff[1]], dim=1))
        x = self.dec_full(torch.cat([self._up(x, fm[0]), fm[0], ff[0]], dim=1))
        d1_p = cfg.max_displacement * torch.tanh(_fp32(self.residual_head, x))
        d0_p = self._up(d0_q, m)
        d_p = d1_p + warp_rows(d0_p, d1_p)

        with torch.autocast(m.device.type, enabled=False):
            a = torch.cat([self.appearance(m), self.appearance(f)], dim=1).float()
            raw = self.intensity_head(self.intensity(a))
        log_gain = cfg.max_log_gain * torch.tanh(raw[:, :1])
        shape = (-1, 1, h, w)
        gain = torch.exp(log_gain)[..., None, None].expand(shape)
        offset = raw[:, 1:2, None, None].expand(shape)

        d, d0 = d_p[..., :h, :w], d0_p[..., :h, :w]
        final = gain * warp_rows(measured, d) + offset
        coarse = warp_rows(measured, d0)
        d_q = F.avg_pool2d(d_p, 4) / 4.0
        fields = {"displacement": d, "coarse_displacement": d0, "gain": gain, "offset": offset,
                  "scene_warped": warp_rows(fm[2].detach().float(), d_q), "scene_fixed": ff[2].detach().float()}
        return final, coarse, fields
