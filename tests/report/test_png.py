"""PNG encoding round-trips through Pillow, with valid chunk CRCs."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from orpam_pipeline.report.png import encode_png


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
