"""PNG encoding round-trips through Pillow; SVG plots are well-formed XML."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pytest
from PIL import Image

from orpam_pipeline.report.png import encode_png, to_uint8, upscale_nearest
from orpam_pipeline.report.svg import line_plot, nice_ticks

SVG_NS = "{http://www.w3.org/2000/svg}"


def _decode(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    img.load()
    return np.asarray(img)


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (64, 33)])
def test_png_gray_round_trip(shape: tuple[int, int]) -> None:
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = _decode(encode_png(img))
    assert out.dtype == np.uint8 and out.shape == shape
    assert np.array_equal(out, img)


def test_png_rgb_round_trip_and_crcs() -> None:
    img = np.random.default_rng(1).integers(0, 256, (9, 5, 3), dtype=np.uint8)
    data = encode_png(img)
    assert np.array_equal(_decode(data), img)
    pos = 8
    kinds = []
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        crc = int.from_bytes(data[pos + 8 + n : pos + 12 + n], "big")
        assert crc == zlib.crc32(kind + body)
        kinds.append(kind)
        pos += 12 + n
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


def test_png_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4, 4), dtype=np.uint8))


def test_to_uint8_window_and_nan() -> None:
    img = np.linspace(0, 1, 1000).reshape(20, 50)
    img[0, 0] = np.nan
    img[0, 1] = np.inf
    out = to_uint8(img, 0.0, 1.0)
    assert out[0, 0] == 0 and out[0, 1] == 0
    assert out[-1, -1] == 255 and out[10, 0] == round(img[10, 0] * 255)
    auto = to_uint8(img)
    assert auto.dtype == np.uint8 and auto.max() == 255 and auto.min() == 0
    assert np.all(to_uint8(np.full((3, 3), 2.0)) == 0)
    assert np.all(to_uint8(np.full((3, 3), np.nan)) == 0)


def test_upscale_nearest() -> None:
    img = np.arange(6, dtype=np.uint8).reshape(2, 3)
    up = upscale_nearest(img, 4)
    assert up.shape == (8, 12)
    assert np.array_equal(up[::4, ::4], img) and np.all(up[4:8, 8:12] == 5)
    assert upscale_nearest(np.zeros((2, 2, 3), np.uint8), 3).shape == (6, 6, 3)
    with pytest.raises(ValueError):
        upscale_nearest(img, 0)


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
