"""Rendering a figure: one layout pass gives what ``savefig`` with its own layout passes gives, byte for byte."""

from __future__ import annotations

import io
import warnings

import numpy as np

from orpam_pipeline.report.mpl import DPI, new_figure, render


def _figure():
    """Two panels with titles, labels and a suptitle: what constrained layout has to make room for."""
    fig = new_figure(6.0, 3.0)
    left, right = fig.subplots(1, 2)
    x = np.linspace(0.0, 10.0, 200)
    left.plot(x, np.sin(x) * 1e4, label="a long legend entry")
    left.set_ylabel("counts (a long label)")
    left.legend(loc="best")
    right.imshow(np.arange(64.0).reshape(8, 8), cmap="gray")
    right.set_title("an image")
    fig.suptitle("a title")
    return fig


def test_one_layout_pass_gives_savefig_bytes():
    reference = _figure()
    png = io.BytesIO()
    reference.savefig(png, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    rendered = render(_figure(), "f", "plot", "caption", svg=False)
    assert rendered.png == png.getvalue()


def test_svg_is_the_same_in_every_run(tmp_path):
    first = render(_figure(), "f", "plot", "caption", tmp_path)
    second = render(_figure(), "f", "plot", "caption")
    assert first.svg is not None and first.svg == second.svg
    assert (tmp_path / "f.svg").read_text() == first.svg and (tmp_path / "f.png").read_bytes() == first.png


def test_a_figure_without_axes_renders_without_a_layout_warning():
    fig = new_figure(3.0, 1.0)
    fig.text(0.5, 0.5, "nothing to lay out")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constrained layout warns on a figure without axes
        assert render(fig, "t", "plot", "caption", svg=False).png.startswith(b"\x89PNG")
