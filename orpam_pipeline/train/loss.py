"""PCReg-Net training loss (paper §3.6): ``L = L(final) + λ·L(coarse)``, ``L = w1·L1 + w2·MSE + w3·(1 − SSIM)``.

The paper names the three terms and an auxiliary weight λ on the coarse output but its extracted
text lost the numbers, so we choose and document: ``w1 = w2 = w3 = 1`` (each term is O(0.01–0.1) on
images normalised to about [0, 1], none dominates) and ``λ = 0.5`` (the coarse output guides the
registration U-Net without outweighing the final output).

SSIM is differentiable and matches docs/metrics.md / ``orpam_pipeline.metrics.ssim`` on the interior: an
11×11 Gaussian window (σ 1.5, normalised), K1 = 0.01, K2 = 0.03 and data range 1.0 (the images are
normalised by the fixed image's robust range, see ``train.data``). The window is applied without
padding ("valid"), which is exactly the region skimage keeps after cropping its 5-pixel border.
Everything is computed in float32 even under autocast.

PCReg-Net-Flow (``models.pcregnet_flow``) adds regularisers on its fields to the same image loss:
``λ_smooth·(S(d) + λ·S(d0)) + λ_int·(S(log gain) + S(offset))`` with ``S(f) = mean |∂y f|² + mean |∂x f|²``
(forward differences), ``d`` the final and ``d0`` the coarse displacement in pixels. Defaults
``λ_smooth = λ_int = 0.1``: a displacement that varies by 0.1 px per row costs 1e-3, small next to the
image terms, while pixel-scale jitter (|∂d| ~ 1) costs as much as they do. The intensity maps are
already smooth by construction (predicted at 1/8 resolution); their term keeps them from following
noise. By default training stays self-supervised: no true displacement is used.

Optional supervision (``λ_disp > 0``, simulated data whose truth stores hold the displacement): adds
``λ_disp·(|d − d*| + λ·|d0 − d*|)`` (mean absolute error in pixels). The photometric loss alone has
its minimum at the true displacement but, with a CNN, converges slowly on a CPU budget; the direct
term reaches sub-pixel accuracy in far fewer steps. It needs ground truth, so lab data train without it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms and of the auxiliary coarse loss."""

    l1: float = 1.0
    mse: float = 1.0
    ssim: float = 1.0
    coarse: float = 0.5
    smooth: float = 0.1
    """PCReg-Net-Flow only: weight of the displacement smoothness term."""
    intensity: float = 0.1
    """PCReg-Net-Flow only: weight of the gain/offset smoothness term."""
    displacement: float = 0.0
    """PCReg-Net-Flow only: weight of the supervised displacement error (0 = self-supervised)."""

    def to_dict(self) -> dict[str, float]:
        """Plain dict (for checkpoints and metrics)."""
        return asdict(self)


def _window(device: torch.device) -> torch.Tensor:
    """Separable normalised Gaussian taps (11,), float32."""
    x = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    return (g / g.sum()).to(device=device, dtype=torch.float32)


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Valid Gaussian filtering of ``(N, C, H, W)``, each channel separately (two 1-D passes)."""
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def ssim_map(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Local SSIM of ``(N, C, H, W)`` images on the valid interior ``(N, C, H−10, W−10)``."""
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"ssim_map needs two (N, C, H, W) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if min(a.shape[-2:]) < 2 * SSIM_RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least 11x11, got {tuple(a.shape[-2:])}")
    a, b = a.float(), b.float()
    g = _window(a.device)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_a, mu_b = _blur(a, g), _blur(b, g)
    va = _blur(a * a, g) - mu_a * mu_a
    vb = _blur(b * b, g) - mu_b * mu_b
    vab = _blur(a * b, g) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * vab + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (va + vb + c2))


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM over the batch (scalar tensor)."""
    return ssim_map(a, b, data_range).mean()


def image_loss(pred: torch.Tensor, target: torch.Tensor,
               weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``w1·L1 + w2·MSE + w3·(1 − SSIM)`` and its detached terms (float32 throughout, no device sync)."""
    p, t = pred.float(), target.float()
    l1 = (p - t).abs().mean()
    mse = ((p - t) ** 2).mean()
    s = ssim(p, t)
    total = weights.l1 * l1 + weights.mse * mse + weights.ssim * (1.0 - s)
    return total, {"l1": l1.detach(), "mse": mse.detach(), "ssim": s.detach()}


