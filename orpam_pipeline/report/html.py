"""Self-contained HTML report of one registered scan: warnings, numbers and the figures.

Image figures are inline base64 PNGs and plots inline SVG (the same bytes as the files in
``figures/``), so the single file opens in any browser with nothing else beside it.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from orpam_pipeline.report.rendered import FIGURES_DIR, RenderedFigure

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
figure { margin: 1em 0; }
figure img, figure svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; max-width: 60em; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 1em; max-width: 60em; }
.warnings { background: #fdecea; border-left: 4px solid #d93025; padding: 0.5em 1em; max-width: 60em; }
.warnings code { font-weight: bold; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
ul.files { font-size: 0.9em; }
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


def _scale(physical: Any) -> list[tuple[str, str]]:
    """Pixel size and frame interval as the figures use them, or what they fall back to."""
    if not isinstance(physical, Mapping):
        return []
    pixel, interval = physical.get("pixel_um"), physical.get("frame_interval_s")
    size = (f"{pixel.get('y')} µm along a line (y) × {pixel.get('x')} µm between lines (x)"
            if isinstance(pixel, Mapping) else "unknown: figures are in pixels")  # fmt: skip
    return [("Pixel size", size), ("Frame interval", f"{interval} s" if interval else "unknown: time in frames")]


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
    rows += [f"<tr><td>{label}</td><td>{escape(value)}</td></tr>" for label, value in _scale(report.get("physical"))]
    html = '<table class="meta"><tbody>' + "".join(rows) + "</tbody></table>"
    params = report.get("method_params")
    if params:
        text = json.dumps(params, indent=2, sort_keys=True, default=str)
        html += f"<p>Method parameters:</p><pre>{escape(text)}</pre>"
    return html


def _truth_table(report: Mapping[str, Any]) -> str:
    """The error against the simulation's ground truth, or why a truth beside the scan was not used."""
    truth = report.get("truth")
    if not isinstance(truth, Mapping):
        return ""
    if truth.get("note"):
        return f'<h2>Ground truth</h2><p class="note">{escape(str(truth["note"]))}</p>'
    rows = [
        ("NCC, registered even vs true even lines (mean over frames)", _fmt(truth.get("ncc_truth"), 4)),
        ("PSNR, registered even vs true even lines (dB, mean over frames)", _fmt(truth.get("psnr_truth"), 2)),
        ("Displacement RMS error (px)", _fmt(truth.get("disp_rms_px"), 3)),
    ]
    body = "".join(f"<tr><td>{escape(label)}</td><td>{value}</td></tr>" for label, value in rows)
    return (
        "<h2>Against ground truth</h2>"
        f"<p>Simulated scan: the truth at <code>{escape(str(truth.get('store', '')))}</code> is what "
        "registration should give; unlike the metrics above, copying the odd lines does not score well here. "
        "Scored by <code>evaluate/scoring.py</code>, as <code>orpam evaluate</code> does.</p>"
        f'<table class="truth"><tbody>{body}</tbody></table>'
    )


def _svg_body(svg: str) -> str:
    """An SVG document as an element to inline in HTML (its XML prolog and doctype dropped)."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _figure(fig: RenderedFigure) -> str:
    """One ``<figure>``: images as an inline PNG, plots as inline SVG (PNG when drawn without), with the caption."""
    if fig.kind == "image" or fig.svg is None:
        data = base64.b64encode(fig.png).decode("ascii")
        body = (f'<img alt="{escape(fig.name)}" style="width: {fig.css_width}px" '
                f'src="data:image/png;base64,{data}">')  # fmt: skip
    else:
        body = f'<div style="width: {fig.css_width}px; max-width: 100%">{_svg_body(fig.svg)}</div>'
    return f'<figure id="figure-{escape(fig.name)}">{body}<figcaption>{escape(fig.caption)}</figcaption></figure>'


_SECTIONS = (
    ("Merged frames, before and after", ("frames",)),
    ("Zoomed crop", ("crop",)),
    ("Displacement", ("displacement",)),
    ("True vs estimated", ("truth",)),
    ("Per-frame metrics over time", ("metrics_per_frame",)),
)


def _figure_sections(figures: Sequence[RenderedFigure]) -> str:
    if not figures:
        return ("<h2>Figures</h2><p>Not drawn (<code>--figures none</code>): <code>orpam report STORE</code> draws "
                "them from the store.</p>")  # fmt: skip
    by_name = {f.name: f for f in figures}
    parts = []
    for heading, names in _SECTIONS:
        shown = [by_name[n] for n in names if n in by_name]
        if shown:
            parts.append(f"<h2>{escape(heading)}</h2>" + "".join(_figure(f) for f in shown))
    return "".join(parts)


def _files_list(figures: Sequence[RenderedFigure]) -> str:
    """Where each figure is as a standalone PNG and SVG, as drawn (relative to this page)."""
    written = [f for f in figures if f.png_path is not None]
    if not written:
        return ""
    items = "".join(
        f"<li>{escape(f.name)}: <code>{FIGURES_DIR}/{escape(f.name)}.png</code>"
        + (f", <code>{FIGURES_DIR}/{escape(f.name)}.svg</code>" if f.svg_path is not None else "") + "</li>"
        for f in written
    )
    return f'<h2>Figure files</h2><p>Every figure also stands beside this page, for papers:</p><ul class="files">{items}</ul>'


def render_report_html(report: Mapping[str, Any], figures: Sequence[RenderedFigure]) -> str:
    """The complete ``report.html`` text: ``report`` is report.json's content, ``figures`` as drawn."""
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
        _truth_table(report),
        _figure_sections(figures),
        _files_list(figures),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)
