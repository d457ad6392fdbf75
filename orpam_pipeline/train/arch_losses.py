"""The losses of SAS-Net, SAS-Net-Flow and AT-Net/DT-Net: every extra term and weight, in one place.

``train.loss.model_loss`` dispatches here by architecture name (:data:`ARCH_LOSSES`). The image terms
(L1, MSE, 1 − SSIM), ``LossWeights.coarse`` and the optional supervised displacement term
(``LossWeights.displacement``) are shared with PCReg-Net; the weights below are the papers' own where
they give numbers, and our documented choices where they do not.

SAS-Net (paper: scene consistency + cycle consistency + alignment, weights not in the summary we
have; all 1): ``align`` = image loss of ``R(s_m, a_f)`` against the fixed image; ``scene`` = mean
|s_m − s_f| (both directions of one frame share one scene); ``cycle`` = mean |R(s_m, a_m) − moving|
(the input is re-rendered from its own factors) + mean |E_a(final) − a_f| (the output carries the
appearance it was rendered with).

SAS-Net-Flow: PCReg-Net-Flow's loss (images, smoothness, optional supervision) + ``scene`` = mean
|warp(s_m, d) − s_f| at 1/4 resolution: the scene consistency of the paper as an appearance-free
alignment term on the displacement.

AT-Net/DT-Net (paper eq. for Loss_total, best weights of its Table 4: λ1 = 1, λ2 = 50, λ3 = 100,
λ4 = 100): ``λ1·S(σ) − λ2·MI(final, fixed) + λ3·B(final) + λ4·MSE(coarse, warp(final, σ⁻¹))`` with
``S`` the squared gradient of the deformable field, ``B(x) = mean over pixels of [fixed < γ]·(fixed − x)²``
(background suppression; γ = 0.1 on images normalised to about [0, 1]) and σ⁻¹ the inverse field.
The paper builds σ⁻¹ by warping σ with σ and negating; in 1-D the inverse ``e`` solves
``e(y) = −σ(y + e(y))``, and one fixed-point step from ``−σ``, ``e = −σ(y − σ(y))``, is as cheap and
closer, so we use that. AT-Net's own objective, ``−λ2·MI(coarse, fixed) + λ3·B(coarse)``, is added:
the affine result enters DT-Net detached, so this term alone trains AT-Net.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor

from orpam_pipeline.models.warp import warp_rows
from orpam_pipeline.train.loss import LossWeights, displacement_error, flow_loss, gradient_energy, image_loss
from orpam_pipeline.train.mi import mutual_information


@dataclass(frozen=True)
class SASNetWeights:
    """SAS-Net's extra terms (our choice: the paper's summary gives no numbers)."""

    scene: float = 1.0
    cycle: float = 1.0


@dataclass(frozen=True)
class ATDTWeights:
    """AT-Net/DT-Net's terms: the paper's best weights (Table 4) and our background threshold."""

    smooth: float = 1.0
    mi: float = 50.0
    background: float = 100.0
    dual: float = 100.0
    threshold: float = 0.1
    """γ: fixed-image pixels below it count as background (images normalised to about [0, 1])."""
    bins: int = 32
    sigma: float = 0.5


SASNET_WEIGHTS = SASNetWeights()
ATDT_WEIGHTS = ATDTWeights()

Outputs = tuple[Tensor, Tensor, dict[str, Tensor]]


def _l1(a: Tensor, b: Tensor) -> Tensor:
    return (a.float() - b.float()).abs().mean()


def _supervised(fields: dict[str, Tensor], target: Tensor | None, weights: LossWeights) -> Tensor | None:
    if weights.displacement <= 0:
        return None
    if target is None:
        raise ValueError("displacement supervision is weighted but no target displacement was given")
    return displacement_error(fields, target, weights)


def sasnet_loss(outputs: Outputs, fixed: Tensor, weights: LossWeights = LossWeights(),
                target: Tensor | None = None, extra: SASNetWeights = SASNET_WEIGHTS) -> tuple[Tensor, dict[str, Any]]:
    """``align + scene + cycle`` (see the module docstring); supervision is refused (no displacement)."""
    if weights.displacement > 0:
        raise ValueError("displacement supervision needs an architecture that predicts a displacement, not sasnet")
    final, coarse, fields = outputs
    align, terms = image_loss(final, fixed, weights)
    scene = _l1(fields["scene_moving"], fields["scene_fixed"])
    cycle = _l1(coarse, fields["moving"]) + _l1(fields["appearance_final"], fields["appearance_fixed"])
    total = align + extra.scene * scene + extra.cycle * cycle
    return total, {"loss": total.detach(), "final": terms, "scene": scene.detach(), "cycle": cycle.detach()}


def sasnet_flow_loss(outputs: Outputs, fixed: Tensor, weights: LossWeights = LossWeights(),
                     target: Tensor | None = None, extra: SASNetWeights = SASNET_WEIGHTS) -> tuple[Tensor, dict[str, Any]]:
    """PCReg-Net-Flow's loss plus the latent scene-consistency term on the displacement."""
    final, coarse, fields = outputs
    total, terms = flow_loss(final, coarse, fields, fixed, weights, target)
    scene = _l1(fields["scene_warped"], fields["scene_fixed"])
    total = total + extra.scene * scene
    terms.update(loss=total.detach(), scene=scene.detach())
    return total, terms


