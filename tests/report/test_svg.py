"""SVG plots are well-formed XML: series split at NaN gaps, escaped text, bands, round ticks."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from orpam_pipeline.report.svg import line_plot, nice_ticks

SVG_NS = "{http://www.w3.org/2000/svg}"


def test_line_plot_well_formed_with_gaps() -> None:
    series = {
        "a <&>": [0.9, 0.95, np.nan, 0.97, 0.96, np.nan, 0.5],
        "b": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
        "empty": [np.nan] * 7,
    }
    svg = line_plot(series, title="T & <t>", xlabel="frame", ylabel="NCC")
    root = ET.fromstring(svg)
    assert root.tag == SVG_NS + "svg"
    paths = root.findall(f".//{SVG_NS}path[@class='series']")
    assert len(paths) == 3
    assert paths[0].get("d").count("M") == 3
    assert paths[1].get("d").count("M") == 1
    assert paths[2].get("d") == ""
    texts = [t.text for t in root.iter(SVG_NS + "text")]
    assert "a <&>" in texts and "T & <t>" in texts
    assert any(t and t.replace(".", "").isdigit() for t in texts)
    colours = {p.get("stroke") for p in paths}
    assert len(colours) == 3


def test_line_plot_x_band_and_degenerate() -> None:
    x = np.arange(10) * 2.0
    svg = line_plot({"m": np.zeros(10)}, x=x, band=(np.full(10, -1.0), np.ones(10)))
    root = ET.fromstring(svg)
    assert len(root.findall(f".//{SVG_NS}polygon")) == 1
    ET.fromstring(line_plot({"all nan": [np.nan, np.nan]}))
    ET.fromstring(line_plot({"one": [3.0]}))
    ET.fromstring(line_plot({}))
    with pytest.raises(ValueError):
        line_plot({"m": [1, 2]}, x=[0, 1, 2])


def test_nice_ticks() -> None:
    t = nice_ticks(0.0, 1.0)
    assert np.allclose(t, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert np.all(np.mod(nice_ticks(0, 3, 6, integer=True), 1) == 0)
