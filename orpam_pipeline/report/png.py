"""Minimal PNG encoding of uint8 grey or RGB images (no imaging library needed)."""

from __future__ import annotations

import struct
import zlib

import numpy as np

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
