"""Inline SVG line plots for the HTML report: axes, numeric ticks, legend, NaN gaps."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

_LEFT, _RIGHT, _TOP, _BOTTOM = 66, 16, 46, 44


def nice_ticks(lo: float, hi: float, target: int = 5, integer: bool = False) -> np.ndarray:
    """Round tick positions (1, 2 or 5 × 10^k apart) inside ``[lo, hi]``."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return np.array([lo])
    raw = span / max(target, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 5.0, 10.0) if m * mag >= raw)
    if integer:
        step = max(step, 1.0)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return np.arange(first, last + 1) * step


def format_tick(value: float, step: float) -> str:
    """Tick label with just enough decimals for the tick spacing."""
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or (step > 0 and step < 1e-4):
        return f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 3
    return f"{value:.{decimals}f}"


def _limits(values: list[np.ndarray], pad_frac: float) -> tuple[float, float]:
    """Finite min/max of all arrays, padded; a unit range around a single value."""
    finite = [v[np.isfinite(v)] for v in values]
    finite = [v for v in finite if v.size]
    if not finite:
        return 0.0, 1.0
    lo = float(min(v.min() for v in finite))
    hi = float(max(v.max() for v in finite))
    if hi == lo:
        half = max(abs(lo) * 0.05, 0.5)
        return lo - half, hi + half
    pad = (hi - lo) * pad_frac
    return lo - pad, hi + pad


