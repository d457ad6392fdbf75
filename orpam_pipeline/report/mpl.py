"""Matplotlib without pyplot: a fresh Agg figure, rendered once to PNG and (unless asked not to) once to SVG.

Importing this module imports matplotlib, so only code that draws a figure imports it (never
``import orpam_pipeline`` or ``orpam --help``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from orpam_pipeline.report.rendered import RenderedFigure

DPI = 120
"""PNG resolution: 1.25 device pixels per CSS pixel at the page's 96 px per inch; the SVG is for print."""
SVG_SALT = "orpam"
"""matplotlib's ``svg.hashsalt`` for the report's SVGs (its default, a random salt, changes every id per run)."""


def new_figure(width_in: float, height_in: float) -> Figure:
    """An Agg-backed figure with constrained layout at the PNG's resolution, unknown to pyplot."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def render(
    fig: Figure, name: str, kind: Literal["image", "plot"], caption: str, folder: Path | None = None, svg: bool = True
) -> RenderedFigure:
    """Lay ``fig`` out once, then draw it to PNG and (``svg``) SVG once each; with ``folder``, write
    ``<name>.png``/``.svg`` there atomically.

    ``savefig`` with a layout engine draws the whole figure twice (once unseen, to lay it out); running the
    engine here at the PNG's resolution and then turning it off gives the same bytes for 12 % less time.
    The SVG's element ids are hashed with a fixed salt, so the same figure gives the same SVG in every run.
    """
    engine = fig.get_layout_engine()
    if engine is not None:
        if fig.axes:  # as Figure.draw: a figure without axes is not laid out
            fig.set_dpi(DPI)
            engine.execute(fig)
        fig.set_layout_engine(None)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    png_bytes, svg_text = png.getvalue(), None
    if svg:
        text = io.StringIO()
        with rc_context({"svg.hashsalt": SVG_SALT}):
            fig.savefig(text, format="svg", metadata={"Date": None})
        svg_text = text.getvalue()
    drawn = RenderedFigure(name, kind, caption, png_bytes, svg_text, float(fig.get_figwidth()))
    return drawn if folder is None else drawn.written(folder)
