"""Differentiable mutual information of two images by Parzen-window histograms (AT-Net/DT-Net's loss).

Each image is scaled to [0, 1] by its own minimum and maximum (detached: a rescaling does not change
MI), every pixel spreads a Gaussian of width ``sigma`` (in bins; default 0.5) over ``bins`` centres
at ``k/(bins−1)``, normalised to sum to one per pixel, and the joint histogram is the mean over pixels
of the outer product of the two weight vectors. MI is then ``Σ p_ab log(p_ab / (p_a p_b))`` in nats.

Smoothing pulls the estimate below a hard histogram's: it is close to the hard-histogram MI of the
two images each jittered by the kernel (within 0.2 nats; the rest is the kernel's discretisation), so
for two identical uniform images it is about 2.4 nats where the hard histogram gives ``log 32 = 3.47``
(``tests/train/test_mi.py`` measures both). That bias is the price of gradients: with hard bins MI is
piecewise constant in the intensities. Independent images give about 0 (less bias than hard bins).
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-10


def _unit(x: Tensor) -> Tensor:
    """(N, P) values scaled to [0, 1] per row by their detached min and max."""
    lo = x.detach().amin(dim=1, keepdim=True)
    hi = x.detach().amax(dim=1, keepdim=True)
    return (x - lo) / (hi - lo).clamp_min(EPS)


def _weights(x: Tensor, bins: int, sigma: float) -> Tensor:
    """(N, P, bins) Parzen weights of (N, P) values in [0, 1], each pixel's summing to one."""
    centres = torch.linspace(0.0, 1.0, bins, device=x.device, dtype=x.dtype)
    width = sigma / (bins - 1)
    w = torch.exp(-0.5 * ((x[..., None] - centres) / width) ** 2)
    return w / w.sum(dim=-1, keepdim=True).clamp_min(EPS)


def mutual_information(a: Tensor, b: Tensor, bins: int = 32, sigma: float = 0.5) -> Tensor:
    """MI (nats) of each pair of images in ``a`` and ``b`` (N, ...) as an (N,) float32 tensor (float64 in, float64 out)."""
    if a.shape != b.shape:
        raise ValueError(f"mutual_information needs two tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if bins < 2 or sigma <= 0:
        raise ValueError("bins must be at least 2 and sigma positive")
    dtype = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
    with torch.autocast(a.device.type, enabled=False):
        x = _unit(a.reshape(a.shape[0], -1).to(dtype))
        y = _unit(b.reshape(b.shape[0], -1).to(dtype))
        wx, wy = _weights(x, bins, sigma), _weights(y, bins, sigma)
        joint = torch.einsum("npa,npb->nab", wx, wy) / x.shape[1]
        pa = joint.sum(dim=2, keepdim=True)
        pb = joint.sum(dim=1, keepdim=True)
        return (joint * (torch.log(joint + EPS) - torch.log(pa * pb + EPS))).sum(dim=(1, 2))
