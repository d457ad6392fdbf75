"""Consecutive-pair NCC centres each frame once and gives ``ncc_frames(s[:-1], s[1:])``'s numbers bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from orpam_pipeline.metrics import pair_ncc
from orpam_pipeline.metrics.image import consecutive_ncc, ncc_frames


@pytest.mark.parametrize("shape", [(2, 5, 4), (3, 5, 4), (6, 40, 30), (11, 128, 96), (9, 1, 1), (4, 0, 3), (1, 8, 8)])
def test_equals_ncc_of_the_shifted_stacks_bit_for_bit(shape):
    rng = np.random.default_rng(sum(shape))
    stack = (rng.random(shape) * 1e3 + 17).astype(np.float32)
    if shape[0] > 3:
        stack[2] = 5.0  # a constant frame: both its pairs are NaN
    expected = ncc_frames(stack[:-1], stack[1:]) if shape[0] > 1 else np.empty(0)
    assert np.array_equal(consecutive_ncc(stack), expected, equal_nan=True)
    assert np.array_equal(pair_ncc(stack), expected, equal_nan=True)