def _segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of True in a boolean array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def line_plot(
    series: Mapping[str, Sequence[float]],
    x: Sequence[float] | None = None,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    width: int = 640,
    height: int = 260,
    band: tuple[Sequence[float], Sequence[float]] | None = None,
    band_label: str = "min–max",
) -> str:
    """An inline ``<svg>`` line plot, one ``<path class="series">`` per series.

    Without ``x`` each series is drawn against its own index 0..n-1. Non-finite values (NaN,
    ±inf) break a line into separate pieces rather than being drawn as zero. ``band`` is an
    optional ``(low, high)`` envelope over ``x`` shaded behind the lines.
    """
    names = list(series)
    ys = [np.asarray(series[n], dtype=np.float64).reshape(-1) for n in names]
    if x is not None:
        xv = np.asarray(x, dtype=np.float64).reshape(-1)
        for n, y in zip(names, ys):
            if y.size != xv.size:
                raise ValueError(f"series {n!r} has {y.size} values for {xv.size} x positions")
        xs = [xv] * len(ys)
    else:
        xs = [np.arange(y.size, dtype=np.float64) for y in ys]
    band_arr = None
    if band is not None:
        band_arr = [np.asarray(b, dtype=np.float64).reshape(-1) for b in band]
        band_x = xs[0] if xs else np.arange(band_arr[0].size, dtype=np.float64)
        if x is not None:
            band_x = np.asarray(x, dtype=np.float64).reshape(-1)
        if not (band_arr[0].size == band_arr[1].size == band_x.size):
            raise ValueError("band low/high must match the x positions")

    y_parts = ys + (band_arr or [])
    x_parts = [xx[np.isfinite(yy)] for xx, yy in zip(xs, ys)]
    if band_arr is not None:
        x_parts.append(band_x)
    x_lo, x_hi = _limits(x_parts, 0.0)
    y_lo, y_hi = _limits(y_parts, 0.06)
    integer_x = all(np.all(np.mod(p[np.isfinite(p)], 1) == 0) for p in x_parts)

    pw, ph = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def px(v: np.ndarray | float) -> np.ndarray | float:
        return _LEFT + (np.asarray(v) - x_lo) / (x_hi - x_lo) * pw

    def py(v: np.ndarray | float) -> np.ndarray | float:
        return _TOP + ph - (np.asarray(v) - y_lo) / (y_hi - y_lo) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.1f}" y="16" text-anchor="middle" font-size="13" '
        f'font-weight="bold">{escape(title)}</text>',
    ]
    xt = nice_ticks(x_lo, x_hi, 6, integer_x)
    yt = nice_ticks(y_lo, y_hi, 5)
    x_step = float(xt[1] - xt[0]) if xt.size > 1 else 1.0
    y_step = float(yt[1] - yt[0]) if yt.size > 1 else 1.0
    for v in yt:
        yy = py(v)
        out.append(f'<line x1="{_LEFT}" y1="{yy:.1f}" x2="{_LEFT + pw}" y2="{yy:.1f}" stroke="#e4e4e4"/>')
        out.append(
            f'<text x="{_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{escape(format_tick(v, y_step))}</text>'
        )
    for v in xt:
        xx = px(v)
        out.append(
            f'<line x1="{xx:.1f}" y1="{_TOP + ph}" x2="{xx:.1f}" y2="{_TOP + ph + 5}" stroke="#333"/>'
        )
        out.append(
            f'<text x="{xx:.1f}" y="{_TOP + ph + 17}" text-anchor="middle">'
            f"{escape(format_tick(v, x_step))}</text>"
        )
    out.append(
        f'<rect x="{_LEFT}" y="{_TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>'
    )
    out.append(
        f'<text x="{_LEFT + pw / 2:.1f}" y="{height - 6}" text-anchor="middle">{escape(xlabel)}</text>'
    )
    out.append(
        f'<text transform="translate(14 {_TOP + ph / 2:.1f}) rotate(-90)" text-anchor="middle">'
        f"{escape(ylabel)}</text>"
    )

    if band_arr is not None:
        lo_b, hi_b = band_arr
        ok = np.isfinite(lo_b) & np.isfinite(hi_b) & np.isfinite(band_x)
        for a, b in _segments(ok):
            bx = px(band_x[a:b])
            pts = [f"{u:.1f},{v:.1f}" for u, v in zip(bx, py(hi_b[a:b]))]
            pts += [f"{u:.1f},{v:.1f}" for u, v in zip(bx[::-1], py(lo_b[a:b])[::-1])]
            out.append(f'<polygon class="band" points="{" ".join(pts)}" fill="#1f77b4" fill-opacity="0.18"/>')

    if not any(np.isfinite(y).any() for y in ys):
        out.append(
            f'<text x="{_LEFT + pw / 2:.1f}" y="{_TOP + ph / 2:.1f}" text-anchor="middle" '
            f'fill="#888">no finite values</text>'
        )
    for i, (name, xx, yy) in enumerate(zip(names, xs, ys)):
        colour = PALETTE[i % len(PALETTE)]
        ok = np.isfinite(yy) & np.isfinite(xx)
        pieces = []
        for a, b in _segments(ok):
            coords = [f"{u:.1f},{v:.1f}" for u, v in zip(px(xx[a:b]), py(yy[a:b]))]
            pieces.append("M" + " L".join(coords) + (" l0,0" if b - a == 1 else ""))
        out.append(
            f'<path class="series" data-name="{escape(name)}" d="{" ".join(pieces)}" fill="none" '
            f'stroke="{colour}" stroke-width="1.6" stroke-linejoin="round" stroke-linecap="round"/>'
        )

    lx = _LEFT
    legend = [(n, PALETTE[i % len(PALETTE)], "line") for i, n in enumerate(names)]
    if band_arr is not None:
        legend.append((band_label, "#1f77b4", "band"))
    for name, colour, kind in legend:
        if kind == "line":
            out.append(f'<line x1="{lx}" y1="32" x2="{lx + 18}" y2="32" stroke="{colour}" stroke-width="2.5"/>')
        else:
            out.append(f'<rect x="{lx}" y="27" width="18" height="10" fill="{colour}" fill-opacity="0.18"/>')
        out.append(f'<text x="{lx + 22}" y="36">{escape(name)}</text>')
        lx += 22 + 7 * len(name) + 16
    out.append("</svg>")
    return "\n".join(out)
