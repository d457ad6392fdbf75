"""A scan store as xarray objects with physical coordinates (needs the optional ``xarray`` extra).

``xarray.open_zarr(store, group="merged")`` opens a single-level image as it is; these helpers also
open lower-resolution levels, put every image of a store in one dataset and give the coordinates in
seconds and micrometres where the store knows them (docs/store.md, "Opening a store elsewhere")::

    from orpam_pipeline.store.to_xarray import open_dataset, open_image
    merged = open_image("OUT/scan/scan.zarr", "merged")            # DataArray (t, y, x)
    ds = open_dataset("OUT/scan/scan.zarr")                        # frames, merged, registered_even, ...

The data stay lazy (dask arrays over the zarr chunks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.store.layout import (
    DISPLACEMENT,
    IMAGES,
    MERGED,
    REGISTERED_EVEN,
    get_array,
    has_array,
    open_scan_store,
    store_arrays,
)
from orpam_pipeline.store.ngff import axis_steps

UNKNOWN_UNIT = {"t": "frame", "y": "pixel", "x": "pixel", "z": "sample"}
EVEN_DIM = "x_even"
"""Dimension of the backward columns in :func:`open_dataset` (``x`` of ``registered_even`` and of a field)."""


def _xarray() -> Any:
    try:
        import xarray
    except ImportError:
        raise OrpamError("xarray is not installed: pip install 'orpam-pipeline[xarray]'") from None
    return xarray


def _transforms(meta: dict[str, Any], level: int) -> tuple[list[float], list[float]]:
    scale: list[float] = []
    shift: list[float] = [0.0] * len(meta["axes"])
    for t in meta["datasets"][level]["coordinateTransformations"]:
        if t["type"] == "scale":
            scale = [float(v) for v in t["scale"]]
        elif t["type"] == "translation":
            shift = [float(v) for v in t["translation"]]
    return scale, shift


def open_image(store: Path | str, name: str = MERGED, level: int = 0) -> Any:
    """Image ``name`` of a scan store at ``level`` as a lazy ``xarray.DataArray`` whose coordinates are
    the pixel centres in seconds and micrometres (frame and pixel indices where the store does not know)."""
    xr = _xarray()
    import dask.array as da

    group = open_scan_store(Path(store))
    if name not in IMAGES or not has_array(group, name):
        raise OrpamError(f"{store}: has no image {name!r}; images: {', '.join(n for n in store_arrays(group) if n in IMAGES)}")
    meta = group[name].attrs["ome"]["multiscales"][0]
    levels = len(meta["datasets"])
    if not 0 <= level < levels:
        raise OrpamError(f"{store}: image {name!r} has levels 0..{levels - 1}, not {level}")
    array = get_array(group, name, level)
    scale, shift = _transforms(meta, level)
    coords = {}
    for i, axis in enumerate(meta["axes"]):
        values = shift[i] + scale[i] * np.arange(array.shape[i])
        coords[axis["name"]] = (axis["name"], values, {"units": axis.get("unit", UNKNOWN_UNIT[axis["name"]])})
    return xr.DataArray(da.from_zarr(array), dims=[a["name"] for a in meta["axes"]], coords=coords, name=name,
                        attrs={"store": str(store), "level": level})  # fmt: skip


def open_dataset(store: Path | str, level: int = 0) -> Any:
    """Every image of a scan store at ``level`` and its ``displacement`` (level 0 only) in one lazy
    ``xarray.Dataset``; the backward columns (``registered_even``, a displacement field) get the
    dimension ``x_even`` with their own positions along x."""
    xr = _xarray()
    import dask.array as da

    group = open_scan_store(Path(store))
    variables = {}
    for name in store_arrays(group):
        if name in IMAGES:
            image = open_image(store, name, level)
            variables[name] = image.rename({"x": EVEN_DIM}) if name == REGISTERED_EVEN else image
    if level == 0 and has_array(group, DISPLACEMENT):
        disp = get_array(group, DISPLACEMENT)
        dims = ("t", "y") if disp.ndim == 2 else ("t", "y", EVEN_DIM)
        variables[DISPLACEMENT] = xr.DataArray(da.from_zarr(disp), dims=dims, name=DISPLACEMENT,
                                               attrs={"units": "pixel", "axis": "y"})  # fmt: skip
    physical = dict(group.attrs.get("physical") or {})
    return xr.Dataset(variables, attrs={"scan": group.attrs.get("scan"), "store": str(store), "level": level,
                                        "steps": axis_steps(physical)})  # fmt: skip
