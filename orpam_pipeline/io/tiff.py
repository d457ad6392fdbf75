"""TIFF stacks through tifffile: only the pages of the requested frames are decoded."""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..errors import ScanError
from ._base import Layout, check_dtype, file_size, nbytes_of, one_line, shape_str
from .physical import FileScale, scale_of
from .scan_params import LENGTH_UM, TIME_S, Found

TIFF_LENGTH_UM = {**LENGTH_UM, "cm": 1e4, "centimeter": 1e4, "inch": 25400.0, "meter": 1e6, "å": 1e-4, "nanometer": 1e-3}
"""Micrometres per length unit as TIFF writers spell them (OME ``PhysicalSizeXUnit``, ImageJ ``unit``)."""
RESUNIT_UM = {2: 25400.0, 3: 1e4, 4: 1e3, 5: 1.0}
"""Micrometres per TIFF ResolutionUnit: inch, centimeter and tifffile's millimeter and micrometer; 1 (none) has no length."""
PLACEHOLDER_DPI = frozenset({1.0, 72.0, 96.0, 150.0, 300.0, 600.0})
"""Resolutions in pixels per inch that writers put in by default (screen and print settings), not a pixel size."""


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
        self._perm = layout.perm
        self.dtype = layout.source_dtype

    def block(self, axis: int | None, start: int, stop: int) -> np.ndarray:
        """Pipeline-oriented data (``layout.perm``, e.g. from ``--axes``); only the pages holding the slice
        along ``axis`` are decoded (all of them when ``axis`` lies within a page)."""
        assert self._tif is not None
        lead = self._shape[:-2]
        index = [slice(None)] * len(self._shape)
        if axis is not None:
            index[self._perm[axis]] = slice(start, stop)
        pages = np.arange(math.prod(lead)).reshape(lead)[tuple(index[: len(lead)])]
        with _guard(self._path):
            data = self._tif.asarray(key=[int(p) for p in pages.ravel()], series=0)
        data = np.asarray(data).reshape(pages.shape + self._shape[-2:])
        return data[(slice(None),) * len(lead) + tuple(index[len(lead) :])].transpose(self._perm)

    def close(self) -> None:
        if self._tif is not None:
            self._tif.close()
            self._tif = None


def open_tiff(layout: Layout) -> TiffBackend:
    """Keep the TIFF open; frames are decoded on demand."""
    return TiffBackend(layout)


def _unit(text: Any) -> str:
    """A unit name lower-cased, with ImageJ's escaped micro sign and the Greek mu read as µ."""
    return str(text).replace("\\u00B5", "µ").replace("\u03bc", "µ").strip().lower()


def _per_unit(tags: Any, name: str) -> float | None:
    """Pixels per unit of a resolution tag, or None when absent or not positive."""
    tag = tags.get(name)
    value = None if tag is None else tag.value
    if not (isinstance(value, tuple) and len(value) == 2 and value[1]):
        return None
    per = value[0] / value[1]
    return per if per > 0 else None


def _resolution(tags: Any, um: dict[str, float], label: tuple[str, str],
                placeholders: frozenset[float]) -> tuple[Found, Found] | None:  # fmt: skip
    """Pixel size along rows (YResolution) and columns (XResolution) for ``um`` micrometres per unit of each;
    ``label`` is who wrote the tags and in which unit, for the provenance."""
    out = []
    for axis in ("y", "x"):
        per = _per_unit(tags, f"{axis.upper()}Resolution")
        if per is None or per in placeholders or axis not in um:
            return None
        out.append(Found(round(um[axis] / per, 9), f"{label[0]} {axis.upper()}Resolution ({label[1]})", per))
    return out[0], out[1]


