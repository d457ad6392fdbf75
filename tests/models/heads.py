"""Random weights for zero-initialised network heads: plumbing tests then see non-trivial fields."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def randomise(heads: Iterable[nn.Module], seed: int, scale: float) -> None:
    """Draw every head's weight and bias from N(0, scale²) with a seeded generator, in order."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for head in heads:
            head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * scale)
            head.bias.copy_(torch.randn(head.bias.shape, generator=gen) * scale)
