"""The evaluation figure: one panel per method in one grey window, status coloured, written as PNG and SVG."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from orpam_pipeline.evaluate.outputs import GREEN, RED, FigurePanels, write_figure
from orpam_pipeline.report.image_figures import crop_panels_figure
from orpam_pipeline.report.units import Units


def _panels() -> FigurePanels:
    rng = np.random.default_rng(0)
    crops = [("none", rng.random((48, 48)), "GT 0.812"), ("copy-odd", rng.random((48, 48)), "LEAK FAIL")]
    return FigurePanels("sim-0001", 12, 24, (10, 58, 20, 68), Units(), crops)


def test_write_figure_writes_png_and_svg_named_by_scan_frame_and_region(tmp_path) -> None:
    figure = _panels()
    assert figure.title == "sim-0001 · frame 12 of 24 · rows 10–57, columns 20–67"
    paths = write_figure(figure, tmp_path)
    assert paths == {"png": tmp_path / "evaluation.png", "svg": tmp_path / "evaluation.svg"}
    image = Image.open(io.BytesIO(paths["png"].read_bytes()))
    assert image.format == "PNG" and image.width > image.height > 100
    assert "<svg" in paths["svg"].read_text(encoding="utf-8")
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_panels_share_one_window_and_colour_the_status() -> None:
    figure = _panels()
    panels = [(n, c, s, RED if "FAIL" in s else GREEN) for n, c, s in figure.panels]
    fig = crop_panels_figure(panels, figure.box, figure.title, figure.units)
    axes = fig.axes
    assert [ax.get_title(loc="left") for ax in axes] == ["none", "copy-odd"]
    assert [ax.get_title(loc="right") for ax in axes] == ["GT 0.812", "LEAK FAIL"]
    assert axes[0].title.get_color() != RED and axes[1]._right_title.get_color() == RED
    assert axes[0]._right_title.get_color() == GREEN
    climits = {ax.images[0].get_clim() for ax in axes}
    assert len(climits) == 1
    assert axes[0].images[0].get_interpolation() == "nearest"
    assert axes[0].images[0].get_extent() == [19.5, 67.5, 57.5, 9.5]
