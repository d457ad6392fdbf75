"""Pixel size and frame interval that source files state, for the store's ``physical`` attribute.

A reader says what a file states on its **stored** axes (:class:`FileScale`): micrometres per sample
along the file's own rows (y) and columns (x), seconds per step along its frame axis. TIFF reads its
tags, ImageJ and OME-XML metadata (``tiff.py``); HDF5, MATLAB and ``.npz`` files are searched by name
(``scan_params.py``). :func:`file_physical` maps that onto the frames as read (``(T, Y, X)`` after
``--axes`` or the reader's own order, before any ``--scan-lines rows`` transposition), and
:func:`store_physical` puts the frames into the store's orientation and lets the user's
``--pixel-size``/``--frame-interval`` win. Each value keeps where it came from (``found``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._base import FramePlan, Layout
from .scan_params import Found, file_pixel_um, find_frame_interval, find_scan_params

NAMED_READERS = ("hdf5", "mat-v4", "mat-v5", "mat-v7.3", "npz")
"""Readers whose files are searched by name for scan parameters (their small values, ``survey.py``)."""
FOUND_KEYS = {"pixel_um_y": "pixel_um", "pixel_um_x": "pixel_um", "frame_interval_s": "frame_interval_s"}
"""Each provenance entry of ``physical["found"]`` and the ``physical`` key it explains."""


@dataclass(frozen=True)
class FileScale:
    """Sizes a file states for its stored axes.

    ``steps``: stored axis -> micrometres per sample; ``both``: one size stated for every image axis
    (applies whichever axes are read as y and x); ``interval``: the stored frame axis and seconds per frame.
    """

    steps: dict[int, Found] = field(default_factory=dict)
    both: Found | None = None
    interval: tuple[int, Found] | None = None


def default_axes(layout: Layout) -> tuple[int, int, int | None]:
    """Stored axes of the file's own rows (y), columns (x) and frames in the reader's default orientation.

    NumPy order (TIFF, HDF5, ``.npz``): ``(..., Y, X)`` with frames first; MATLAB's ``(Y, X, ..., T)``
    (``hdf5.matlab_perm``; through h5py a v7.3 file's axes are reversed).
    """
    n = len(layout.source_shape)
    if layout.reader.startswith("mat-"):
        from .hdf5 import matlab_perm

        perm = matlab_perm(n, layout.column_major)
    else:
        perm = tuple(range(n))
    return perm[-2], perm[-1], perm[0] if n >= 3 else None


def scale_of(y: int, x: int, t: int | None, pixel: tuple[Found, Found] | None, interval: Found | None) -> FileScale:
    """A :class:`FileScale` from sizes along the file's rows and columns and its frame interval."""
    steps: dict[int, Found] = {} if pixel is None else {y: pixel[0], x: pixel[1]}
    both = pixel[0] if pixel is not None and pixel[0] is pixel[1] else None
    return FileScale(steps, both, None if interval is None or t is None else (t, interval))


def _tiers(metadata: dict[str, Any], variable: str, arrays: set[str]) -> list[dict[str, Any]]:
    """Metadata nearest the data first: the array's own attributes, its groups' (nearest first, the file's
    last), then every other small value except attributes of other arrays."""
    parts = variable.split("/")
    prefixes = [variable] + ["/".join(parts[:i]) for i in range(len(parts) - 1, -1, -1)]
    tiers = [{k: v for k, v in metadata.items() if k.split("@")[0] == p and "@" in k} for p in prefixes]
    taken = set().union(*tiers)
    rest = {k: v for k, v in metadata.items() if k not in taken and not ("@" in k and k.split("@")[0] in arrays)}
    return [*tiers, rest]


def named_scale(layout: Layout) -> FileScale:
    """Sizes found by name among a container file's small values (``scan_params.py``), nearest the data first."""
    from .survey import survey_file

    survey = survey_file(layout.path)
    matlab = layout.reader == "mat-v7.3"
    label = str(layout.variable or "").strip("/")
    label = label.replace("/", ".") if matlab else label
    arrays = {str(a.name).strip("/").replace("/", ".") if matlab else str(a.name).strip("/") for a in survey.arrays}
    tiers = _tiers(survey.metadata, label, arrays - {label})
    pixel = next((p for p in (file_pixel_um(find_scan_params(t)) for t in tiers) if p is not None), None)
    interval = next((i for i in (find_frame_interval(t) for t in tiers) if i is not None), None)
    return scale_of(*default_axes(layout), pixel, interval)


def read_scale(layout: Layout) -> FileScale:
    """What the file states, or nothing: metadata that cannot be read never stops a scan from being read."""
    try:
        if layout.reader == "tiff":
            from .tiff import tiff_scale

            return tiff_scale(layout.path)
        if layout.reader in NAMED_READERS:
            return named_scale(layout)
    except Exception:  # damaged or unexpected metadata: the scan is read without it
        return FileScale()
    return FileScale()


def frame_axes(perm: tuple[int, ...], plan: FramePlan) -> tuple[int, int, int | None]:
    """Stored axes read as y, x and frames (the pipeline axes left after the frame and depth axes are y, x)."""
    rest = [a for a in range(len(perm)) if a not in (plan.frame_axis, plan.depth)]
    return perm[rest[0]], perm[rest[1]], None if plan.frame_axis is None else perm[plan.frame_axis]


def oriented(scale: FileScale, axes: tuple[int, int, int | None]) -> dict[str, Any]:
    """``pixel_um``, ``frame_interval_s`` and their ``found`` provenance along the stored axes ``axes`` read
    as (y, x, frames)."""
    y, x, t = axes
    out: dict[str, Any] = {}
    found: dict[str, Any] = {}
    sizes = (scale.steps.get(y), scale.steps.get(x)) if scale.both is None else (scale.both, scale.both)
    if sizes[0] is not None and sizes[1] is not None:
        out["pixel_um"] = {"y": sizes[0].value, "x": sizes[1].value}
        found.update(pixel_um_y=sizes[0].to_dict(), pixel_um_x=sizes[1].to_dict())
    if scale.interval is not None and scale.interval[0] == t:
        out["frame_interval_s"] = scale.interval[1].value
        found["frame_interval_s"] = scale.interval[1].to_dict()
    if found:
        out["found"] = found
    return out


def file_physical(layout: Layout, plan: FramePlan) -> dict[str, Any]:
    """Pixel size and frame interval the file states, along the frames as read (empty when it states none)."""
    return oriented(read_scale(layout), frame_axes(layout.perm, plan))


def stated(layout: Layout) -> dict[str, Any]:
    """What the file states along its own rows, columns and frames: what ingest records for the reader's
    default orientation (``orpam inspect``)."""
    return oriented(read_scale(layout), default_axes(layout))


def transposed(physical: dict[str, Any]) -> dict[str, Any]:
    """``physical`` for frames transposed on ingest (``--scan-lines rows``): y and x swap."""
    out = dict(physical)
    if "pixel_um" in out:
        out["pixel_um"] = {"y": out["pixel_um"]["x"], "x": out["pixel_um"]["y"]}
    if "found" in out:
        swap = {"pixel_um_y": "pixel_um_x", "pixel_um_x": "pixel_um_y"}
        out["found"] = {swap.get(k, k): v for k, v in out["found"].items()}
    return out


def store_physical(found: dict[str, Any] | None, scale: dict[str, Any] | None, rows: bool) -> dict[str, Any] | None:
    """The store's ``physical`` attribute: what the source states in store orientation (``rows``: transposed
    on ingest), overridden by the user's ``scale``; ``found`` keeps only the provenance of values in use."""
    own = transposed(found or {}) if rows else dict(found or {})
    provenance = own.pop("found", None) or {}
    merged = {**own, **(scale or {})}
    kept = {k: v for k, v in sorted(provenance.items()) if FOUND_KEYS.get(k) not in (scale or {})}
    if kept:
        merged["found"] = kept
    return merged or None
