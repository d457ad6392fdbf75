"""Image tiles for figures: nearest-neighbour zoom, text labels above an image, tiles laid out in a row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from orpam_pipeline.report.font import GLYPH_H, GLYPH_W, RGB, draw_text


def upscale_nearest(image: np.ndarray, factor: int) -> np.ndarray:
    """Repeat every pixel ``factor`` times along both image axes, so zoomed pixels stay sharp."""
    if int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    f = int(factor)
    return np.repeat(np.repeat(np.asarray(image), f, axis=0), f, axis=1)


def label_tile(
    gray: np.ndarray, labels: Sequence[tuple[str, RGB]], text_scale: int = 1, min_chars: int = 0
) -> np.ndarray:
    """RGB tile on white: one text line per ``(text, colour)`` label, the ``(H, W)`` uint8 image below.

    The tile is at least ``min_chars`` characters wide, so short images keep room for their labels.
    """
    line = (GLYPH_H + 3) * text_scale
    top = len(labels) * line + 4
    width = max(gray.shape[1], min_chars * (GLYPH_W + 1) * text_scale)
    tile = np.full((top + gray.shape[0], width, 3), 255, dtype=np.uint8)
    for i, (text, colour) in enumerate(labels):
        draw_text(tile, text, 2 + i * line, 0, colour, text_scale)
    tile[top:, : gray.shape[1]] = gray[..., None]
    return tile


def tile_row(tiles: Sequence[np.ndarray], gap: int = 6) -> np.ndarray:
    """RGB tiles side by side, top-aligned on white, ``gap`` pixels around and between them."""
    if not tiles:
        raise ValueError("tile_row needs at least one tile")
    height = max(t.shape[0] for t in tiles)
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) + 1)
    canvas = np.full((height + 2 * gap, width, 3), 255, dtype=np.uint8)
    x = gap
    for tile in tiles:
        canvas[gap : gap + tile.shape[0], x : x + tile.shape[1]] = tile
        x += tile.shape[1] + gap
    return canvas
