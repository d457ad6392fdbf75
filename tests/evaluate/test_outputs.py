"""The evaluation figure: one zoomed, labelled panel per method on a white row; labels coloured by status."""

from __future__ import annotations

import numpy as np

from orpam_pipeline.evaluate.outputs import GAP, GREEN, RED, ZOOM, render_figure
from orpam_pipeline.report.font import GLYPH_H


def test_render_figure_layout_and_label_colours() -> None:
    rng = np.random.default_rng(0)
    panels = [("none", rng.random((48, 48)), "GT 0.812"), ("copy-odd", rng.random((48, 48)), "LEAK FAIL")]
    image = render_figure(panels)
    line = (GLYPH_H + 3) * 2
    tile_h, tile_w = 2 * line + 4 + 48 * ZOOM, 48 * ZOOM
    assert image.dtype == np.uint8 and image.shape == (tile_h + 2 * GAP, 2 * tile_w + 3 * GAP, 3)
    status_rows = slice(GAP + line, GAP + 2 * line)
    first, second = image[status_rows, GAP : GAP + tile_w], image[status_rows, 2 * GAP + tile_w :]
    assert np.any(np.all(first == GREEN, axis=2)) and not np.any(np.all(first == RED, axis=2))
    assert np.any(np.all(second == RED, axis=2)) and not np.any(np.all(second == GREEN, axis=2))
    body = image[GAP + 2 * line + 4 : GAP + tile_h, GAP : GAP + tile_w]
    assert np.all(body[..., 0] == body[..., 1]) and body.min() == 0 and body.max() == 255
