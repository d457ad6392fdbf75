"""The bitmap font: glyph sizes, upper-casing, a fallback glyph, clipped drawing."""

from __future__ import annotations

import numpy as np

from orpam_pipeline.report.font import GLYPH_H, GLYPH_W, draw_text, text_mask


def test_text_mask_size_case_and_unknown_characters() -> None:
    mask = text_mask("ab1", scale=3)
    assert mask.shape == (GLYPH_H * 3, 3 * (GLYPH_W + 1) * 3) and mask.dtype == bool
    assert np.array_equal(mask, text_mask("AB1", scale=3))
    assert np.array_equal(text_mask("é"), text_mask("?"))
    assert not text_mask(" ").any() and text_mask("").shape == (GLYPH_H, 0)
    assert not text_mask("I")[:, GLYPH_W:].any(), "one blank column after each glyph"


def test_draw_text_paints_in_place_and_clips() -> None:
    image = np.zeros((5, 8, 3), dtype=np.uint8)
    draw_text(image, "HH", 1, 2, (10, 20, 30))
    expected = np.zeros((5, 8), dtype=bool)
    expected[1:, 2:] = text_mask("HH")[:4, :6]
    assert np.array_equal(np.all(image == (10, 20, 30), axis=2), expected)
    assert not image[~expected].any()
    before = image.copy()
    draw_text(image, "X", 5, 0, (1, 1, 1))
    draw_text(image, "X", 0, 8, (1, 1, 1))
    assert np.array_equal(image, before)
