"""The interpolation kernel shared by the numpy resampler and the differentiable torch warp.

Written with arithmetic only, so the same function serves numpy arrays and torch tensors: the
classical method and the learned ones resample measured lines with exactly the same weights.
"""

from __future__ import annotations

from typing import TypeVar

A = TypeVar("A")

KEYS_OFFSETS = (-1, 0, 1, 2)
"""Sample offsets from ``floor(position)`` that the four weights belong to."""


def keys_weights(frac: A) -> tuple[A, A, A, A]:
    """Keys (a = -1/2) cubic convolution weights for samples at offsets -1, 0, 1, 2."""
    f2 = frac * frac  # type: ignore[operator]
    f3 = f2 * frac
    return (
        -0.5 * f3 + f2 - 0.5 * frac,
        1.5 * f3 - 2.5 * f2 + 1.0,
        -1.5 * f3 + 2.0 * f2 + 0.5 * frac,
        0.5 * f3 - 0.5 * f2,
    )
