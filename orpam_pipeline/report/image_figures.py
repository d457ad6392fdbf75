"""Image figures: a merged frame before and after registration, and the zoomed comb crop.

Both panels share one grey window; images carry a µm scale bar when the pixel size is known, and
pixel axes otherwise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from orpam_pipeline.report.intensity import display_window
from orpam_pipeline.report.mpl import new_figure
from orpam_pipeline.report.units import Units, format_um, nice_length

MAX_DISPLAY = 1024
"""Frames larger than this on a side are block-averaged for the figure."""
PANEL_WIDTH_IN = 4.3
CROP_WIDTH_IN = 3.2
BOX_COLOUR = "#ffd200"


def shrink(image: np.ndarray, max_side: int = MAX_DISPLAY) -> tuple[np.ndarray, int]:
    """Block-mean an oversized frame (NaN-aware); returns the image and the factor."""
    h, w = image.shape
    f = max(1, math.ceil(max(h, w) / max_side))
    if f == 1:
        return image, 1
    hh, ww = h // f * f, w // f * f
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(image[:hh, :ww].reshape(hh // f, f, ww // f, f), axis=(1, 3)), f


def _aspect(units: Units) -> float:
    """Height of a pixel over its width, so the image has its physical proportions when both are known."""
    if units.pixel_y_um is not None and units.pixel_x_um is not None:
        return units.pixel_y_um / units.pixel_x_um
    return 1.0


def _height(ratio: float, panel_width_in: float) -> float:
    """Figure height for panels of height/width ``ratio``: the image (room for axis labels taken off its
    width) plus the titles and tick labels."""
    return min(7.0, max(1.2, (panel_width_in - 0.75) * ratio)) + 1.15


def _axes_or_scale_bar(ax: Axes, width_px: float, units: Units) -> None:
    """A µm scale bar along x when the line pitch is known, else axes labelled in pixels."""
    if units.pixel_x_um is None:
        ax.set_xlabel("x: line index (px)")
        ax.set_ylabel("y: along the line (px)")
        return
    ax.set_xticks([])
    ax.set_yticks([])
    length = nice_length(0.25 * width_px * units.pixel_x_um)
    bar = AnchoredSizeBar(ax.transData, length / units.pixel_x_um, format_um(length), "lower right", pad=0.3,
                          borderpad=0.4, sep=3, color="white", frameon=True, size_vertical=max(1.0, width_px / 120),
                          label_top=True, fontproperties={"size": 9})  # fmt: skip
    bar.patch.set(facecolor="black", alpha=0.55, edgecolor="none")
    ax.add_artist(bar)


def _show(ax: Axes, image: np.ndarray, origin: tuple[int, int], scale: int, window: tuple[float, float],
          units: Units, nearest: bool) -> None:  # fmt: skip
    """``image`` (each pixel ``scale`` source pixels) placed at source ``(row, column)`` ``origin``."""
    h, w = image.shape
    y0, x0 = origin
    extent = (x0 - 0.5, x0 + w * scale - 0.5, y0 + h * scale - 0.5, y0 - 0.5)
    ax.imshow(image, cmap="gray", vmin=window[0], vmax=window[1], extent=extent, aspect=_aspect(units),
              interpolation="nearest" if nearest else "antialiased")  # fmt: skip


def frames_figure(before: np.ndarray, after: np.ndarray, box: Sequence[int], title: str, units: Units) -> Figure:
    """The frame as acquired and as registered, side by side, the crop ``box`` (y0, y1, x0, x1) outlined."""
    small = [shrink(np.asarray(im, dtype=np.float64)) for im in (before, after)]
    window = display_window(np.concatenate([s.ravel() for s, _ in small]))
    h, w = before.shape
    fig = new_figure(2 * PANEL_WIDTH_IN, _height(h * _aspect(units) / w, PANEL_WIDTH_IN))
    axes = fig.subplots(1, 2)
    y0, y1, x0, x1 = box
    labels = ("before: even lines as measured", "after: registered even lines")
    for ax, (image, f), label in zip(axes, small, labels):
        _show(ax, image, (0, 0), f, window, units, nearest=False)
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=BOX_COLOUR, linewidth=1.2))
        ax.set_title(label + (f" (shown 1:{f})" if f > 1 else ""), fontsize=10)
        _axes_or_scale_bar(ax, w, units)
    fig.suptitle(title, fontsize=11)
    return fig


def crop_panels_figure(panels: Sequence[tuple[str, np.ndarray, str, str]], box: Sequence[int], title: str,
                       units: Units) -> Figure:  # fmt: skip
    """Crops of one ``box`` (y0, y1, x0, x1) side by side, in source coordinates, nearest-neighbour so every pixel
    stays visible, in one grey window; each panel ``(label, crop, status, status colour)``, status under the label."""
    y0, y1, x0, x1 = box
    crops = [np.asarray(crop, dtype=np.float64) for _, crop, _, _ in panels]
    window = display_window(np.concatenate([c.ravel() for c in crops]))
    fig = new_figure(len(panels) * CROP_WIDTH_IN, _height((y1 - y0) * _aspect(units) / (x1 - x0), CROP_WIDTH_IN))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, crop, (label, _, status, colour) in zip(axes, crops, panels):
        _show(ax, crop, (y0, x0), 1, window, units, nearest=True)
        ax.set_title(label, fontsize=10, loc="left")
        if status:
            ax.set_title(status, fontsize=10, loc="right", color=colour, fontweight="bold")
        _axes_or_scale_bar(ax, x1 - x0, units)
    fig.suptitle(title, fontsize=11)
    return fig


def crop_figure(before: np.ndarray, after: np.ndarray, box: Sequence[int], title: str, units: Units) -> Figure:
    """The crop ``box`` of the frame before and after registration (:func:`crop_panels_figure`)."""
    y0, y1, x0, x1 = box
    crops = [np.asarray(im)[y0:y1, x0:x1] for im in (before, after)]
    return crop_panels_figure([("before (comb artefact)", crops[0], "", ""), ("after", crops[1], "", "")], box,
                              title, units)  # fmt: skip
