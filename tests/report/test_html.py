"""The HTML report has every section, the numbers, escaped text and the zoomed crop."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

from orpam_pipeline.report.crop import choose_crop
from orpam_pipeline.report.html import render_report_html


def _report(t: int = 6) -> dict:
    rng = np.random.default_rng(0)
    per = {k: list(rng.random(t)) for k in ("ncc", "ssim", "ncc_unregistered", "ssim_unregistered")}
    per["psnr"] = list(30 + rng.random(t))
    per["psnr_unregistered"] = list(20 + rng.random(t))
    for k in ("pair_ncc_merged", "pair_ncc_unregistered", "pair_ncc_odd"):
        per[k] = list(rng.random(t - 1))
    per["pair_ncc_odd"][2] = float("nan")
    return {
        "scan": "<b>&",
        "store": "out/<b>&/scan.zarr",
        "frames": t,
        "method": "classical",
        "method_params": {"max_shift": 8, "note": "<x>"},
        "created": "2025-01-01T00:00:00Z",
        "package_version": "0.1.0",
        "ncc_mean": 0.9712345,
        "ssim_mean": 0.8823456,
        "psnr_mean": 33.456789,
        "ncc_mean_unregistered": 0.6512345,
        "ssim_mean_unregistered": 0.5423456,
        "psnr_mean_unregistered": 21.123456,
        "tncc_merged": 0.9612345,
        "tncc_unregistered": 0.9312345,
        "tncc_odd": 0.9634567,
        "tncg": 0.0022222,
        "tncg_unregistered": float("nan"),
        "per_frame": per,
    }


def _frames(h: int = 64, w: int = 80) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:h, :w]
    smooth = np.sin(yy / 7.0) + np.cos(xx / 9.0)
    comb = smooth.copy()
    comb[20:40, 41:61:2] += 3.0
    return comb, smooth


def test_html_has_sections_numbers_and_escaping() -> None:
    comb, smooth = _frames()
    box = choose_crop(comb, 16)
    disp = np.random.default_rng(1).normal(0, 1, (6, 64))
    html = render_report_html(
        _report(), {"unregistered": comb, "registered": smooth, "odd_only": smooth[:, 0::2]}, box, disp
    )
    assert html.startswith("<!DOCTYPE html>")
    assert "<b>&" not in html and "&lt;b&gt;&amp;" in html
    assert "&lt;x&gt;" in html
    for text in ("Summary", "Merged frames, before and after", "Zoomed crop", "Displacement profile",
                 "Per-frame metrics over time", "Consecutive-frame NCC over time"):
        assert text in html
    for number in ("0.9712", "0.8823", "33.46", "0.6512", "0.5423", "21.12", "0.9612", "0.9312",
                   "0.9635", "0.0022", "NaN"):
        assert number in html
    assert html.count("<svg") == 5
    assert html.count('class="band"') == 1
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(pngs) == 5
    crop = np.asarray(Image.open(io.BytesIO(base64.b64decode(pngs[3]))))
    assert crop.shape == (128, 128)


def test_html_without_displacement_and_sparse_report() -> None:
    comb, smooth = _frames(40, 41)
    html = render_report_html({"scan": "s", "per_frame": {"ncc": [0.5, 0.6]}}, {"unregistered": comb,
                              "registered": smooth}, (0, 16, 0, 16), None)
    assert "Displacement profile" not in html
    assert "n/a" in html
    assert html.count("<svg") == 1
    html1 = render_report_html(_report(), {"unregistered": comb, "registered": smooth}, (0, 8, 0, 8),
                               np.zeros(40))
    assert "Displacement profile" in html1 and 'class="band"' not in html1
