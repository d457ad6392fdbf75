"""OME-Zarr 0.5 (NGFF) metadata of the images of a scan store, and their lower-resolution levels (docs/store.md).

Each image (``frames``, ``merged``, ...) is a zarr group whose ``ome`` attribute holds one ``multiscales``
entry: the axes with their units and, per level, a scale (and, where the pixels do not start at the
origin, a translation) from the store's ``physical`` attribute. Units appear only when the store knows
them, so a viewer shows pixels and frames rather than invented micrometres.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

NGFF_VERSION = "0.5"
LEVELS_ABOVE = 2048
"""Frames larger than this along Y or X get lower-resolution levels by default."""
SMALLEST_LEVEL = 1024
"""Default levels halve until both sides are at most this."""
SPATIAL_HALVED = ("y", "x")


def default_levels(height: int, width: int) -> int:
    """Levels below full resolution written by default: none up to 2048x2048, else enough to reach 1024."""
    side = max(int(height), int(width))
    return 0 if side <= LEVELS_ABOVE else math.ceil(math.log2(side / SMALLEST_LEVEL))


def level_shape(shape: Sequence[int], dims: Sequence[str], level: int) -> tuple[int, ...]:
    """Shape of level ``level``: Y and X halved (rounding up) ``level`` times, other axes kept."""
    out = []
    for n, dim in zip(shape, dims):
        for _ in range(level if dim in SPATIAL_HALVED else 0):
            n = -(-n // 2)
        out.append(int(n))
    return tuple(out)


def halve(block: np.ndarray) -> np.ndarray:
    """Mean of 2x2 pixel blocks over the last two axes (Y, X); an odd edge row or column is repeated."""
    y, x = block.shape[-2:]
    if y % 2 or x % 2:
        pad = [(0, 0)] * (block.ndim - 2) + [(0, y % 2), (0, x % 2)]
        block = np.pad(block, pad, mode="edge")
    y, x = block.shape[-2:]
    grouped = block.reshape(*block.shape[:-2], y // 2, 2, x // 2, 2)
    return grouped.mean(axis=(-3, -1), dtype=np.float32).astype(np.float32, copy=False)


def _axis(name: str, known: Mapping[str, float]) -> dict[str, Any]:
    kind = "time" if name == "t" else "space"
    axis: dict[str, Any] = {"name": name, "type": kind}
    if name in known:
        axis["unit"] = "second" if name == "t" else "micrometer"
    return axis


def axis_steps(physical: Mapping[str, Any] | None) -> dict[str, float]:
    """The known step of each axis from a store's ``physical`` attribute: t in s, y, x and z in µm."""
    physical = dict(physical or {})
    steps: dict[str, float] = {}
    pixel = physical.get("pixel_um")
    if isinstance(pixel, Mapping):
        steps.update(y=float(pixel["y"]), x=float(pixel["x"]))
    if physical.get("frame_interval_s"):
        steps["t"] = float(physical["frame_interval_s"])
    if physical.get("depth_um_per_sample"):
        steps["z"] = float(physical["depth_um_per_sample"])
    return steps


def image_metadata(
    name: str,
    dims: Sequence[str],
    levels: int,
    physical: Mapping[str, Any] | None,
    *,
    x_stride: int = 1,
    x_offset: int = 0,
    z_offset: int = 0,
) -> dict[str, Any]:
    """The ``ome`` attribute of one image: OME-Zarr 0.5 ``multiscales`` with ``levels`` extra levels.

    ``x_stride`` and ``x_offset`` place columns that are every other line of the frame (``registered_even``:
    stride 2, offset 1 when the first line runs forward); ``z_offset`` is the first depth sample kept.
    """
    known = axis_steps(physical)
    base = {d: known.get(d, 1.0) for d in dims}
    base["x"] = base.get("x", 1.0) * x_stride
    origin = {d: 0.0 for d in dims}
    origin["x"] = x_offset * known.get("x", 1.0)
    if "z" in dims:
        origin["z"] = z_offset * known.get("z", 1.0)
    datasets = []
    for level in range(levels + 1):
        factor = {d: float(2**level) if d in SPATIAL_HALVED else 1.0 for d in dims}
        scale = [base[d] * factor[d] for d in dims]
        shift = [origin[d] + (factor[d] - 1.0) * base[d] / 2.0 for d in dims]
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": scale}]
        if any(shift):
            transforms.append({"type": "translation", "translation": shift})
        datasets.append({"path": str(level), "coordinateTransformations": transforms})
    multiscale = {"name": name, "axes": [_axis(d, known) for d in dims], "datasets": datasets}
    return {"version": NGFF_VERSION, "multiscales": [multiscale]}


def level_count(attrs: Mapping[str, Any]) -> int:
    """Number of levels (full resolution included) an image group's attributes declare."""
    return len(attrs["ome"]["multiscales"][0]["datasets"])
