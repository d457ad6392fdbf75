"""The HTML page: warnings first, escaped text, the numbers, images as inline PNG, plots as inline SVG."""

from __future__ import annotations

import base64
import re

import numpy as np

from orpam_pipeline.report.html import render_report_html
from orpam_pipeline.report.rendered import RenderedFigure

_SVG = '<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "x" "y">\n<svg xmlns="http://www.w3.org/2000/svg"><g id="a"/></svg>\n'


def _figure(name: str, kind: str, written: bool = True) -> RenderedFigure:
    path = (lambda ext: f"/x/figures/{name}.{ext}") if written else (lambda ext: None)
    return RenderedFigure(name, kind, f"caption of {name} <i>", b"\x89PNG" + name.encode(), _SVG, 9.0,  # type: ignore[arg-type]
                          path("png"), path("svg"))  # fmt: skip


def _report(t: int = 6) -> dict:
    rng = np.random.default_rng(0)
    per = {k: list(rng.random(t)) for k in ("ncc", "ssim", "ncc_unregistered", "ssim_unregistered")}
    return {
        "scan": "<b>&", "store": "out/<b>&/scan.zarr", "frames": t, "method": "classical",
        "method_params": {"max_shift": 8, "note": "<x>"}, "created": "2025-01-01T00:00:00Z", "package_version": "0.1.0",
        "ncc_mean": 0.9712345, "ssim_mean": 0.8823456, "psnr_mean": 33.456789, "ncc_mean_unregistered": 0.6512345,
        "ssim_mean_unregistered": 0.5423456, "psnr_mean_unregistered": 21.123456, "tncc_merged": 0.9612345,
        "tncc_unregistered": 0.9312345, "tncc_odd": 0.9634567, "tncg": 0.0022222, "tncg_unregistered": None,
        "per_frame": per, "warnings": [{"code": "lines-are-rows", "stage": "frames", "message": "rows <y>"}],
        "truth": {"store": "/sim/truth/a.zarr", "note": None, "ncc_truth": 0.98765, "psnr_truth": 31.234,
                  "disp_rms_px": 0.1234, "per_frame": {}},
    }  # fmt: skip


def test_page_has_warnings_first_numbers_figures_and_escaping() -> None:
    figures = [_figure("frames", "image"), _figure("crop", "image"), _figure("displacement", "plot"),
               _figure("truth", "plot"), _figure("metrics_per_frame", "plot")]  # fmt: skip
    html = render_report_html(_report(), figures)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<b>&" not in html and "&lt;b&gt;&amp;" in html and "&lt;x&gt;" in html and "rows &lt;y&gt;" in html
    assert html.index('id="warnings"') < html.index("<h2>Summary</h2>") < html.index("Against ground truth")
    for number in ("0.9712", "0.8823", "33.46", "0.6512", "0.5423", "21.12", "0.9612", "0.9312", "0.9635", "0.0022",
                   "n/a", "0.9877", "31.23", "0.123"):  # fmt: skip
        assert number in html, number
    order = [html.index(f'id="figure-{f.name}"') for f in figures]
    assert order == sorted(order)
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert [base64.b64decode(p) for p in pngs] == [b"\x89PNGframes", b"\x89PNGcrop"]
    assert html.count("<svg") == 3 and "<?xml" not in html and "<!DOCTYPE svg" not in html
    assert "caption of frames &lt;i&gt;" in html
    assert "figures/metrics_per_frame.svg" in html and 'style="width: 864px"' in html
    scaled = render_report_html({**_report(), "physical": {"pixel_um": {"y": 2.5, "x": 4.0}, "frame_interval_s": 0.05}}, [])
    assert "2.5 µm along a line (y) × 4.0 µm between lines (x)" in scaled and "0.05 s" in scaled
    bare = render_report_html({**_report(), "physical": {"pixel_um": None, "frame_interval_s": None}}, [])
    assert "unknown: figures are in pixels" in bare and "unknown: time in frames" in bare


def test_page_without_figures_truth_or_warnings() -> None:
    report = {"scan": "s", "per_frame": {"ncc": [0.5, 0.6]}, "truth": None, "warnings": []}
    html = render_report_html(report, [_figure("frames", "image", written=False)])
    assert 'id="warnings"' not in html and "ground truth</h2>" not in html and "Figure files" not in html
    assert "Displacement" not in html and "n/a" in html
    unused = {**report, "truth": {"store": None, "note": "truth /t ignored: <why>"}}
    assert "truth /t ignored: &lt;why&gt;" in render_report_html(unused, [])