def background(output: Tensor, fixed: Tensor, threshold: float) -> Tensor:
    """Mean over all pixels of ``[fixed < threshold]·(fixed − output)²`` (float32)."""
    f = fixed.float()
    return ((f < threshold).float() * (f - output.float()) ** 2).mean()


def inverse_displacement(sigma: Tensor) -> Tensor:
    """One fixed-point step towards the inverse of a Y displacement: ``−σ(y − σ(y))``."""
    return -warp_rows(sigma, -sigma)


def atdt_loss(outputs: Outputs, fixed: Tensor, weights: LossWeights = LossWeights(),
              target: Tensor | None = None, extra: ATDTWeights = ATDT_WEIGHTS) -> tuple[Tensor, dict[str, Any]]:
    """AT-Net/DT-Net's loss (module docstring) plus AT-Net's own objective and optional supervision."""
    final, coarse, fields = outputs
    f = fixed[:, :1].float()
    mi = mutual_information(final, f, extra.bins, extra.sigma).mean()
    mi_affine = mutual_information(coarse, f, extra.bins, extra.sigma).mean()
    bg = background(final, f, extra.threshold)
    bg_affine = background(coarse, f, extra.threshold)
    sigma = fields["deformable"].float()
    smooth = gradient_energy(sigma)
    dual = ((warp_rows(final, inverse_displacement(sigma)) - coarse.float()) ** 2).mean()
    total = (extra.smooth * smooth - extra.mi * mi + extra.background * bg + extra.dual * dual
             - extra.mi * mi_affine + extra.background * bg_affine)
    terms: dict[str, Any] = {"mi": mi.detach(), "mi_affine": mi_affine.detach(), "background": bg.detach(),
                             "smooth": smooth.detach(), "dual": dual.detach()}
    supervised = _supervised(fields, target, weights)
    if supervised is not None:
        total = total + weights.displacement * supervised
        terms["displacement"] = supervised.detach()
    terms["loss"] = total.detach()
    return total, terms


ARCH_LOSSES: dict[str, Callable[..., tuple[Tensor, dict[str, Any]]]] = {
    "sasnet": sasnet_loss,
    "sasnet-flow": sasnet_flow_loss,
    "atdt": atdt_loss,
}
"""Architectures whose loss is not PCReg-Net's (``(final, coarse)``) or PCReg-Net-Flow's."""


def weights_record() -> dict[str, dict[str, float]]:
    """The extra weights as plain dicts (for docs and checkpoints)."""
    return {"sasnet": asdict(SASNET_WEIGHTS), "atdt": asdict(ATDT_WEIGHTS)}


__all__ = ["ARCH_LOSSES", "ATDTWeights", "SASNetWeights", "atdt_loss", "background", "inverse_displacement",
           "sasnet_flow_loss", "sasnet_loss", "weights_record"]
