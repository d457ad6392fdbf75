"""TIFF stacks through tifffile: only the pages of the requested frames are decoded."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile

from ..errors import ScanError
from ._base import Layout, check_dtype, file_size, nbytes_of, one_line, shape_str


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _guard(path: Path) -> Iterator[None]:
    """Turn errors that tifffile only logs (and works around) into ScanErrors; keep its logs quiet.

    On a damaged file tifffile logs an error and falls back, e.g. to a shorter series of the pages
    it could parse; reading on would silently drop frames.
    """
    logger = logging.getLogger("tifffile")
    handler = _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    if handler.messages:
        raise ScanError(path, f"damaged TIFF (truncated or corrupt?): {' '.join(handler.messages[0].split())[:300]}")


def _open(path: Path) -> tifffile.TiffFile:
    file_size(path)
    try:
        with _guard(path):
            return tifffile.TiffFile(path)
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(path, f"not a readable TIFF file: {one_line(exc)}") from None


def _inspect_open(path: Path, tif: tifffile.TiffFile) -> Layout:
    size = file_size(path)
    try:
        with _guard(path):
            series = tif.series
            if not series:
                raise ScanError(path, "TIFF holds no images")
            if len(series) > 1:
                shapes = ", ".join(shape_str(s.shape) for s in series[:6])
                raise ScanError(path, f"TIFF holds {len(series)} image series of different shapes ({shapes}); need one stack")
            s = series[0]
            shape = tuple(int(v) for v in s.shape)
            key = s.keyframe
            page_shape = tuple(int(v) for v in key.shape)
            dtype = np.dtype(s.dtype)
            n_pages = len(s.pages)
            pages = [s.pages[0], s.pages[n_pages - 1]] if n_pages else []
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(path, f"corrupt TIFF structure: {one_line(exc)}") from None
    if len(page_shape) != 2:
        raise ScanError(
            path,
            f"TIFF pages are {shape_str(page_shape)} (colour or multi-sample, e.g. a 3-4 frame stack saved as RGB); "
            "need single-channel pages (tifffile: photometric='minisblack')",
        )
    if shape[-2:] != page_shape:
        raise ScanError(path, f"TIFF series {shape_str(shape)} does not end in its page shape {shape_str(page_shape)}")
    if math.prod(shape[:-2]) != n_pages:
        raise ScanError(
            path,
            f"TIFF series {shape_str(shape)} needs {math.prod(shape[:-2])} pages but only {n_pages} "
            "are readable (truncated or corrupt?)",
        )
    check_dtype(path, dtype)
    for page in pages:
        offsets = getattr(page, "dataoffsets", ())
        counts = getattr(page, "databytecounts", ())
        if offsets and counts and max(o + c for o, c in zip(offsets, counts)) > size:
            raise ScanError(path, f"truncated: page data runs past the end of the {size}-byte file")
    if getattr(key, "compression", 1) == 1 and nbytes_of(page_shape, dtype) * n_pages > size:
        pages_desc = f"{n_pages} uncompressed pages of {shape_str(page_shape)} {dtype}"
        raise ScanError(path, f"truncated: {pages_desc} do not fit in {size} bytes")
    return Layout(path, "tiff", None, dtype, shape, tuple(range(len(shape))))


def inspect_tiff(path: Path, variable: str | None = None) -> Layout:
    """Series shape and dtype from the TIFF directory (IFDs); pixel data is not decoded."""
    if variable is not None:
        raise ScanError(path, f"a TIFF file has no variables; variable {variable!r} does not apply")
    with _open(path) as tif:
        return _inspect_open(path, tif)


class TiffBackend:
    """Maps frame slices to page indices of the first series and decodes only those pages."""

    def __init__(self, layout: Layout) -> None:
        self._tif: tifffile.TiffFile | None = _open(layout.path)
        try:
            _inspect_open(layout.path, self._tif)
        except ScanError:
            self.close()
            raise
        self._path = layout.path
        self._shape = layout.source_shape
        self.dtype = layout.source_dtype

    def block(self, axis: int | None, start: int, stop: int) -> np.ndarray:
        assert self._tif is not None
        lead = self._shape[:-2]
        pages = np.arange(math.prod(lead)).reshape(lead)
        if axis is not None:
            index = [slice(None)] * len(lead)
            index[axis] = slice(start, stop)
            pages = pages[tuple(index)]
        with _guard(self._path):
            data = self._tif.asarray(key=[int(p) for p in pages.ravel()], series=0)
        return np.asarray(data).reshape(pages.shape + self._shape[-2:])

    def close(self) -> None:
        if self._tif is not None:
            self._tif.close()
            self._tif = None


def open_tiff(layout: Layout) -> TiffBackend:
    """Keep the TIFF open; frames are decoded on demand."""
    return TiffBackend(layout)
