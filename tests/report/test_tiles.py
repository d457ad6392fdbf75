"""Zoomed tiles keep their pixels sharp; labels sit above the image; tiles line up with even gaps."""

from __future__ import annotations

import numpy as np
import pytest

from orpam_pipeline.report.font import GLYPH_H
from orpam_pipeline.report.tiles import label_tile, tile_row, upscale_nearest


def test_upscale_nearest() -> None:
    img = np.arange(6, dtype=np.uint8).reshape(2, 3)
    up = upscale_nearest(img, 4)
    assert up.shape == (8, 12)
    assert np.array_equal(up[::4, ::4], img) and np.all(up[4:8, 8:12] == 5)
    assert upscale_nearest(np.zeros((2, 2, 3), np.uint8), 3).shape == (6, 6, 3)
    with pytest.raises(ValueError):
        upscale_nearest(img, 0)


def test_label_tile_puts_labels_above_the_image() -> None:
    gray = np.full((10, 20), 128, dtype=np.uint8)
    tile = label_tile(gray, [("AB", (255, 0, 0)), ("C", (0, 0, 255))], text_scale=2, min_chars=4)
    line = (GLYPH_H + 3) * 2
    assert tile.shape == (2 * line + 4 + 10, 4 * 6 * 2, 3) and tile.dtype == np.uint8
    assert np.all(tile[2 * line + 4 :, :20] == 128) and np.all(tile[2 * line + 4 :, 20:] == 255)
    first, second = tile[:line], tile[line : 2 * line]
    assert np.any(np.all(first == (255, 0, 0), axis=2)) and not np.any(np.all(first == (0, 0, 255), axis=2))
    assert np.any(np.all(second == (0, 0, 255), axis=2))
    assert label_tile(gray, []).shape == (14, 20, 3)


def test_tile_row_lays_tiles_out_with_gaps() -> None:
    a = np.zeros((4, 3, 3), dtype=np.uint8)
    b = np.full((6, 2, 3), 7, dtype=np.uint8)
    row = tile_row([a, b], gap=2)
    assert row.shape == (6 + 4, 3 + 2 + 3 * 2, 3)
    assert np.all(row[2:6, 2:5] == 0) and np.all(row[6:8, 2:5] == 255)
    assert np.all(row[2:8, 7:9] == 7) and np.all(row[:, 5:7] == 255)
    with pytest.raises(ValueError):
        tile_row([])
