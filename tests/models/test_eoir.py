"""The EOIR network: shapes, parameter count, identity at initialisation, its parts against references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orpam_pipeline.models.eoir import EOIR, EOIRConfig, correlation_y, frame_gain_offset
from orpam_pipeline.train.loss import LossWeights, model_loss


def _conv(c_in: int, c_out: int, k: int = 3) -> int:
    return c_in * c_out * k * k + c_out


def test_parameter_count_follows_the_layers():
    cfg = EOIRConfig()
    c, h, k = cfg.channels, cfg.estimator_channels, cfg.correlation_radius
    block = lambda i, o: _conv(i, o) + 2 * o  # noqa: E731  convolution + instance-norm affine
    encoder = block(1, c) + 2 * block(c, c)
    estimator = block(2 * c + 2 * k + 1, h) + 2 * block(h, h) + _conv(h, 1)
    assert sum(p.numel() for p in EOIR(cfg).parameters()) == encoder + 3 * estimator == 30_891


@pytest.mark.parametrize("size", [(37, 21), (50, 13), (64, 32), (9, 5)])
def test_any_size_and_the_identity_at_initialisation(size):
    torch.manual_seed(0)
    moving, fixed = torch.rand(2, 1, *size), torch.rand(2, 1, *size)
    final, coarse, fields = EOIR().eval()(moving, fixed)
    assert final.shape == coarse.shape == (2, 1, *size)
    assert all(v.shape == (2, 1, *size) for v in fields.values())
    assert torch.count_nonzero(fields["displacement"]) == 0  # zero-initialised heads: no displacement
    a, b = frame_gain_offset(moving, fixed)
    torch.testing.assert_close(final, a * moving + b)


def test_cross_axis_adds_a_bounded_x_displacement():
    model = EOIR(EOIRConfig(cross_axis=True))
    with torch.no_grad():
        for est in model.estimators:
            est.head.bias.fill_(5.0)
    _, _, fields = model(torch.rand(1, 1, 32, 16), torch.rand(1, 1, 32, 16))
    assert fields["displacement_x"].abs().max() <= 1.0 and fields["displacement_x"].min() > 0.5


def test_correlation_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    m, f = rng.random((1, 3, 10, 4)), rng.random((1, 3, 10, 4))
    got = correlation_y(torch.from_numpy(m), torch.from_numpy(f), 2).numpy()
    padded = np.pad(m, ((0, 0), (0, 0), (2, 2), (0, 0)), mode="edge")
    for i, k in enumerate(range(-2, 3)):
        want = (padded[:, :, 2 + k : 12 + k] * f).mean(axis=1)
        np.testing.assert_allclose(got[:, i], want, rtol=1e-12)


def test_gain_and_offset_are_the_least_squares_fit():
    rng = np.random.default_rng(1)
    w = rng.random((2, 1, 8, 6))
    f = 1.7 * w + 0.2 + 0.01 * rng.standard_normal(w.shape)
    a, b = frame_gain_offset(torch.from_numpy(w), torch.from_numpy(f))
    for n in range(2):
        slope, intercept = np.polyfit(w[n].ravel(), f[n].ravel(), 1)
        assert a[n].item() == pytest.approx(slope, rel=1e-5) and b[n].item() == pytest.approx(intercept, abs=1e-5)


def test_a_few_steps_lower_the_supervised_loss():
    torch.manual_seed(0)
    rows = torch.arange(48.0).view(1, 1, 48, 1)
    scene = torch.sin(rows / 3.0 + torch.arange(16.0).view(1, 1, 1, 16)) + 0.5 * torch.cos(rows / 5.0)
    fixed = scene.repeat(4, 1, 1, 1)
    shift = torch.tensor([1.5, -2.0, 0.5, 2.5]).view(4, 1, 1, 1)
    moving = torch.sin((rows - shift) / 3.0 + torch.arange(16.0).view(1, 1, 1, 16)) + 0.5 * torch.cos((rows - shift) / 5.0)
    target = shift.expand(-1, -1, 48, 16)  # registered[y] = moving[y + d] = fixed[y] with d = shift
    model = EOIR()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    weights = LossWeights(displacement=1.0)
    losses = []
    for _ in range(12):
        loss, _ = model_loss(model(moving, fixed), fixed, weights, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