def _tag_pixel(tags: Any) -> tuple[Found, Found] | None:
    """XResolution/YResolution in inches, centimetres (or tifffile's mm, µm); ResolutionUnit none says no
    length, one pixel per unit is a placeholder and so are the print and screen defaults in inches."""
    unit = tags.get("ResolutionUnit")
    code = int(unit.value) if unit is not None else 2  # TIFF's default unit is the inch
    if code not in RESUNIT_UM:
        return None
    placeholders = PLACEHOLDER_DPI if code == 2 else frozenset({1.0})
    label = ("TIFF", f"ResolutionUnit {tifffile.RESUNIT(code).name.lower()}")
    return _resolution(tags, {"y": RESUNIT_UM[code], "x": RESUNIT_UM[code]}, label, placeholders)


def _imagej_pixel(tags: Any, ij: dict[str, Any]) -> tuple[Found, Found] | None:
    """ImageJ's resolution tags are pixels per ``unit`` (``yunit`` for Y where given)."""
    unit = _unit(ij.get("unit", ""))
    um = {axis: TIFF_LENGTH_UM[u] for axis, u in (("x", unit), ("y", _unit(ij.get("yunit", unit))))
          if u in TIFF_LENGTH_UM}  # fmt: skip
    return _resolution(tags, um, ("ImageJ", f"unit {unit}"), frozenset())


def _imagej_interval(ij: dict[str, Any]) -> Found | None:
    """ImageJ's ``finterval`` in its time unit ``tunit`` (seconds when absent)."""
    value, unit = ij.get("finterval"), _unit(ij.get("tunit", "s"))
    if not isinstance(value, (int, float)) or not value > 0 or unit not in TIME_S:
        return None
    return Found(round(value * TIME_S[unit], 12), f"ImageJ finterval ({unit})", value)


def _ome_pixels(xml: str) -> dict[str, str]:
    """The attributes of the first ``Image/Pixels`` element of OME-XML (the first image is series 0)."""
    for element in ET.fromstring(xml).iter():
        if element.tag.rsplit("}", 1)[-1] == "Pixels":
            return dict(element.attrib)
    return {}


def _ome_size(pixels: dict[str, str], key: str, units: dict[str, float], default: str) -> Found | None:
    """``PhysicalSizeX``-style value times its ``...Unit`` attribute (OME's default unit when absent)."""
    if key not in pixels:
        return None
    unit = _unit(pixels.get(f"{key}Unit", default))
    value = float(pixels[key])
    if unit not in units or not value > 0:
        return None
    return Found(round(value * units[unit], 12), f"OME {key} ({unit})", pixels[key])


def _ome_scale(xml: str) -> tuple[tuple[Found, Found] | None, Found | None]:
    """Pixel size (PhysicalSizeY, PhysicalSizeX) and TimeIncrement of OME-XML."""
    pixels = _ome_pixels(xml)
    y, x = (_ome_size(pixels, f"PhysicalSize{a}", TIFF_LENGTH_UM, "µm") for a in ("Y", "X"))
    interval = _ome_size(pixels, "TimeIncrement", TIME_S, "s")
    return (None if y is None or x is None else (y, x)), interval


def tiff_scale(path: Path) -> FileScale:
    """Pixel size and frame interval a TIFF states: OME-XML first, then ImageJ's metadata, then plain
    resolution tags. The frame interval applies to the series' T axis, or to the first axis of a
    3-D stack that names none (ImageJ and OME write plain stacks as slices)."""
    with _open(path) as tif:
        series = tif.series[0]
        axes, ndim = series.axes, len(series.shape)
        tags = series.keyframe.tags
        ij = tif.imagej_metadata or {}
        ome = _ome_scale(tif.ome_metadata) if tif.is_ome and tif.ome_metadata else (None, None)
    pixel = ome[0] or (_imagej_pixel(tags, ij) if ij else None) or _tag_pixel(tags)
    interval = ome[1] or _imagej_interval(ij)
    frames = axes.index("T") if "T" in axes else (0 if ndim == 3 else None)
    return scale_of(ndim - 2, ndim - 1, frames, pixel, interval)
