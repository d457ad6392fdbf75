"""Differentiable 1-D resampling along Y (rows) with the kernel of ``register.phase.resample_rows``.

``warp_rows(image, d)[n, c, y, x] = image[n, c, y + d[n, 0, y, x], x]``, interpolated with the Keys
(a = -1/2) cubic kernel. Positions are clamped to ``[0, H - 1]`` and the four tap indices to
``[0, H - 1]``, exactly as the numpy resampler does, so a network trained with this warp and the
classical pipeline resample the measured lines identically. Gradients reach the displacement through
the kernel weights (the integer part of a position carries none), and reach the image through the
gathered samples. Everything is computed in float32 (float64 if an input is float64), also under
autocast: in bf16 a row position near 256 would be quantised to whole pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from orpam_pipeline.kernels import KEYS_OFFSETS, keys_weights

def warp_rows(image: Tensor, displacement: Tensor) -> Tensor:
    """Sample ``image`` (N, C, H, W) along H at ``y + displacement`` ((N, 1, H, W) pixels).

    Returns float32 (float64 for float64 inputs) (N, C, H, W). Rows whose source lies outside the image take the edge sample.
    """
    if image.dim() != 4 or displacement.dim() != 4:
        raise ValueError(f"warp_rows needs 4-D tensors, got {tuple(image.shape)} and {tuple(displacement.shape)}")
    n, c, h, w = image.shape
    if displacement.shape[0] != n or displacement.shape[1] != 1 or displacement.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"displacement {tuple(displacement.shape)} does not fit image {tuple(image.shape)}")
    dtype = torch.promote_types(torch.promote_types(image.dtype, displacement.dtype), torch.float32)
    with torch.autocast(image.device.type, enabled=False):
        image = image.to(dtype)
        rows = torch.arange(h, device=image.device, dtype=dtype).view(1, 1, h, 1)
        pos = (rows + displacement.to(dtype)).clamp(0.0, h - 1.0)
        base = pos.detach().floor()
        weights = keys_weights(pos - base)
        base_idx = base.long()
        out = image.new_zeros(image.shape)
        for offset, weight in zip(KEYS_OFFSETS, weights):
            idx = (base_idx + offset).clamp_(0, h - 1).expand(n, c, h, w)
            out = out + weight * torch.gather(image, 2, idx)
    return out


def warp_cols(image: Tensor, displacement: Tensor) -> Tensor:
    """Like :func:`warp_rows` along W: samples ``image[n, c, y, x + displacement[n, 0, y, x]]``."""
    return warp_rows(image.transpose(-1, -2), displacement.transpose(-1, -2)).transpose(-1, -2)
