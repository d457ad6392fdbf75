"""Fold BatchNorm into the preceding convolution for faster inference."""

from __future__ import annotations

import copy

import torch
from torch import nn


def _fold_pair(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Rewrite ``conv`` in place so that ``conv(x)`` equals ``bn(conv(x))`` in eval mode."""
    assert bn.running_mean is not None and bn.running_var is not None
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(shift)
    weight = conv.weight.double() * scale.reshape(-1, 1, 1, 1)
    dtype = conv.weight.dtype
    conv.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
    conv.bias = nn.Parameter((bias * scale + shift).to(dtype), requires_grad=False)


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    """A plain Conv2d followed by a BatchNorm2d that uses running statistics in eval."""
    return (
        type(conv) is nn.Conv2d
        and type(bn) is nn.BatchNorm2d
        and bn.track_running_stats
        and bn.running_mean is not None
        and conv.out_channels == bn.num_features
    )


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Eval-mode deep copy of ``model`` with each Conv2d->BatchNorm2d pair folded.

    Pairs are adjacent children of an ``nn.Sequential`` (how PCRegNet builds its
    blocks); the BatchNorm is replaced by ``nn.Identity``. The original is untouched.
    """
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for module in folded.modules():
            if not isinstance(module, nn.Sequential):
                continue
            names = list(module._modules)
            for first, second in zip(names, names[1:]):
                conv, bn = module._modules[first], module._modules[second]
                if conv is not None and bn is not None and _foldable(conv, bn):
                    _fold_pair(conv, bn)
                    module._modules[second] = nn.Identity()
    return folded
