"""PCReg-Net loss: zero for identical images, SSIM term equal to the metrics module's SSIM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from orpam_pipeline.metrics import ssim as ssim_reference
from orpam_pipeline.train.loss import LossWeights, image_loss, pcreg_loss, ssim


def _images(seed: int, n: int = 2, size: int = 48) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random((n, 1, size, size)), sigma=(0, 0, 2, 2))
    x = (x - x.min()) / (x.max() - x.min())
    return torch.from_numpy(x.astype(np.float32))


def test_loss_is_zero_for_identical_images() -> None:
    a = _images(0)
    total, terms = pcreg_loss(a, a.clone(), a.clone())
    assert float(total) == pytest.approx(0.0, abs=1e-6)
    assert float(terms["final"]["ssim"]) == pytest.approx(1.0, abs=1e-6)


def test_ssim_matches_metrics_module_on_the_interior() -> None:
    a, b = _images(1, n=1), _images(2, n=1)
    b = 0.7 * a + 0.3 * b
    got = float(ssim(a, b, data_range=1.0))
    want = ssim_reference(a[0, 0].double().numpy(), b[0, 0].double().numpy(), data_range=1.0)
    assert got == pytest.approx(want, abs=1e-3)
    assert abs(got - want) < 1e-5  # valid window == skimage's cropped interior


def test_loss_terms_weights_and_gradient() -> None:
    a, b = _images(3), _images(4)
    pred = b.clone().requires_grad_(True)
    w = LossWeights(l1=2.0, mse=0.5, ssim=3.0, coarse=0.25)
    total, terms = image_loss(pred, a, w)
    want = 2.0 * (b - a).abs().mean() + 0.5 * ((b - a) ** 2).mean() + 3.0 * (1 - ssim(b, a))
    assert float(total.detach()) == pytest.approx(float(want), rel=1e-5)
    total.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    full, _ = pcreg_loss(b, a, a, w)  # coarse perfect: only the final term counts
    assert float(full) == pytest.approx(float(want), rel=1e-5)
    full, _ = pcreg_loss(a, b, a, w)  # final perfect: λ times the coarse term
    assert float(full) == pytest.approx(0.25 * float(want), rel=1e-5)


def test_displacement_error_is_the_mean_absolute_error() -> None:
    from orpam_pipeline.train.loss import LossWeights, displacement_error, flow_loss

    target = torch.linspace(-3, 3, 2 * 16 * 16).reshape(2, 1, 16, 16)
    fields = {"displacement": target + 0.25, "coarse_displacement": target - 1.0,
              "gain": torch.ones_like(target), "offset": torch.zeros_like(target)}
    weights = LossWeights(coarse=0.5, displacement=2.0)
    assert float(displacement_error(fields, target, weights)) == pytest.approx(0.25 + 0.5 * 1.0)
    image = torch.rand(2, 1, 16, 16)
    with_term, terms = flow_loss(image, image, fields, image, weights, target)
    without, _ = flow_loss(image, image, fields, image, LossWeights(coarse=0.5))
    assert float(with_term - without) == pytest.approx(2.0 * 0.75, rel=1e-5)
    assert float(terms["displacement"]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no target displacement"):
        flow_loss(image, image, fields, image, weights)
