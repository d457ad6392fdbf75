"""AT-Net + multi-scale DT-Net, constrained to the displacements a bidirectional scan can have.

The paper registers with an affine network (AT-Net: five blocks of two 3x3 convolutions and a 2x2
max-pool, two fully connected layers, six affine parameters, 588 k parameters) followed by a
VoxelMorph-style U-Net (DT-Net, Leaky ReLU, a final pair of linear 3x3 convolutions, 1474 k
parameters) run as a cascade at three scales, each stage updating the field of the one before.

For OR-PAM backward lines the only geometry is a displacement along Y (the fast axis), so:

* AT-Net regresses three numbers, not six: a shift ``t`` (±``max_shift`` px), a scale ``s``
  (±``max_scale``, relative) and a shear ``k`` (±``max_shear`` px of Y per backward line), giving
  ``d_A(y, x) = t + s·(y − yc) + k·(x − xc)``. Rotation, X translation and X scaling are absent: the
  backward lines are sampled at known X positions, and a rotation would mix the two axes. The
  "spatial transformer" is ``warp_rows`` (the Keys kernel of ``register.phase``) of that displacement.
  Global average pooling replaces the flattening before the fully connected layers, so any H, W works.
* DT-Net predicts one channel (a displacement along Y) instead of two. One U-Net (shared weights, so
  the count stays at the paper's DT-Net figure) runs at 1/4, 1/2 and full resolution; stage ``k`` sees
  the moving image warped by everything so far (always one resampling of the measured lines) and the
  fixed image, both average-pooled to its scale, and predicts an update ``u`` (±``max_update`` px,
  upsampled bilinearly) composed as ``d ← u + d(y + u)``.
* The affine result enters DT-Net detached: AT-Net is trained only by its own (MI) objective on the
  coarse output, as if pre-trained and frozen, which is the paper's two-step scheme in one run.

Outputs: ``final = warp_rows(moving, d)``, ``coarse = warp_rows(moving, d_A)``; ``fields`` hold
``displacement`` (d), ``coarse_displacement`` (d_A), ``deformable`` (σ, the cascade's field relative to
the affine result: ``final(y) = coarse(y + σ(y))``) and ``affine`` (N, 3: t, s, k). Heads start at zero,
so an untrained model is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig
from .pcregnet import pad_to_multiple
from .pcregnet_flow import _fp32, _zero_conv
from .warp import warp_rows

ARCH = "atdt"


@dataclass
class ATDTConfig(ModelConfig):
    """AT-Net + DT-Net shape and bounds; the default widths land on the paper's parameter counts."""

    base_channels: int = 32
    scales: list[int] = field(default_factory=lambda: [4, 2, 1])
    """Downsampling factor of each DT-Net stage, coarse to fine (the paper's default: three)."""
    max_shift: float = 8.0
    max_scale: float = 0.05
    max_shear: float = 0.05
    max_update: float = 4.0
    """Bound of each stage's update, in full-resolution pixels."""
    arch: str = ARCH

    def __post_init__(self) -> None:
        if self.arch != ARCH:
            raise ValueError(f"ATDTConfig arch must be {ARCH!r}, not {self.arch!r}")
        self.scales = [int(s) for s in self.scales]
        if not self.scales or min(self.scales) < 1:
            raise ValueError("scales must be a non-empty list of factors of at least 1")
        if min(self.max_shift, self.max_scale, self.max_shear, self.max_update) <= 0:
            raise ValueError("the bounds must be positive")



LEAK = 0.2


def _block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 convolutions with Leaky ReLU, He-initialised for it (see :func:`_he_init`)."""
    return nn.Sequential(_he_init(nn.Conv2d(cin, cout, 3, padding=1)), nn.LeakyReLU(LEAK, inplace=True),
                         _he_init(nn.Conv2d(cout, cout, 3, padding=1)), nn.LeakyReLU(LEAK, inplace=True))


def _he_init(layer: nn.Conv2d | nn.Linear) -> nn.Conv2d | nn.Linear:
    """He (Kaiming) normal weights for Leaky ReLU and zero biases.

    With PyTorch's default initialisation the signal shrank through every block without normalisation
    (activation std 0.05 -> 0.011 through AT-Net), AT-Net's pooled features differed by 2e-6 between
    inputs, and neither network learned from the data (measured; docs/atdt.md). The paper does not say
    how its networks were initialised.
    """
    nn.init.kaiming_normal_(layer.weight, a=LEAK, nonlinearity="leaky_relu")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class ATNet(nn.Module):
    """Regresses (shift, scale, shear) of ``d_A`` from the pair, each bounded by tanh."""

    def __init__(self, c: int) -> None:
        super().__init__()
        widths = (2, c // 2, c, 2 * c, 4 * c, 4 * c)
        layers: list[nn.Module] = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [_block(cin, cout), nn.MaxPool2d(2, ceil_mode=True)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(_he_init(nn.Linear(widths[-1], c)), nn.LeakyReLU(LEAK, inplace=True))
        self.head = nn.Linear(c, 3)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, pair: Tensor) -> Tensor:
        pooled = self.features(pair).mean(dim=(2, 3))
        with torch.autocast(pair.device.type, enabled=False):
            return torch.tanh(self.head(self.fc(pooled.float())))


class DTNet(nn.Module):
    """2-D VoxelMorph-style U-Net (three poolings, Leaky ReLU) predicting a raw Y displacement.

    Widths c, 2c, 4c and 5.5c at the bottleneck (1461 k parameters at c = 32, the paper's DT-Net has
    1474 k); the output is the paper's pair of linear 3x3 convolutions, the second zero-initialised.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        enc = (c, 2 * c, 4 * c, 11 * c // 2)
        self.enc = nn.ModuleList(_block(cin, cout) for cin, cout in zip((2, *enc[:-1]), enc))
        self.dec = nn.ModuleList(_block(enc[i + 1] + enc[i], enc[i]) for i in reversed(range(len(enc) - 1)))
        self.final = nn.Conv2d(c, c, 3, padding=1)  # linear, as the paper's output pair
        self.head = _zero_conv(c, 1, 3)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.dec, reversed(skips[:-1])):
            x = block(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], dim=1))
        return _fp32(self.head, self.final(x))


