import torch
from torch import nn

from orpam_pipeline.models import PCRegNet, PCRegNetConfig, fold_batchnorm


def _trained(config: PCRegNetConfig) -> PCRegNet:
    """A model after a few optimiser steps, so BN statistics and affine terms are non-trivial."""
    torch.manual_seed(0)
    net = PCRegNet(config).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(3):
        moving, fixed = torch.rand(2, 1, 24, 24) * 3, torch.rand(2, 1, 24, 24) + 0.5
        final, coarse = net(moving, fixed)
        loss = (final - fixed).abs().mean() + (coarse - fixed).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def test_fold_matches_unfolded_eval():
    net = _trained(PCRegNetConfig())
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert not folded.training
    torch.manual_seed(1)
    moving, fixed = torch.rand(2, 1, 37, 29), torch.rand(2, 1, 37, 29)
    with torch.no_grad():
        ref = net(moving, fixed)
        out = folded(moving, fixed)
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
        assert b.abs().max() > 1e-3


def test_fold_leaves_original_untouched():
    net = _trained(PCRegNetConfig(base_channels=8))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    fold_batchnorm(net)
    assert net.training
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
