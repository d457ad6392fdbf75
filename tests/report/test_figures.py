"""What the figures show: scan and frame in the title, µm scale bars or pixel axes, seconds or frames,
binned envelopes for long series, the displacement's colour bar."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from orpam_pipeline.report.displacement import MAX_TIME_BINS, summarise_displacement
from orpam_pipeline.report.envelope import BINS
from orpam_pipeline.report.figures import frame_title
from orpam_pipeline.report.image_figures import crop_figure, frames_figure, shrink
from orpam_pipeline.report.plot_figures import displacement_figure, metrics_figure, truth_figure
from orpam_pipeline.report.units import Units

UM = Units(2.5, 4.0, 0.05)


def _frames(h: int = 64, w: int = 80) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:h, :w]
    smooth = np.sin(yy / 7.0) + np.cos(xx / 9.0)
    comb = smooth.copy()
    comb[20:40, 41:61:2] += 3.0
    return comb, smooth


def _all_axes(fig) -> list:
    """Every axes of a figure, inset and secondary axes included."""
    out, todo = [], list(fig.axes)
    while todo:
        ax = todo.pop()
        out.append(ax)
        todo.extend(ax.child_axes)
    return out


def _labels(fig) -> list[str]:
    return [ax.get_xlabel() for ax in _all_axes(fig)] + [ax.get_ylabel() for ax in _all_axes(fig)]


def _bars(fig) -> list[AnchoredSizeBar]:
    return [a for ax in fig.axes for a in ax.artists if isinstance(a, AnchoredSizeBar)]


def test_image_figures_name_scan_and_frame_and_label_pixels_honestly() -> None:
    comb, smooth = _frames()
    title = frame_title("scan-1", 17, 500)
    assert title == "scan-1 · frame 17 of 500"
    fig = frames_figure(comb, smooth, (20, 40, 41, 61), title, Units())
    assert fig.get_suptitle() == title and not _bars(fig)
    assert [ax.get_xlabel() for ax in fig.axes] == ["x: line index (px)"] * 2
    assert fig.axes[0].images[0].get_extent() == [-0.5, 79.5, 63.5, -0.5]
    crop = crop_figure(comb, smooth, (20, 40, 41, 61), title + " · rows", Units())
    assert crop.get_suptitle().startswith(title) and crop.axes[0].images[0].get_extent() == [40.5, 60.5, 39.5, 19.5]


def test_scale_bar_in_micrometres_when_the_pixel_size_is_known() -> None:
    comb, smooth = _frames()
    fig = frames_figure(comb, smooth, (20, 40, 41, 61), "t", UM)
    bars = _bars(fig)
    assert len(bars) == 2 and fig.axes[0].get_xticks().size == 0
    label = bars[0].txt_label.get_text()
    assert label == "50 µm"  # a quarter of 80 px × 4 µm = 80 µm, rounded down to 1/2/5 × 10^k
    assert fig.axes[0].get_aspect() == 2.5 / 4.0


def test_large_frames_are_block_averaged() -> None:
    big = np.arange(3000 * 2100, dtype=np.float64).reshape(3000, 2100)
    small, f = shrink(big)
    assert f == 3 and small.shape == (1000, 700)
    assert small[0, 0] == big[:3, :3].mean()


def test_long_series_are_drawn_as_bins_and_time_in_seconds() -> None:
    rng = np.random.default_rng(0)
    per = {k: list(rng.random(2000)) for k in ("ncc", "ncc_unregistered", "ssim", "psnr")}
    per["pair_ncc_odd"] = list(rng.random(1999))
    fig = metrics_figure(per, "s", UM)
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == ["NCC", "SSIM", "PSNR (dB)", "NCC of frames\nt and t+1"]
    assert all(line.get_xdata().size == BINS for ax in axes for line in ax.get_lines())
    assert sum(isinstance(c, PolyCollection) for c in axes[0].collections) == 2
    assert axes[-1].get_xlabel().startswith("time (s)")
    assert max(axes[0].get_lines()[0].get_xdata()) < 2000 * 0.05
    assert "binned" in fig.get_suptitle()
    short = metrics_figure({"ncc": [0.5, None, 0.7]}, "s", Units())
    assert short.axes[0].get_lines()[0].get_xdata().tolist() == [0, 1, 2]
    assert short.axes[0].get_xlabel().startswith("frame") and metrics_figure({}, "s", Units()) is None


def test_displacement_figure_heat_map_colour_bar_and_micrometres() -> None:
    d = np.random.default_rng(2).normal(3, 1, (30, 16, 4)).astype(np.float32)
    s = summarise_displacement(d, 30, 7, frame=15)
    fig = displacement_figure(s, "scan · displacement", UM)
    [heat] = [image for ax in fig.axes for image in ax.get_images()]
    assert np.allclose(heat.get_array(), s.heatmap.T)
    labels = _labels(fig)
    assert "displacement (px)" in labels and "(µm)" in labels and "y: along the line (µm)" in labels
    assert "time (s)" in labels and "displacement (µm)" in labels
    plain = displacement_figure(s, "t", Units())
    labels = _labels(plain)
    assert "(µm)" not in labels and "frame" in labels and "y: along the line (px)" in labels


def test_displacement_heat_map_spans_uneven_time_bins() -> None:
    """More frames than ``MAX_TIME_BINS``: runs of one and two frames, each drawn over exactly its frames."""
    frames = MAX_TIME_BINS + 200
    d = np.repeat(np.arange(frames, dtype=np.float32)[:, None], 8, axis=1)
    s = summarise_displacement(d, frames, 64, frame=0)
    assert np.unique(np.diff(s.heatmap_edges)).tolist() == [1, 2]
    [heat] = [image for ax in displacement_figure(s, "t", Units()).axes for image in ax.get_images()]
    assert np.allclose(heat.get_array(), s.heatmap.T)
    x0, x1, y0, y1 = heat.get_extent()
    assert (x0, x1) == (-0.5, frames - 0.5) and sorted((y0, y1)) == [-0.5, 7.5]
    assert s.heatmap[:, 0] == pytest.approx([np.arange(a, b).mean() for a, b in zip(s.heatmap_edges[:-1], s.heatmap_edges[1:])])


def test_truth_figure_draws_true_and_estimated() -> None:
    true = summarise_displacement(np.ones((10, 8), np.float32), 10, 4, frame=5)
    est = summarise_displacement(np.full((10, 8), 1.5, np.float32), 10, 4, frame=5)
    fig = truth_figure(est, true, [0.9] * 10, "s · frame 5 of 10", "s · against ground truth", Units())
    top = fig.axes[0]
    assert [line.get_label() for line in top.get_lines()] == ["true", "estimated"]
    assert top.get_title().startswith("s · frame 5 of 10")
    assert np.allclose(top.get_lines()[1].get_ydata(), 1.5)