def standardise(x: Tensor) -> Tensor:
    """Each image of each sample to zero mean and unit variance: what the networks see.

    Our choice (the paper does not say): without normalisation layers, inputs in [0, 1] with a mean
    near 0.25 left both networks at the untrained error after 120 supervised steps on the general
    training data; standardised, the error fell from 3.8 to 2.3 px in the same steps (measured;
    docs/atdt.md). The warps still resample the measured lines themselves.
    """
    x = x.float()
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) / (x.std(dim=(2, 3), keepdim=True) + 1e-6)


def affine_displacement(params: Tensor, h: int, w: int) -> Tensor:
    """``t + s·(y − yc) + k·(x − xc)`` as (N, 1, H, W) pixels from (N, 3) ``(t, s, k)``."""
    y = torch.arange(h, device=params.device, dtype=params.dtype) - (h - 1) / 2
    x = torch.arange(w, device=params.device, dtype=params.dtype) - (w - 1) / 2
    t, s, k = (params[:, i, None, None, None] for i in range(3))
    return t + s * y.view(1, 1, h, 1) + k * x.view(1, 1, 1, w)


class ATDT(nn.Module):
    """Maps (moving, fixed) (N, 1, H, W) to ``(final, coarse, fields)``; see the module docstring."""

    def __init__(self, config: ATDTConfig | None = None) -> None:
        super().__init__()
        self.config = config or ATDTConfig()
        self.at_net = ATNet(self.config.base_channels)
        self.dt_net = DTNet(self.config.base_channels)

    def affine(self, moving: Tensor, fixed: Tensor) -> tuple[Tensor, Tensor]:
        """AT-Net's bounded (t, s, k) (N, 3) and its displacement (N, 1, H, W)."""
        cfg = self.config
        bounds = torch.tensor([cfg.max_shift, cfg.max_scale, cfg.max_shear], device=moving.device)
        params = self.at_net(standardise(torch.cat([moving, fixed], dim=1))) * bounds
        return params, affine_displacement(params, *moving.shape[-2:])

    def forward(self, moving: Tensor, fixed: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        if moving.shape[0] != fixed.shape[0] or moving.shape[-2:] != fixed.shape[-2:]:
            raise ValueError(f"moving {tuple(moving.shape)} and fixed {tuple(fixed.shape)} differ in batch or size")
        cfg = self.config
        h, w = moving.shape[-2:]
        measured, target = moving[:, :1], fixed[:, :1]
        params, d_a = self.affine(measured, target)
        multiple = 8 * max(cfg.scales)
        m_p, f_p = pad_to_multiple(measured, multiple), pad_to_multiple(target, multiple)
        hp, wp = m_p.shape[-2:]
        d = F.pad(d_a.detach(), (0, wp - w, 0, hp - h), mode="replicate")
        sigma = torch.zeros_like(d)
        for scale in cfg.scales:
            warped = warp_rows(m_p, d)
            pair = torch.cat([warped.to(f_p.dtype), f_p], dim=1)
            if scale > 1:
                pair = F.avg_pool2d(pair, scale)
            raw = self.dt_net(standardise(pair))
            if scale > 1:
                raw = F.interpolate(raw, size=(hp, wp), mode="bilinear", align_corners=False)
            u = cfg.max_update * torch.tanh(raw)
            d = u + warp_rows(d, u)
            sigma = u + warp_rows(sigma, u)
        d, sigma = d[..., :h, :w], sigma[..., :h, :w]
        final = warp_rows(measured, d)
        coarse = warp_rows(measured, d_a)
        fields = {"displacement": d, "coarse_displacement": d_a, "deformable": sigma, "affine": params}
        return final, coarse, fields
