"""AT-Net + multi-scale DT-Net: parameter counts, the constrained affine part, any size, identity, losses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from orpam_pipeline.models.atdt import ATDT, ATDTConfig, affine_displacement
from orpam_pipeline.models.checkpoint import load_model, save_checkpoint
from orpam_pipeline.models.pcregnet import count_parameters
from orpam_pipeline.models.warp import warp_rows
from orpam_pipeline.train.arch_losses import (
    ATDT_WEIGHTS,
    atdt_loss,
    background,
    inverse_displacement,
)
from orpam_pipeline.train.loss import LossWeights, model_loss
from tests.models.heads import randomise

SMALL = ATDTConfig(base_channels=8)


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(2)


def randomise_heads(model: ATDT, seed: int = 0, scale: float = 0.3) -> ATDT:
    """Random AT-Net and DT-Net heads: a non-zero affine part and field."""
    randomise((model.at_net.head, model.dt_net.head), seed, scale)
    return model


def _pair(h: int = 32, w: int = 32, shift: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    fixed = torch.nn.functional.avg_pool2d(torch.rand(1, 1, h + 4, w + 4, generator=gen), 5, 1)[..., :h, :w]
    return warp_rows(fixed, torch.full_like(fixed, -shift)), fixed


def test_parameter_counts_are_the_papers() -> None:
    """AT-Net 588 k and DT-Net 1474 k trainable parameters in the paper (Table 1)."""
    model = ATDT()
    assert count_parameters(model.at_net) == pytest.approx(588e3, rel=0.02)
    assert count_parameters(model.dt_net) == pytest.approx(1474e3, rel=0.02)


def test_affine_displacement_is_shift_scale_and_shear_along_y() -> None:
    d = affine_displacement(torch.tensor([[1.0, 0.1, -0.2]]), 5, 3)
    assert d.shape == (1, 1, 5, 3)
    y = torch.arange(5.0)[:, None] - 2.0
    x = torch.arange(3.0)[None, :] - 1.0
    torch.testing.assert_close(d[0, 0], 1.0 + 0.1 * y - 0.2 * x)


@pytest.mark.parametrize("size", [(37, 29), (16, 16), (20, 45)])
def test_any_size_and_the_identity_at_initialisation(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    moving, fixed = torch.rand(2, 1, *size), torch.rand(2, 1, *size)
    final, coarse, fields = ATDT(SMALL)(moving, fixed)
    torch.testing.assert_close(final, moving, rtol=0, atol=0)
    torch.testing.assert_close(coarse, moving, rtol=0, atol=0)
    assert fields["affine"].shape == (2, 3) and float(fields["displacement"].detach().abs().max()) == 0.0


def test_bounds_and_the_output_is_one_warp_of_the_data() -> None:
    torch.manual_seed(1)
    model = randomise_heads(ATDT(SMALL), scale=0.05)  # a smooth field: the composition holds to interpolation
    moving, fixed = torch.rand(2, 1, 33, 27), torch.rand(2, 1, 33, 27)
    final, coarse, fields = model(moving, fixed)
    t, s, k = fields["affine"].abs().amax(dim=0)
    assert t <= SMALL.max_shift and s <= SMALL.max_scale and k <= SMALL.max_shear
    assert float(fields["deformable"].detach().abs().max()) > 0.05
    torch.testing.assert_close(final, warp_rows(moving, fields["displacement"]), rtol=0, atol=1e-6)
    torch.testing.assert_close(coarse, warp_rows(moving, fields["coarse_displacement"]), rtol=0, atol=1e-6)
    # d is σ composed with the affine field: final(y) = coarse(y + σ(y)) up to interpolation
    composed = fields["deformable"] + warp_rows(fields["coarse_displacement"], fields["deformable"])
    torch.testing.assert_close(fields["displacement"], composed, rtol=0, atol=1e-2)
    final.mean().backward()
    assert model.at_net.head.weight.grad is None or float(model.at_net.head.weight.grad.abs().max()) == 0.0


def test_inverse_displacement_undoes_a_smooth_field() -> None:
    y = torch.arange(64.0).view(1, 1, 64, 1).expand(1, 1, 64, 8)
    sigma = 1.5 * torch.sin(y / 10.0)
    e = inverse_displacement(sigma)
    interior = slice(8, -8)
    residual = e + warp_rows(sigma, e)  # zero for the exact inverse
    assert float(residual[..., interior, :].abs().max()) < 0.05
    assert float((e + sigma)[..., interior, :].abs().max()) > 0.1  # not simply −σ


def test_loss_terms_at_the_identity_and_the_background_term() -> None:
    moving, fixed = _pair()
    outputs = ATDT(SMALL)(moving, fixed)
    _, terms = atdt_loss(outputs, fixed)
    assert float(terms["dual"]) == pytest.approx(0.0, abs=1e-10) and float(terms["smooth"]) == 0.0
    assert float(terms["mi"]) > 0.0
    f = torch.tensor([[[[0.0, 0.05, 0.5, 1.0]]]])
    out = torch.tensor([[[[0.2, 0.05, 0.0, 0.0]]]])
    assert float(background(out, f, ATDT_WEIGHTS.threshold)) == pytest.approx(0.04 / 4)


def test_a_few_steps_lower_the_loss() -> None:
    torch.manual_seed(2)
    model = randomise_heads(ATDT(SMALL), scale=0.05)
    moving, fixed = _pair(shift=2.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss, _ = model_loss(model(moving, fixed), fixed, LossWeights(), arch="atdt")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses


def test_supervision_needs_a_target_and_checkpoint_round_trip(tmp_path: Path) -> None:
    moving, fixed = _pair()
    model = randomise_heads(ATDT(SMALL)).eval()
    outputs = model(moving, fixed)
    with pytest.raises(ValueError, match="no target displacement"):
        atdt_loss(outputs, fixed, LossWeights(displacement=1.0))
    _, terms = atdt_loss(outputs, fixed, LossWeights(displacement=1.0), torch.full_like(fixed, 1.5))
    assert "displacement" in terms
    path = tmp_path / "atdt.pt"
    save_checkpoint(path, model_config=model.config.to_dict(), model_state=model.state_dict())
    loaded, _ = load_model(path)
    torch.testing.assert_close(loaded(moving, fixed)[0], outputs[0], rtol=0, atol=0)
