"""Lazy frame access for training and manifest checks: scan files/directories and ingested zarr stores.

Kept free of torch so that checking a manifest does not import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OrpamError
from .source import open_scan

__all__ = ["FrameReader", "open_frames"]


class FrameReader:
    """Lazy ``(T, Y, X)`` float32 frames of one scan, in pipeline orientation, with its ``first_line``."""

    def __init__(self, path: Path, shape: tuple[int, int, int], first_line: str, reader: Any,
                 transpose: bool = False) -> None:
        self.path = path
        self.shape = shape
        self.first_line = first_line
        self._reader = reader
        self._transpose = transpose

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` as float32 ``(n, Y, X)``."""
        if self._reader is None:
            raise OrpamError(f"{self.path}: frame reader is closed")
        if hasattr(self._reader, "read"):
            data = self._reader.read(start, stop)
        else:
            data = np.asarray(self._reader[start:stop], dtype=np.float32)
        if self._transpose:
            data = data.transpose(0, 2, 1)
        return np.ascontiguousarray(data, dtype=np.float32)

    def close(self) -> None:
        """Release the underlying file handles."""
        if self._reader is not None and hasattr(self._reader, "close"):
            self._reader.close()
        self._reader = None

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_frames(path: Path | str, scan_lines: str = "columns", first_line: str = "forward") -> FrameReader:
    """Open a scan file/directory (via ``open_scan``) or an ingested zarr store for lazy frame reads.

    Files are transposed when ``scan_lines == "rows"``; zarr stores are already oriented and their
    recorded ``conventions.first_line`` wins over ``first_line``.
    """
    from orpam_pipeline.store.layout import get_array, is_store

    path = Path(path)
    if is_store(path):
        from orpam_pipeline.store.layout import FRAMES, open_scan_store

        group = open_scan_store(path)
        frames = get_array(group, FRAMES)
        conv = dict(group.attrs.get("conventions", {}))
        t, y, x = (int(s) for s in frames.shape)
        return FrameReader(path, (t, y, x), str(conv.get("first_line", first_line)), frames)
    source = open_scan(path)
    t, y, x = source.shape
    rows = scan_lines == "rows"
    return FrameReader(path, (t, x, y) if rows else (t, y, x), first_line, source, transpose=rows)
