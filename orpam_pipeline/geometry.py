"""Bidirectional scan geometry: which columns are forward (fixed) and backward (moving) lines.

A frame is ``(Y, X)``; each column is one fast-axis line (the fast axis is Y). With the default
``first_line="forward"`` the forward ("odd", 1-based) lines are the 0-based columns ``0, 2, 4, ...``
and the backward ("even") lines are ``1, 3, 5, ...``. ``first_line="backward"`` swaps the roles.
Everything works on the last two axes, so ``(T, Y, X)`` stacks are handled the same way.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

FirstLine = Literal["forward", "backward"]


def fixed_parity(first_line: FirstLine = "forward") -> int:
    """Column parity of the forward (fixed) lines."""
    if first_line == "forward":
        return 0
    if first_line == "backward":
        return 1
    raise ValueError(f"first_line must be 'forward' or 'backward', not {first_line!r}")


def split(frames: np.ndarray, first_line: FirstLine = "forward") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(odd, even)``: the forward (fixed) and backward (moving) columns."""
    p = fixed_parity(first_line)
    return frames[..., p::2], frames[..., 1 - p :: 2]


def moving_width(width: int, first_line: FirstLine = "forward") -> int:
    """Number of backward (moving) columns in a frame of ``width`` columns."""
    p = fixed_parity(first_line)
    return (width - (1 - p) + 1) // 2


def interleave(odd: np.ndarray, even: np.ndarray, first_line: FirstLine = "forward") -> np.ndarray:
    """Inverse of :func:`split`: put forward and backward columns back in acquisition order."""
    p = fixed_parity(first_line)
    n_fixed, n_moving = odd.shape[-1], even.shape[-1]
    width = n_fixed + n_moving
    if moving_width(width, first_line) != n_moving:
        raise ValueError(f"cannot interleave {n_fixed} forward and {n_moving} backward columns")
    out = np.empty(odd.shape[:-1] + (width,), dtype=np.result_type(odd, even))
    out[..., p::2] = odd
    out[..., 1 - p :: 2] = even
    return out


def odd_at_even(odd: np.ndarray, width: int, first_line: FirstLine = "forward") -> np.ndarray:
    """Forward lines linearly interpolated to the x positions of the backward lines.

    A backward column lies half-way between two forward columns; at the frame edge, where it has
    only one forward neighbour, that neighbour is used. This is the reference the classical method
    estimates against, never a value written into the output.
    """
    p = fixed_parity(first_line)
    n_moving = moving_width(width, first_line)
    xm = 2 * np.arange(n_moving) + (1 - p)
    left = np.clip((xm - 1 - p) // 2, 0, odd.shape[-1] - 1)
    right = np.clip((xm + 1 - p) // 2, 0, odd.shape[-1] - 1)
    return 0.5 * (odd[..., left] + odd[..., right])


def odd_matched(odd: np.ndarray, n_moving: int) -> np.ndarray:
    """Forward lines width-matched to ``n_moving`` backward lines (docs/conventions.md): trimmed, or the last
    column repeated when there are fewer forward than backward lines (``first_line="backward"``)."""
    cols = np.clip(np.arange(n_moving), 0, odd.shape[-1] - 1)
    return np.ascontiguousarray(odd[..., cols])