def pcreg_loss(final: torch.Tensor, coarse: torch.Tensor, fixed: torch.Tensor,
               weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict[str, Any]]:
    """``L(final, fixed) + λ·L(coarse, fixed)``; the second value holds detached terms for logging."""
    lf, terms_f = image_loss(final, fixed, weights)
    lc, terms_c = image_loss(coarse, fixed, weights)
    total = lf + weights.coarse * lc
    return total, {"loss": total.detach(), "final": terms_f, "coarse": terms_c}


def gradient_energy(field: torch.Tensor) -> torch.Tensor:
    """``mean |∂y f|² + mean |∂x f|²`` of ``(N, C, H, W)`` maps (forward differences, float32)."""
    f = field.float()
    dy = f[..., 1:, :] - f[..., :-1, :]
    dx = f[..., :, 1:] - f[..., :, :-1]
    total = f.new_zeros(())
    if dy.numel():
        total = total + (dy * dy).mean()
    if dx.numel():
        total = total + (dx * dx).mean()
    return total


def displacement_error(fields: dict[str, torch.Tensor], target: torch.Tensor,
                       weights: LossWeights = LossWeights()) -> torch.Tensor:
    """``|d − d*| + λ·|d0 − d*|`` averaged over pixels (float32), ``target`` ``(N, 1, H, W)`` pixels."""
    t = target.float()
    final = (fields["displacement"].float() - t).abs().mean()
    coarse = (fields["coarse_displacement"].float() - t).abs().mean()
    return final + weights.coarse * coarse


def flow_loss(final: torch.Tensor, coarse: torch.Tensor, fields: dict[str, torch.Tensor], fixed: torch.Tensor,
              weights: LossWeights = LossWeights(),
              target_displacement: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """PCReg-Net-Flow loss: :func:`pcreg_loss` plus smoothness terms (and the supervised term if weighted)."""
    image, terms = pcreg_loss(final, coarse, fixed, weights)
    smooth = gradient_energy(fields["displacement"]) + weights.coarse * gradient_energy(fields["coarse_displacement"])
    intensity = gradient_energy(torch.log(fields["gain"].float())) + gradient_energy(fields["offset"])
    total = image + weights.smooth * smooth + weights.intensity * intensity
    if weights.displacement > 0:
        if target_displacement is None:
            raise ValueError("displacement supervision is weighted but no target displacement was given")
        supervised = displacement_error(fields, target_displacement, weights)
        total = total + weights.displacement * supervised
        terms["displacement"] = supervised.detach()
    terms.update(loss=total.detach(), smooth=smooth.detach(), intensity=intensity.detach())
    return total, terms


def model_loss(outputs: tuple[Any, ...], fixed: torch.Tensor, weights: LossWeights = LossWeights(),
               target_displacement: torch.Tensor | None = None, arch: str | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """The loss of an architecture from its forward outputs: ``(final, coarse)`` or ``(final, coarse, fields)``.

    Architectures with losses of their own (``train.arch_losses.ARCH_LOSSES``) are picked by ``arch``.
    """
    if arch is not None:
        from orpam_pipeline.train.arch_losses import ARCH_LOSSES

        special = ARCH_LOSSES.get(arch)
        if special is not None:
            return special(outputs, fixed, weights, target_displacement)
    if len(outputs) == 3:
        return flow_loss(outputs[0], outputs[1], outputs[2], fixed, weights, target_displacement)
    if weights.displacement > 0:
        raise ValueError("displacement supervision needs an architecture that predicts a displacement (pcregnet-flow)")
    final, coarse = outputs
    return pcreg_loss(final, coarse, fixed, weights)
