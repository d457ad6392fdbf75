"""Minimal PNG encoding and display scaling for the HTML report (no imaging library needed)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from numpy.typing import ArrayLike

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC-32 of type + data."""
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a ``(H, W)`` grayscale or ``(H, W, 3)`` RGB uint8 image (8 bit, no filter)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"encode_png needs uint8 data, got {img.dtype}")
    if img.ndim == 2:
        colour_type = 0
    elif img.ndim == 3 and img.shape[2] == 3:
        colour_type = 2
    else:
        raise ValueError(f"encode_png needs (H, W) or (H, W, 3), got shape {img.shape}")
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("cannot encode an empty image")
    rows = np.ascontiguousarray(img).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def display_window(image: ArrayLike, low_pct: float = 0.5, high_pct: float = 99.5) -> tuple[float, float]:
    """Percentile window of the finite values; ``(0, 1)`` when there are none."""
    arr = np.asarray(image, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [low_pct, high_pct])
    return float(lo), float(hi)


def to_uint8(image: ArrayLike, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Map ``[lo, hi]`` to ``[0, 255]`` (default: the 0.5/99.5 percentiles), clipping outside.

    Non-finite pixels become 0. A window of zero width gives an all-zero image, so a constant
    frame shows as black rather than failing.
    """
    arr = np.asarray(image, dtype=np.float64)
    if lo is None or hi is None:
        auto_lo, auto_hi = display_window(arr)
        lo = auto_lo if lo is None else lo
        hi = auto_hi if hi is None else hi
    out = np.zeros(arr.shape, dtype=np.uint8)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return out
    finite = np.isfinite(arr)
    scaled = (arr[finite] - lo) * (255.0 / (hi - lo))
    out[finite] = np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)
    return out


def upscale_nearest(image: np.ndarray, factor: int) -> np.ndarray:
    """Repeat every pixel ``factor`` times along both image axes, so zoomed pixels stay sharp."""
    if int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    f = int(factor)
    return np.repeat(np.repeat(np.asarray(image), f, axis=0), f, axis=1)
