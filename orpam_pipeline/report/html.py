"""Self-contained HTML report of one registered scan: numbers, before/after images and plots.

Images are inline base64 PNGs and plots inline SVG, so the single file opens in any browser
with nothing else beside it.
"""

from __future__ import annotations

import base64
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from orpam_pipeline.report.intensity import display_window, to_uint8
from orpam_pipeline.report.png import encode_png
from orpam_pipeline.report.svg import line_plot
from orpam_pipeline.report.tiles import upscale_nearest

MAX_DISPLAY = 2048
CROP_DISPLAY = 192

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1.5em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f2f2f2; }
table.meta td { text-align: left; }
.figures { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
figure { margin: 0; }
figure img { max-width: 100%; border: 1px solid #999; }
figure.full img { width: 440px; height: auto; }
img.pixelated { image-rendering: pixelated; image-rendering: crisp-edges; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; max-width: 440px; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 1em; max-width: 60em; }
.warnings { background: #fdecea; border-left: 4px solid #d93025; padding: 0.5em 1em; max-width: 60em; }
.warnings code { font-weight: bold; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.plots svg { display: block; margin: 0.5em 0; max-width: 100%; height: auto; }
"""


def _fmt(value: Any, digits: int = 4) -> str:
    """A metric value for the page; ``n/a`` when absent, ``NaN`` / ``inf`` spelled out."""
    if value is None:
        return "n/a"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return escape(str(value))
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}f}"


def _first(report: Mapping[str, Any], *keys: str) -> Any:
    """Value of the first key present in the report, else None."""
    for k in keys:
        if k in report and report[k] is not None:
            return report[k]
    return None


def _img_tag(rgb_or_gray: np.ndarray, alt: str, css_class: str = "") -> str:
    """An ``<img>`` holding the image as an inline PNG."""
    data = base64.b64encode(encode_png(rgb_or_gray)).decode("ascii")
    cls = f' class="{css_class}"' if css_class else ""
    h, w = rgb_or_gray.shape[:2]
    return f'<img{cls} alt="{escape(alt)}" width="{w}" height="{h}" src="data:image/png;base64,{data}">'


def _shrink(image: np.ndarray) -> tuple[np.ndarray, int]:
    """Block-mean an oversized frame so the page stays small; returns the image and the factor."""
    h, w = image.shape
    f = max(1, math.ceil(max(h, w) / MAX_DISPLAY))
    if f == 1:
        return image, 1
    hh, ww = h // f * f, w // f * f
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        small = np.nanmean(image[:hh, :ww].reshape(hh // f, f, ww // f, f), axis=(1, 3))
    return small, f


def _with_box(gray: np.ndarray, box: tuple[int, int, int, int], scale: int) -> np.ndarray:
    """RGB copy of a uint8 image with the crop box outlined in yellow."""
    rgb = np.repeat(gray[..., None], 3, axis=2)
    y0, y1, x0, x1 = (v // scale for v in box)
    h, w = gray.shape
    y0, x0 = min(max(y0, 0), h - 1), min(max(x0, 0), w - 1)
    y1, x1 = min(max(y1, y0 + 1), h), min(max(x1, x0 + 1), w)
    t = max(1, min(h, w) // 300)
    colour = np.array([255, 210, 0], dtype=np.uint8)
    rgb[y0 : y0 + t, x0:x1] = colour
    rgb[max(y1 - t, y0) : y1, x0:x1] = colour
    rgb[y0:y1, x0 : x0 + t] = colour
    rgb[y0:y1, max(x1 - t, x0) : x1] = colour
    return rgb


def _clip_box(box: Sequence[int], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Crop box clipped to the image and never empty."""
    h, w = shape
    y0, y1, x0, x1 = (int(v) for v in box)
    y0, x0 = min(max(y0, 0), h - 1), min(max(x0, 0), w - 1)
    return y0, min(max(y1, y0 + 1), h), x0, min(max(x1, x0 + 1), w)


def _summary_table(report: Mapping[str, Any]) -> str:
    """Registered vs unregistered vs odd-only numbers."""
    rows = [
        ("NCC, even vs odd (mean over frames)", "ncc_mean", ("ncc_mean_unregistered", "ncc_unregistered"), None, 4),
        ("SSIM, even vs odd (mean over frames)", "ssim_mean", ("ssim_mean_unregistered", "ssim_unregistered"), None, 4),
        ("PSNR, even vs odd (dB, mean over frames)", "psnr_mean", ("psnr_mean_unregistered", "psnr_unregistered"), None, 2),
        ("TNCC, consecutive frames", "tncc_merged", ("tncc_unregistered",), "tncc_odd", 4),
        ("TNCG, |odd-only − merged| pair NCC", "tncg", ("tncg_unregistered",), None, 4),
    ]
    body = []
    for label, reg, unreg, odd, digits in rows:
        odd_cell = _fmt(_first(report, odd), digits) if odd else "—"
        body.append(
            f"<tr><td>{escape(label)}</td><td>{_fmt(_first(report, reg), digits)}</td>"
            f"<td>{_fmt(_first(report, *unreg), digits)}</td><td>{odd_cell}</td></tr>"
        )
    return (
        '<table class="summary"><thead><tr><th>Metric</th><th>Registered</th><th>Unregistered</th>'
        "<th>Odd-only reference</th></tr></thead><tbody>" + "".join(body) + "</tbody></table>"
    )


def _warnings_box(report: Mapping[str, Any]) -> str:
    """The checks' warnings (docs/warnings.md), shown first so a wrong setting is seen before the numbers."""
    found = [w for w in report.get("warnings") or [] if isinstance(w, Mapping)]
    if not found:
        return ""
    items = "".join(
        f"<li><code>{escape(str(w.get('code', '')))}</code> ({escape(str(w.get('stage', '')))}): "
        f"{escape(str(w.get('message', '')))}</li>"
        for w in found
    )
    return (
        f'<div class="warnings" id="warnings"><p><strong>{len(found)} warning{"s" if len(found) != 1 else ""}'
        f"</strong>: a setting may be wrong; read these before the numbers.</p><ul>{items}</ul></div>"
    )


def _meta_table(report: Mapping[str, Any]) -> str:
    """Provenance: scan, store, method and its parameters, version, time."""
    rows = []
    for key, label in (
        ("scan", "Scan"),
        ("frames", "Frames"),
        ("method", "Method"),
        ("store", "Store"),
        ("created", "Created"),
        ("package_version", "orpam_pipeline version"),
    ):
        if key in report:
            rows.append(f"<tr><td>{label}</td><td>{escape(str(report[key]))}</td></tr>")
    html = '<table class="meta"><tbody>' + "".join(rows) + "</tbody></table>"
    params = report.get("method_params")
    if params:
        text = json.dumps(params, indent=2, sort_keys=True, default=str)
        html += f"<p>Method parameters:</p><pre>{escape(text)}</pre>"
    return html


def _images_section(images: Mapping[str, np.ndarray], crop_box: Sequence[int]) -> str:
    """Before/after merged frames side by side, then the zoomed crops."""
    unreg = np.asarray(images["unregistered"], dtype=np.float64)
    reg = np.asarray(images["registered"], dtype=np.float64)
    if unreg.ndim != 2 or unreg.shape != reg.shape:
        raise ValueError(f"images must be two 2-D frames of one shape, got {unreg.shape} and {reg.shape}")
    box = _clip_box(crop_box, unreg.shape)
    lo, hi = display_window(np.concatenate([unreg.ravel(), reg.ravel()]))
    panels = [("unregistered", "Before: merged frame, even lines as measured"),
              ("registered", "After: merged frame, registered even lines")]
    frames = {"unregistered": unreg, "registered": reg}
    if images.get("odd_only") is not None:
        odd = np.asarray(images["odd_only"], dtype=np.float64)
        if odd.ndim == 2 and odd.shape[0] == unreg.shape[0] and odd.shape[1] < unreg.shape[1]:
            f = max(1, round(unreg.shape[1] / odd.shape[1]))
            odd = np.repeat(odd, f, axis=1)[:, : unreg.shape[1]]
        frames["odd_only"] = odd
        panels.append(("odd_only", "Odd (forward) lines only, columns widened to the frame's aspect"))

    full = []
    for key, caption in panels:
        small, f = _shrink(frames[key])
        gray = to_uint8(small, lo, hi)
        shown = _with_box(gray, box, f) if frames[key].shape == unreg.shape else gray
        note = f" (shown at 1/{f} resolution)" if f > 1 else ""
        full.append(
            f'<figure class="full">{_img_tag(shown, caption, "pixelated")}'
            f"<figcaption>{escape(caption + note)}</figcaption></figure>"
        )

    y0, y1, x0, x1 = box
    crops = {k: frames[k][y0:y1, x0:x1] for k in ("unregistered", "registered")}
    clo, chi = display_window(np.concatenate([c.ravel() for c in crops.values()]))
    factor = max(1, min(8, round(CROP_DISPLAY / max(y1 - y0, x1 - x0))))
    zoom = []
    for key, caption in (("unregistered", "Before (comb artefact)"), ("registered", "After")):
        up = upscale_nearest(to_uint8(crops[key], clo, chi), factor)
        zoom.append(
            f'<figure>{_img_tag(up, caption, "pixelated")}'
            f"<figcaption>{escape(caption)}: rows {y0}–{y1 - 1}, columns {x0}–{x1 - 1}, ×{factor}</figcaption></figure>"
        )
    return (
        "<h2>Merged frames, before and after</h2>"
        "<p>Same display window for both; the yellow box marks the zoomed region.</p>"
        f'<div class="figures">{"".join(full)}</div>'
        "<h2>Zoomed crop</h2>"
        "<p>The region with the strongest column-alternating (comb) energy in the unregistered frame, "
        "nearest-neighbour enlarged so every pixel stays visible.</p>"
        f'<div class="figures">{"".join(zoom)}</div>'
    )


def _displacement_section(displacement: ArrayLike) -> str:
    """Mean displacement profile along the fast axis, with the min/max envelope over time."""
    d = np.asarray(displacement, dtype=np.float64)
    if d.ndim == 1:
        d = d[None]
    elif d.ndim > 2:
        d = d.reshape(d.shape[0], d.shape[1], -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            d = np.nanmean(d, axis=2)
    rows = np.arange(d.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(d, axis=0)
        lo, hi = np.nanmin(d, axis=0), np.nanmax(d, axis=0)
    band = (lo, hi) if d.shape[0] > 1 else None
    what = f"mean over {d.shape[0]} frames" if d.shape[0] > 1 else "one profile for the scan"
    svg = line_plot(
        {"mean displacement": mean},
        x=rows,
        title="Even-line displacement along the fast axis",
        xlabel="row y (position along the fast axis)",
        ylabel="displacement (px)",
        width=900,
        band=band,
        band_label="min–max over frames",
    )
    return (
        "<h2>Displacement profile</h2>"
        f"<p>Estimated shift of the backward (even) lines, {escape(what)}.</p>"
        f'<div class="plots">{svg}</div>'
    )


def _plots_section(per_frame: Mapping[str, Sequence[float]]) -> str:
    """Per-frame intra-frame metrics and consecutive-pair NCC over time."""

    def pick(*pairs: tuple[str, str]) -> dict[str, Sequence[float]]:
        return {label: per_frame[key] for label, key in pairs if key in per_frame}

    plots = []
    for title, ylabel, series in (
        ("NCC of even vs odd lines per frame", "NCC",
         pick(("registered", "ncc"), ("unregistered", "ncc_unregistered"))),
        ("SSIM of even vs odd lines per frame", "SSIM",
         pick(("registered", "ssim"), ("unregistered", "ssim_unregistered"))),
        ("PSNR of even vs odd lines per frame", "PSNR (dB)",
         pick(("registered", "psnr"), ("unregistered", "psnr_unregistered"))),
    ):
        if series:
            plots.append(line_plot(series, title=title, xlabel="frame", ylabel=ylabel, width=900))
    pairs = pick(
        ("merged (registered)", "pair_ncc_merged"),
        ("unregistered", "pair_ncc_unregistered"),
        ("odd-only", "pair_ncc_odd"),
    )
    html = "<h2>Per-frame metrics over time</h2>" + f'<div class="plots">{"".join(plots)}</div>'
    if pairs:
        html += (
            "<h2>Consecutive-frame NCC over time</h2>"
            "<p>NCC of frames t and t+1; the odd-only curve is the physical reference for stability.</p>"
            + '<div class="plots">'
            + line_plot(pairs, title="NCC of consecutive frames", xlabel="pair (t, t+1)",
                        ylabel="NCC", width=900)
            + "</div>"
        )
    return html


def render_report_html(
    report: Mapping[str, Any],
    images: Mapping[str, np.ndarray],
    crop_box: tuple[int, int, int, int],
    displacement: np.ndarray | None,
) -> str:
    """The complete ``report.html`` text for one scan.

    ``report`` is the report.json dict; ``images`` holds one merged frame ``"unregistered"`` and
    ``"registered"`` (same frame index, 2-D) and optionally ``"odd_only"``; ``crop_box`` is
    ``(y0, y1, x0, x1)``, e.g. from :func:`~orpam_pipeline.report.crop.choose_crop`; ``displacement`` is ``(Y,)`` or
    ``(T, Y)`` (extra trailing axes are averaged) or None to leave that section out.
    """
    scan = str(report.get("scan", "scan"))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>OR-PAM registration report: {escape(scan)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>OR-PAM registration report: {escape(scan)}</h1>",
        _warnings_box(report),
        _meta_table(report),
        "<h2>Summary</h2>",
        _summary_table(report),
        '<p class="note">These are the papers\' metrics. Copying the odd image into the even slot '
        "would score NCC = 1 and TNCG = 0 while registering nothing, so read them together with the "
        "images below and, where available, a ground-truth evaluation.</p>",
        _images_section(images, crop_box),
    ]
    if displacement is not None:
        parts.append(_displacement_section(displacement))
    parts.append(_plots_section(report.get("per_frame") or {}))
    parts.append("</body></html>")
    return "\n".join(parts)
