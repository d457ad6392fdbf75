"""Plots over time and along the line: per-frame metrics, consecutive-frame NCC, displacement, ground truth.

Series longer than a few hundred frames are drawn as a min–max envelope per bin with the bin mean
(``envelope.py``), so thousands of frames stay readable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from orpam_pipeline.report.displacement import DisplacementSummary
from orpam_pipeline.report.envelope import envelope, needs_envelope
from orpam_pipeline.report.mpl import new_figure
from orpam_pipeline.report.units import Units

WIDTH_IN = 9.0
COLOURS = {"registered": "#1f77b4", "unregistered": "#d62728", "odd-only": "#2ca02c", "truth": "#2ca02c"}


def as_values(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    """A report list (``null`` for undefined) as float64 with NaN."""
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def series(ax: Axes, values: np.ndarray, label: str, colour: str, units: Units, offset: float = 0.0,
           low: np.ndarray | None = None, high: np.ndarray | None = None) -> None:  # fmt: skip
    """One per-frame series against time; with ``low``/``high`` a shaded range around it.

    Long series become per-bin envelopes: the band spans the bin's lowest ``low`` (or value) to its
    highest ``high`` (or value), the line is the bin mean.
    """
    n = values.size
    if n == 0:
        return
    if needs_envelope(n):
        env = envelope(values)
        lo = envelope(low).low if low is not None else env.low
        hi = envelope(high).high if high is not None else env.high
        x = units.times(env.x + offset)
        ax.fill_between(x, lo, hi, color=colour, alpha=0.22, linewidth=0, label="_min–max per bin")
        ax.plot(x, env.mean, color=colour, linewidth=1.2, label=f"{label} (bin mean)")
        return
    x = units.times(np.arange(n) + offset)
    if low is not None and high is not None:
        ax.fill_between(x, low, high, color=colour, alpha=0.22, linewidth=0, label="min–max")
    ax.plot(x, values, color=colour, linewidth=1.2, marker="o" if n <= 60 else None, markersize=2.5, label=label)


def _binned_note(n: int) -> str:
    return " (binned: min–max band and mean per bin)" if needs_envelope(n) else ""


def metrics_figure(per_frame: Mapping[str, Sequence[float | None]], title: str, units: Units) -> Figure | None:
    """NCC, SSIM and PSNR of even vs odd lines per frame (registered, unregistered) and the NCC of consecutive
    frames (merged, unregistered, odd-only), sharing the time axis."""
    rows: list[tuple[str, list[tuple[str, str, str]]]] = [
        (label, [(name, key + suffix, name) for name, suffix in (("registered", ""), ("unregistered", "_unregistered"))
                 if per_frame.get(key + suffix)])
        for label, key in (("NCC", "ncc"), ("SSIM", "ssim"), ("PSNR (dB)", "psnr"))
    ]  # fmt: skip
    rows.append(("NCC of frames\nt and t+1", [
        (name, key, colour) for name, key, colour in (("merged (registered)", "pair_ncc_merged", "registered"),
                                                      ("unregistered", "pair_ncc_unregistered", "unregistered"),
                                                      ("odd-only", "pair_ncc_odd", "odd-only")) if per_frame.get(key)]))  # fmt: skip
    rows = [row for row in rows if row[1]]
    if not rows:
        return None
    fig = new_figure(WIDTH_IN, 1.75 * len(rows) + 0.8)
    axes = np.atleast_1d(fig.subplots(len(rows), 1, sharex=True))
    n = 0
    for ax, (label, lines) in zip(axes, rows):
        for name, key, colour in lines:
            values = as_values(per_frame[key])
            n = max(n, values.size)
            series(ax, values, name, COLOURS[colour], units)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7)
    axes[-1].set_xlabel(units.time_label + " (pairs: of their first frame t)")
    fig.suptitle(title + _binned_note(n), fontsize=11)
    return fig


def _um_axis(ax: Axes, units: Units, side: str = "right") -> None:
    """A second displacement axis in µm when the pixel height is known."""
    if units.pixel_y_um is None:
        return
    k = units.pixel_y_um
    ax.secondary_yaxis(side, functions=(lambda v: v * k, lambda v: v / k)).set_ylabel("displacement (µm)")


def _rows(n: int, units: Units) -> tuple[np.ndarray, str]:
    """Row positions along the line and their label (µm when the pixel height is known)."""
    rows = np.arange(n, dtype=np.float64)
    if units.pixel_y_um is not None:
        return rows * units.pixel_y_um, "y: along the line (µm)"
    return rows, "y: along the line (px)"


def displacement_figure(d: DisplacementSummary, title: str, units: Units) -> Figure:
    """The displacement over time and along the line, in one figure.

    Top left: time × y heat map of the profile (a field averaged across its columns). Top right: the
    mean profile over all frames with each row's min–max. Bottom left: each frame's mean with the
    min–max of its values, on the heat map's time axis. Bottom right: the colour bar.
    """
    fig = new_figure(WIDTH_IN, 5.6)
    grid = fig.add_gridspec(2, 2, width_ratios=(4.2, 1.3), height_ratios=(1.6, 1.0))
    heat = fig.add_subplot(grid[0, 0])
    profile = fig.add_subplot(grid[0, 1], sharey=heat)
    over_time = fig.add_subplot(grid[1, 0], sharex=heat)
    holder = fig.add_subplot(grid[1, 1])
    holder.set_axis_off()
    k = units.pixel_y_um or 1.0
    x_edges = units.times(d.heatmap_edges - 0.5)
    y_edges = (np.arange(d.heatmap.shape[1] + 1) - 0.5) * k
    mesh = heat.pcolorfast(x_edges, y_edges, d.heatmap.T, cmap="viridis", rasterized=True)
    heat.set_ylim(y_edges[-1], y_edges[0])
    y, y_label = _rows(d.profile_mean.size, units)
    heat.set_ylabel(y_label)
    heat.tick_params(labelbottom=False)
    heat.set_title("displacement (colour) per frame and row", fontsize=10)
    profile.fill_betweenx(y, d.profile_min, d.profile_max, color=COLOURS["registered"], alpha=0.22, linewidth=0,
                          label="min–max")  # fmt: skip
    profile.plot(d.profile_mean, y, color=COLOURS["registered"], linewidth=1.3, label="mean")
    profile.set_title("over all frames", fontsize=10)
    profile.set_xlabel("displacement (px)")
    profile.tick_params(labelleft=False)
    profile.grid(alpha=0.3)
    profile.legend(loc="best", fontsize=7)
    series(over_time, d.mean, "frame mean", COLOURS["registered"], units, low=d.min, high=d.max)
    over_time.set_xlabel(units.time_label)
    over_time.set_ylabel("displacement (px)")
    over_time.set_title("per frame: mean and min–max of its values" + _binned_note(d.mean.size), fontsize=10)
    over_time.grid(alpha=0.3)
    over_time.legend(loc="best", fontsize=7)
    cax = holder.inset_axes((0.05, 0.72, 0.9, 0.1))
    bar = fig.colorbar(mesh, cax=cax, orientation="horizontal")
    bar.set_label("displacement (px)")
    if units.pixel_y_um is not None:
        um = cax.secondary_xaxis("top", functions=(lambda v: v * k, lambda v: v / k))
        um.set_xlabel("(µm)")
        _um_axis(over_time, units)
    fig.suptitle(title, fontsize=11)
    return fig


def truth_figure(estimated: DisplacementSummary | None, true: DisplacementSummary, ncc_truth: Sequence[float | None],
                 frame_title: str, title: str, units: Units) -> Figure:  # fmt: skip
    """True vs estimated displacement (profile at the shown frame; frame mean over time) and NCC vs truth."""
    fig = new_figure(WIDTH_IN, 6.4)
    top, middle, bottom = fig.subplots(3, 1)
    if true.frame_profile is not None:
        y, label = _rows(true.frame_profile.size, units)
        top.plot(y, true.frame_profile, color=COLOURS["truth"], linewidth=1.3, label="true")
        if estimated is not None and estimated.frame_profile is not None:
            top.plot(y, estimated.frame_profile, color=COLOURS["registered"], linewidth=1.3, linestyle="--",
                     label="estimated")  # fmt: skip
        top.set_xlabel(label)
    top.set_title(f"{frame_title}: displacement profile (field: mean across columns)", fontsize=10)
    top.set_ylabel("displacement (px)")
    series(middle, true.mean, "true", COLOURS["truth"], units)
    if estimated is not None:
        series(middle, estimated.mean, "estimated", COLOURS["registered"], units)
    middle.set_title("mean displacement per frame" + _binned_note(true.mean.size), fontsize=10)
    middle.set_ylabel("displacement (px)")
    middle.set_xlabel(units.time_label)
    ncc = as_values(ncc_truth)
    series(bottom, ncc, "registered even vs true even", COLOURS["registered"], units)
    bottom.set_title("NCC of the registered even lines vs the true even lines" + _binned_note(ncc.size), fontsize=10)
    bottom.set_ylabel("NCC vs truth")
    bottom.set_xlabel(units.time_label)
    for ax in (top, middle, bottom):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig
