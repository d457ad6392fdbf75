"""PCReg-Net-Flow: the warp matches the numpy resampler, the output is a warp of the input, training works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.models.checkpoint import (
    build_model,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from orpam_pipeline.models.pcregnet import PCRegNet, PCRegNetConfig, count_parameters
from orpam_pipeline.models.pcregnet_flow import PCRegNetFlow, PCRegNetFlowConfig
from orpam_pipeline.models.warp import warp_cols, warp_rows
from orpam_pipeline.register.phase import resample_rows
from orpam_pipeline.train.loss import LossWeights, flow_loss
from tests.models.heads import randomise

SMALL = PCRegNetFlowConfig(base_channels=8)


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(2)


def _randomise_heads(model: PCRegNetFlow, seed: int = 0, scale: float = 0.05) -> PCRegNetFlow:
    """Give the zero-initialised heads random weights so the fields are not trivially zero."""
    randomise((model.coarse_head, model.residual_head, model.intensity_head), seed, scale)
    return model


def _numpy_warp(image: torch.Tensor, disp: torch.Tensor) -> np.ndarray:
    """``resample_rows`` applied column by column (it takes one position per row and frame)."""
    n, _, h, w = image.shape
    lines = image[:, 0].permute(0, 2, 1).reshape(n * w, h, 1).numpy()
    pos = np.arange(h)[None, :] + disp[:, 0].permute(0, 2, 1).reshape(n * w, h).numpy().astype(np.float64)
    out = resample_rows(lines, pos)[..., 0]
    return out.reshape(n, w, h).transpose(0, 2, 1)[:, None]


def test_warp_rows_equals_resample_rows() -> None:
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(2, 1, 17, 5, generator=gen)
    disp = (torch.rand(2, 1, 17, 5, generator=gen) - 0.5) * 12.0
    disp[0, 0, 3, 1] = 2.0
    np.testing.assert_allclose(warp_rows(image, disp).numpy(), _numpy_warp(image, disp), atol=1e-5, rtol=0)
    zero = warp_rows(image, torch.zeros_like(disp))
    torch.testing.assert_close(zero, image, rtol=0, atol=1e-6)
    shifted = warp_rows(image, torch.full_like(disp, 1.0))
    torch.testing.assert_close(shifted[:, :, :-1], image[:, :, 1:], rtol=0, atol=1e-6)
    cols = warp_cols(image, torch.full_like(disp, 1.0))
    torch.testing.assert_close(cols[..., :-1], image[..., 1:], rtol=0, atol=1e-6)


def test_warp_rows_gradients_match_finite_differences() -> None:
    gen = torch.Generator().manual_seed(2)
    image = torch.rand(1, 2, 9, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    disp = torch.rand(1, 1, 9, 3, generator=gen, dtype=torch.float64) * 2.6 - 1.3
    disp[..., 2:7, :] += 0.05
    disp.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda i, d: warp_rows(i, d)[..., 2:7, :], (image, disp), eps=1e-6, atol=1e-5
    )


def test_output_is_exactly_a_warp_of_the_moving_image() -> None:
    torch.manual_seed(0)
    model = _randomise_heads(PCRegNetFlow(SMALL)).eval()
    fixed = torch.rand(2, 1, 21, 11)
    c = 0.37
    with torch.no_grad():
        final, coarse, fields = model(torch.full_like(fixed, c), fixed)
    torch.testing.assert_close(final, fields["gain"] * c + fields["offset"], rtol=0, atol=1e-5)
    torch.testing.assert_close(coarse, torch.full_like(coarse, c), rtol=0, atol=1e-5)

    moving = torch.rand(2, 1, 21, 11)
    with torch.no_grad():
        final, coarse, fields = model(moving, fixed)
    expected = fields["gain"] * warp_rows(moving, fields["displacement"]) + fields["offset"]
    torch.testing.assert_close(final, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(coarse, warp_rows(moving, fields["coarse_displacement"]), rtol=0, atol=1e-5)
    d0, d = fields["coarse_displacement"], fields["displacement"]
    assert d0.abs().max() > 1e-3 and (d - d0).abs().max() > 1e-4
    assert d0.abs().max() <= SMALL.max_displacement
    assert (fields["gain"] > 0).all()


@pytest.mark.parametrize("size", [(21, 11), (5, 3), (32, 16)])
def test_forward_backward_on_any_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = _randomise_heads(PCRegNetFlow(SMALL))
    moving, fixed = torch.rand(2, 1, *size), torch.rand(2, 1, *size)
    final, coarse, fields = model(moving, fixed)
    assert final.shape == coarse.shape == (2, 1, *size)
    assert set(fields) == {"displacement", "coarse_displacement", "gain", "offset"}
    assert all(f.shape == (2, 1, *size) for f in fields.values())
    loss, terms = flow_loss(final, coarse, fields, fixed) if min(size) >= 11 else (final.mean(), {})
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_cross_axis_is_bounded_and_off_by_default() -> None:
    torch.manual_seed(0)
    model = _randomise_heads(PCRegNetFlow(PCRegNetFlowConfig(base_channels=8, cross_axis=True)), scale=0.5).eval()
    with torch.no_grad():
        final, _, fields = model(torch.rand(1, 1, 19, 9), torch.rand(1, 1, 19, 9))
    assert fields["displacement_x"].abs().max() <= 1.0 and final.shape == (1, 1, 19, 9)
    assert "displacement_x" not in PCRegNetFlow(SMALL).eval()(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))[2]


def test_parameter_count_is_near_pcregnet() -> None:
    flow, base = count_parameters(PCRegNetFlow()), count_parameters(PCRegNet())
    assert abs(flow - base) / base < 0.05, (flow, base)


def test_untrained_model_is_the_identity() -> None:
    model = PCRegNetFlow(SMALL).eval()
    moving = torch.rand(1, 1, 16, 12)
    with torch.no_grad():
        final, coarse, fields = model(moving, torch.rand(1, 1, 16, 12))
    torch.testing.assert_close(final, moving, rtol=0, atol=1e-6)
    assert fields["displacement"].abs().max() == 0


def test_checkpoint_round_trip_and_old_checkpoints(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _randomise_heads(PCRegNetFlow(SMALL)).eval()
    path = tmp_path / "flow.pt"
    save_checkpoint(path, model_config=model.config.to_dict(), model_state=model.state_dict())
    assert load_checkpoint(path)["model_config"]["arch"] == "pcregnet-flow"
    loaded, _ = load_model(path)
    assert isinstance(loaded, PCRegNetFlow) and loaded.config == model.config
    x, f = torch.rand(1, 1, 13, 7), torch.rand(1, 1, 13, 7)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, f)[0], model(x, f)[0], rtol=0, atol=0)

    old = PCRegNet(PCRegNetConfig(base_channels=8))
    old_path = tmp_path / "old.pt"
    save_checkpoint(old_path, model_config=old.config.to_dict(), model_state=old.state_dict())
    assert "arch" not in load_checkpoint(old_path)["model_config"]
    assert type(load_model(old_path)[0]) is PCRegNet
    assert type(build_model({"base_channels": 8, "arch": "pcregnet"})) is PCRegNet

    wrong = tmp_path / "wrong.pt"
    save_checkpoint(wrong, model_config=SMALL.to_dict(), model_state=old.state_dict())
    with pytest.raises(OrpamError, match="does not match pcregnet-flow"):
        load_model(wrong)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model({"arch": "nope"})


def _shifted_pair(size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A smooth random scene, its fixed view, and a moving view displaced by a smooth profile with a gain."""
    gen = torch.Generator().manual_seed(5)
    scene = torch.nn.functional.avg_pool2d(torch.rand(1, 1, size + 4, size + 4, generator=gen), 5, 1)
    scene = (scene - scene.min()) / (scene.max() - scene.min())
    y = torch.arange(size, dtype=torch.float32).view(1, 1, size, 1)
    truth = (1.5 + 0.8 * torch.sin(2 * torch.pi * y / size)).expand(1, 1, size, size)
    # moving(y) = scene(y - d(y)) approximately, so warping moving by +d recovers scene
    moving = 1.2 * warp_rows(scene, -truth) + 0.05
    return moving, scene, truth


