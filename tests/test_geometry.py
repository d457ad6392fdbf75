import numpy as np
import pytest

from orpam_pipeline.geometry import interleave, moving_width, odd_at_even, split


@pytest.mark.parametrize("width", [1 + 1, 7, 8, 33])
@pytest.mark.parametrize("first_line", ["forward", "backward"])
def test_split_then_interleave_is_identity(width, first_line):
    frames = np.random.default_rng(width).random((3, 5, width))
    odd, even = split(frames, first_line)
    assert even.shape[-1] == moving_width(width, first_line)
    assert odd.shape[-1] + even.shape[-1] == width
    np.testing.assert_array_equal(interleave(odd, even, first_line), frames)


def test_forward_lines_are_zero_based_even_columns():
    frame = np.tile(np.arange(7), (4, 1))
    odd, even = split(frame)
    assert odd[0].tolist() == [0, 2, 4, 6]
    assert even[0].tolist() == [1, 3, 5]
    odd_b, even_b = split(frame, "backward")
    assert odd_b[0].tolist() == [1, 3, 5] and even_b[0].tolist() == [0, 2, 4, 6]


@pytest.mark.parametrize("width", [6, 7])
@pytest.mark.parametrize("first_line", ["forward", "backward"])
def test_odd_at_even_interpolates_a_linear_ramp_exactly_inside(width, first_line):
    frame = np.tile(np.arange(width, dtype=float), (3, 1))
    odd, even = split(frame, first_line)
    ref = odd_at_even(odd, width, first_line)
    inside = (even[0] > odd[0].min()) & (even[0] < odd[0].max())
    np.testing.assert_allclose(ref[0][inside], even[0][inside])


def test_interleave_rejects_mismatched_widths():
    with pytest.raises(ValueError):
        interleave(np.zeros((2, 3)), np.zeros((2, 1)))
