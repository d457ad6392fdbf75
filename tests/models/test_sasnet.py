"""SAS-Net (as published) and SAS-Net-Flow: parameter count, any size, identity, a warp output, training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from orpam_pipeline.models.checkpoint import load_model, save_checkpoint
from orpam_pipeline.models.pcregnet import count_parameters
from orpam_pipeline.models.sasnet import (
    SASNet,
    SASNetConfig,
    SASNetFlow,
    SASNetFlowConfig,
    adain,
)
from orpam_pipeline.models.warp import warp_rows
from orpam_pipeline.train.loss import model_loss
from tests.models.heads import randomise

SMALL = SASNetConfig(base_channels=8, scene_blocks=1, render_blocks=1, mlp_dim=32)
SMALL_FLOW = SASNetFlowConfig(base_channels=8, scene_blocks=1)


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(2)


def _pair(h: int = 32, w: int = 24, shift: float = 1.5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random image and the same image shifted ``shift`` px along Y with another gain and offset."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 1, h + 4, w + 4, generator=gen), 5, 1)
    fixed = base[..., :h, :w].clone()
    moving = 0.7 * warp_rows(fixed, torch.full_like(fixed, -shift)) + 0.1
    return moving, fixed


def randomise_heads(model: SASNetFlow, seed: int = 0, scale: float = 0.2) -> SASNetFlow:
    """Random displacement and intensity heads: non-trivial fields for plumbing tests."""
    randomise((model.coarse_head, model.residual_head, model.intensity_head), seed, scale)
    return model


def test_parameter_count_is_the_papers() -> None:
    """SAS-Net: 3.35 M parameters in the paper; the default config lands within 1 % (3.342 M)."""
    assert count_parameters(SASNet()) == pytest.approx(3.35e6, rel=0.01)
    assert count_parameters(SASNetFlow()) < count_parameters(SASNet())  # no renderer, a small decoder


@pytest.mark.parametrize("size", [(37, 29), (16, 16), (20, 45)])
@pytest.mark.parametrize("cls, config", [(SASNet, SMALL), (SASNetFlow, SMALL_FLOW)], ids=["sasnet", "sasnet-flow"])
def test_any_size_forward_and_backward(cls, config, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = cls(config)
    moving, fixed = torch.rand(2, 1, *size), torch.rand(2, 1, *size)
    final, coarse, fields = model(moving, fixed)
    assert final.shape == coarse.shape == moving.shape and final.dtype == torch.float32
    assert torch.isfinite(final).all()
    final.mean().backward()


def test_flow_is_the_identity_at_initialisation() -> None:
    moving, fixed = _pair()
    with torch.no_grad():
        final, coarse, fields = SASNetFlow(SMALL_FLOW)(moving, fixed)
    torch.testing.assert_close(final, moving, rtol=0, atol=0)
    assert float(fields["displacement"].abs().max()) == 0.0 and float((fields["gain"] - 1).abs().max()) == 0.0


def test_flow_output_is_a_warp_of_the_moving_image_with_one_gain_per_frame() -> None:
    torch.manual_seed(1)
    model = randomise_heads(SASNetFlow(SMALL_FLOW)).eval()
    moving, fixed = torch.rand(2, 1, 30, 22), torch.rand(2, 1, 30, 22)
    with torch.no_grad():
        final, _, fields = model(moving, fixed)
    gain, offset = fields["gain"], fields["offset"]
    assert float(fields["displacement"].abs().max()) > 0.05
    assert float(gain.flatten(1).std(dim=1).max()) == 0.0 and float(offset.flatten(1).std(dim=1).max()) == 0.0
    torch.testing.assert_close(final, gain * warp_rows(moving, fields["displacement"]) + offset, rtol=0, atol=1e-6)


def test_sasnet_sees_the_fixed_image_only_through_its_pooled_appearance() -> None:
    """The renderer's only input from the fixed image is a style_dim vector: same vector, same output."""
    torch.manual_seed(2)
    model = SASNet(SMALL).eval()
    moving, fixed = torch.rand(1, 1, 24, 24), torch.rand(1, 1, 24, 24)
    final, _, fields = model(moving, fixed)
    assert fields["appearance_fixed"].shape == (1, SMALL.style_dim)
    rendered = model.renderer(model.scene(moving)[-1], fields["appearance_fixed"])
    torch.testing.assert_close(final, rendered, rtol=0, atol=1e-6)


def test_adain_sets_the_channel_statistics() -> None:
    x = torch.randn(2, 3, 8, 8)
    scale, shift = torch.tensor([[2.0, 1.0, 0.5]] * 2), torch.tensor([[1.0, 0.0, -1.0]] * 2)
    y = adain(x, scale, shift)
    torch.testing.assert_close(y.mean(dim=(2, 3)), shift, atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(2, 3), unbiased=False), scale, atol=1e-3, rtol=0)


@pytest.mark.parametrize("cls, config", [(SASNet, SMALL), (SASNetFlow, SMALL_FLOW)], ids=["sasnet", "sasnet-flow"])
def test_a_few_steps_lower_the_loss(cls, config) -> None:
    torch.manual_seed(3)
    model = cls(config)
    moving, fixed = _pair(shift=2.0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        loss, terms = model_loss(model(moving, fixed), fixed, arch=config.arch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert "scene" in terms and losses[-1] < losses[0], losses


@pytest.mark.parametrize("cls, config", [(SASNet, SMALL), (SASNetFlow, SMALL_FLOW)], ids=["sasnet", "sasnet-flow"])
def test_checkpoint_round_trip(cls, config, tmp_path: Path) -> None:
    torch.manual_seed(4)
    model = cls(config).eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model_config=model.config.to_dict(), model_state=model.state_dict())
    loaded, meta = load_model(path)
    assert type(loaded) is cls and meta["model_config"]["arch"] == config.arch
    moving, fixed = _pair()
    torch.testing.assert_close(loaded(moving, fixed)[0], model(moving, fixed)[0], rtol=0, atol=0)