def test_short_overfit_lowers_the_loss_and_finds_the_displacement() -> None:
    """Self-supervised on one pair: 40 steps bring the field from 1.6 px RMS error to about 0.15 px."""
    torch.manual_seed(0)
    moving, fixed, truth = _shifted_pair()
    model = PCRegNetFlow(SMALL)
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        optim.zero_grad()
        final, coarse, fields = model(moving, fixed)
        loss, _ = flow_loss(final, coarse, fields, fixed, LossWeights())
        loss.backward()
        optim.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.3 * losses[0], losses
    inner = (..., slice(4, -4), slice(4, -4))
    rms = float((fields["displacement"][inner].detach() - truth[inner]).pow(2).mean().sqrt())
    assert rms < 0.5, rms


def test_trains_and_resumes_through_train(tmp_path: Path) -> None:
    from orpam_pipeline.manifest import create_manifest
    from orpam_pipeline.simulate import SimulationParams, write_simulation
    from orpam_pipeline.train import TrainConfig, train

    write_simulation(tmp_path / "data", SimulationParams.randomised(21, frames=3, height=32, width=64))
    manifest = tmp_path / "m.toml"
    create_manifest(tmp_path / "data" / "scans", manifest, val_fraction=0.0, test_fraction=0.0, seed=0)
    config = TrainConfig(epochs=2, batch_size=2, crop=32, steps_per_epoch=2, val_pairs=0, seed=3)
    cfg = PCRegNetFlowConfig(base_channels=4)
    first = train(manifest, tmp_path / "run", config, cfg, stop_after=1)
    assert not first.finished
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["model_config"]["arch"] == "pcregnet-flow"
    assert ckpt["extra"]["train_config"]["lambda_smooth"] == 0.1

    # a checkpoint written before the regulariser weights existed still resumes
    extra = dict(ckpt["extra"])
    extra["train_config"] = {k: v for k, v in extra["train_config"].items() if not k.startswith("lambda_") or k == "lambda_coarse"}
    save_checkpoint(tmp_path / "run" / "last.pt", model_config=ckpt["model_config"], model_state=ckpt["model_state"], extra=extra)
    resumed = train(manifest, tmp_path / "run", config, cfg.to_dict(), resume=True)
    assert resumed.finished and resumed.global_step == 4
    assert isinstance(load_model(resumed.best_checkpoint)[0], PCRegNetFlow)
    with pytest.raises(OrpamError, match="model config differs"):
        train(manifest, tmp_path / "run", config, {"base_channels": 4}, resume=True)


def test_fields_and_output_stay_float32_under_autocast() -> None:
    torch.manual_seed(0)
    model = _randomise_heads(PCRegNetFlow(SMALL)).eval()
    moving, fixed = torch.rand(1, 1, 24, 10), torch.rand(1, 1, 24, 10)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        final, coarse, fields = model(moving, fixed)
    assert final.dtype == coarse.dtype == torch.float32
    assert all(f.dtype == torch.float32 for f in fields.values())
    expected = fields["gain"] * warp_rows(moving, fields["displacement"]) + fields["offset"]
    torch.testing.assert_close(final, expected, rtol=0, atol=1e-5)
