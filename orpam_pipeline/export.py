"""Export one array of a scan store to a file other tools open: OME-TIFF, ImageJ TIFF, MATLAB, HDF5, .npy.

The format follows OUT's suffix (:data:`FORMATS`). The array is read and written one chunk of frames
at a time (memory stays flat however long the scan), into a temporary ``.<name>.partial-<pid>``
beside OUT that is renamed into place only when complete (``store/files.py``), so a failed or
killed export never leaves a file that looks whole.

Orientation: the array is exported as the pipeline holds it, ``(T, Y, X)`` with Y along the scan
lines (``(T, Z, Y, X)`` for volumes). A store ingested with ``--scan-lines rows`` had its frames
transposed on ingest; the export keeps that pipeline orientation and records it in the file's
metadata (``transposed_on_ingest``) where the format has room for it. MATLAB files hold
``(Y, X, T)`` (``(Y, X, Z, T)``), MATLAB's usual frame-last order, which ``orpam`` reads back as the
same ``(T, Y, X)`` frames.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from orpam_pipeline.errors import OrpamError

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(frames_done, frames_total)``."""

FORMATS: dict[str, str] = {
    ".ome.tif": "ome-tiff",
    ".ome.tiff": "ome-tiff",
    ".tif": "imagej-tiff",
    ".tiff": "imagej-tiff",
    ".mat": "mat-v7.3",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".npy": "npy",
}
"""OUT's suffix (case-insensitive, longest first) -> format."""

DEFAULT_ARRAY = "merged"

ARRAY_STAGES: dict[str, str] = {
    "frames": "ingest",
    "depth_map": "ingest",
    "registered_even": "register",
    "merged": "register",
    "displacement": "register",
    "volume": "volume",
    "volume_registered": "volume_register",
}
"""The stage that writes each array: an array whose stage is unfinished is refused (it may hold NaN)."""

TIFF_CLASSIC_LIMIT = 2**32 - 2**25
"""Bytes above which an OME-TIFF is written as BigTIFF (classic TIFF offsets are 32-bit)."""

MATLAB_73_HEADER_LEN = 116


def export_format(out: Path) -> str:
    """The format OUT's suffix asks for; a one-line error naming the known suffixes otherwise."""
    name = Path(out).name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return FORMATS[suffix]
    known = ", ".join(FORMATS)
    raise OrpamError(f"{out}: cannot tell the format from the name; end it with one of {known}")


def _physical(group: Any) -> dict[str, float]:
    """Pixel size (µm) and frame interval (s) the store knows, only those that are finite and positive."""
    physical = group.attrs.get("physical", {}) or {}
    found: dict[str, float] = {}
    pixel = physical.get("pixel_um") or {}
    candidates = {
        "pixel_um_y": pixel.get("y") if isinstance(pixel, dict) else None,
        "pixel_um_x": pixel.get("x") if isinstance(pixel, dict) else None,
        "frame_interval_s": physical.get("frame_interval_s"),
        "depth_um_per_sample": physical.get("depth_um_per_sample"),
    }
    for key, value in candidates.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if np.isfinite(number) and number > 0:
            found[key] = number
    return found


def _check_out(out: Path, zarr_dir: Path, overwrite: bool) -> None:
    target = out.resolve()
    store = zarr_dir.resolve()
    if target == store or store in target.parents:
        raise OrpamError(f"{out}: refusing to write inside the store {zarr_dir}; choose a path outside it")
    if out.is_dir():
        raise OrpamError(f"{out}: is a folder; name the file to write")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise OrpamError(f"{out}: already exists; pass --overwrite or choose another path")
    if not out.parent.is_dir():
        raise OrpamError(f"{out}: folder {out.parent} does not exist")


def _blocks(array: Any, chunk: int, progress: ProgressFn | None) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(start, stop, frames)`` one chunk of frames at a time, as float32."""
    n = int(array.shape[0])
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        yield start, stop, np.asarray(array[start:stop], dtype=np.float32)
        if progress is not None:
            progress(stop, n)


# -- writers: each writes the whole array to ``path`` (the temporary) ---------------------------------


def _axes(ndim: int) -> str:
    return {2: "TY", 3: "TYX", 4: "TZYX"}.get(ndim, "Q" * ndim)


def _pages(array: Any, chunk: int, progress: ProgressFn | None) -> Iterator[np.ndarray]:
    """One 2-D page (``(Y, X)``) at a time, read one chunk of frames at a time."""
    for _, _, block in _blocks(array, chunk, progress):
        if block.ndim == 2:  # (T, Y) profiles: each frame is written as a (Y, 1) page
            for row in block:
                yield row[:, None]
        else:
            yield from block.reshape(-1, *block.shape[-2:])


def _write_ome(path: Path, array: Any, chunk: int, meta: dict[str, Any], progress: ProgressFn | None) -> None:
    import tifffile

    shape = tuple(int(s) for s in array.shape)
    page_shape = shape if len(shape) > 2 else (*shape, 1)
    metadata: dict[str, Any] = {"axes": _axes(len(page_shape)), "Name": meta["array"], "Description": meta["note"]}
    phys = meta["physical"]
    if "pixel_um_x" in phys:
        metadata.update(PhysicalSizeX=phys["pixel_um_x"], PhysicalSizeXUnit="µm")
    if "pixel_um_y" in phys:
        metadata.update(PhysicalSizeY=phys["pixel_um_y"], PhysicalSizeYUnit="µm")
    if "frame_interval_s" in phys:
        metadata.update(TimeIncrement=phys["frame_interval_s"], TimeIncrementUnit="s")
    if len(shape) == 4 and "depth_um_per_sample" in phys:
        metadata.update(PhysicalSizeZ=phys["depth_um_per_sample"], PhysicalSizeZUnit="µm")
    bigtiff = int(np.prod(shape)) * 4 > TIFF_CLASSIC_LIMIT
    with tifffile.TiffWriter(path, bigtiff=bigtiff, ome=True) as tif:
        tif.write(
            _pages(array, chunk, progress), shape=page_shape, dtype=np.float32, photometric="minisblack",
            metadata=metadata, contiguous=True, software="orpam_pipeline",
        )  # fmt: skip


def _write_imagej(path: Path, array: Any, chunk: int, meta: dict[str, Any], progress: ProgressFn | None) -> None:
    import tifffile

    shape = tuple(int(s) for s in array.shape)
    page_shape = shape if len(shape) > 2 else (*shape, 1)
    phys = meta["physical"]
    metadata: dict[str, Any] = {"axes": _axes(len(page_shape)), "Info": meta["note"]}
    kwargs: dict[str, Any] = {}
    if "pixel_um_x" in phys and "pixel_um_y" in phys:
        kwargs["resolution"] = (1.0 / phys["pixel_um_x"], 1.0 / phys["pixel_um_y"])
        metadata["unit"] = "um"
    if "frame_interval_s" in phys:
        metadata["finterval"] = phys["frame_interval_s"]
    if len(shape) == 4 and "depth_um_per_sample" in phys:
        metadata["spacing"] = phys["depth_um_per_sample"]
    with tifffile.TiffWriter(path, imagej=True) as tif:
        tif.write(
            _pages(array, chunk, progress), shape=page_shape, dtype=np.float32, photometric="minisblack",
            metadata=metadata, contiguous=True, **kwargs,
        )  # fmt: skip


def _attrs(meta: dict[str, Any]) -> dict[str, Any]:
    """Flat HDF5 attributes: numbers and strings only."""
    attrs: dict[str, Any] = {
        "array": meta["array"],
        "axes": meta["axes"],
        "store": meta["store"],
        "scan": meta["scan"] or "",
        "transposed_on_ingest": meta["transposed_on_ingest"],
        "conventions": json.dumps(meta["conventions"]),
        "note": meta["note"],
        "exported": meta["exported"],
    }
    attrs.update(meta["physical"])
    return attrs


def _write_hdf5(path: Path, array: Any, chunk: int, meta: dict[str, Any], progress: ProgressFn | None) -> None:
    import h5py

    shape = tuple(int(s) for s in array.shape)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(meta["array"], shape=shape, dtype="float32", chunks=(1, *shape[1:]))
        for key, value in _attrs(meta).items():
            ds.attrs[key] = value
        for start, stop, block in _blocks(array, chunk, progress):
            ds[start:stop] = block


def matlab_header(now: _dt.datetime | None = None) -> bytes:
    """The 128-byte text header MATLAB writes in the 512-byte user block of a -v7.3 MAT-file."""
    now = now or _dt.datetime.now()
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {now:%a %b %d %H:%M:%S %Y} HDF5 schema 1.00 ."
    return text.encode("ascii").ljust(MATLAB_73_HEADER_LEN, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"


def _matlab_char(f: Any, name: str, text: str) -> None:
    """A MATLAB char row vector (UTF-16 code units, as MATLAB stores them)."""
    codes = np.frombuffer(text.encode("utf-16-le"), dtype="<u2")
    ds = f.create_dataset(name, data=codes.reshape(-1, 1))
    ds.attrs["MATLAB_class"] = np.bytes_("char")
    ds.attrs["MATLAB_int_decode"] = np.int32(2)


def _write_mat(path: Path, array: Any, chunk: int, meta: dict[str, Any], progress: ProgressFn | None) -> None:
    import h5py

    name = meta["array"]
    if not name.isidentifier() or len(name) > 63:
        raise OrpamError(f"array name {name!r} is not a MATLAB variable name")
    shape = tuple(int(s) for s in array.shape)
    # MATLAB (Y, X, T) / (Y, X, Z, T) / (Y, T) is column-major: HDF5 holds the reverse order.
    h5_shape = (*shape[:-2], shape[-1], shape[-2]) if len(shape) > 2 else shape
    with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
        ds = f.create_dataset(name, shape=h5_shape, dtype="float32", chunks=(1, *h5_shape[1:]))
        ds.attrs["MATLAB_class"] = np.bytes_("single")
        for start, stop, block in _blocks(array, chunk, progress):
            ds[start:stop] = np.swapaxes(block, -1, -2) if block.ndim > 2 else block
        info = {k: v for k, v in _attrs(meta).items() if k not in ("axes",)}
        info["matlab_axes"] = meta["matlab_axes"]
        _matlab_char(f, "orpam_info", json.dumps(info))
    with open(path, "r+b") as fh:
        fh.write(matlab_header())


def _write_npy(path: Path, array: Any, chunk: int, meta: dict[str, Any], progress: ProgressFn | None) -> None:
    shape = tuple(int(s) for s in array.shape)
    target = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    try:
        for start, stop, block in _blocks(array, chunk, progress):
            target[start:stop] = block
            target.flush()
    finally:
        del target


WRITERS: dict[str, Callable[[Path, Any, int, dict[str, Any], ProgressFn | None], None]] = {
    "ome-tiff": _write_ome,
    "imagej-tiff": _write_imagej,
    "hdf5": _write_hdf5,
    "mat-v7.3": _write_mat,
    "npy": _write_npy,
}


def export_array(
    store: str | Path,
    out_path: str | Path,
    array: str = DEFAULT_ARRAY,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Write ``array`` of the scan store ``store`` to ``out_path`` in the format its suffix names.

    Refuses (one-line :class:`OrpamError`): an unknown suffix, an array the store lacks (listing the
    ones it has) or whose stage is unfinished, an OUT inside the store, an existing OUT without
    ``overwrite``. Returns a summary: store, out, format, array, shape, frames and the physical
    metadata written.
    """
    from orpam_pipeline.store.files import atomic_file
    from orpam_pipeline.store.layout import get_array, open_scan_store, resolve_store_path, stage_complete, store_arrays

    store, out = Path(store), Path(out_path)
    fmt = export_format(out)
    zarr_dir = resolve_store_path(store)
    group = open_scan_store(store)
    names = store_arrays(group)
    if array not in names:
        raise OrpamError(f"{zarr_dir}: has no array {array!r}; arrays: {', '.join(names) or 'none'}")
    stage = ARRAY_STAGES.get(array)
    if stage is not None and not stage_complete(group, stage):
        raise OrpamError(f"{zarr_dir}: array {array!r} is unfinished (stage {stage!r} did not complete)")
    _check_out(out, zarr_dir, overwrite)

    source = get_array(group, array)
    shape = tuple(int(s) for s in source.shape)
    conventions = dict(group.attrs.get("conventions", {}) or {})
    transposed = bool(conventions.get("transposed_on_ingest"))
    axes = _axes(len(shape))
    matlab_axes = {2: "YT", 3: "YXT", 4: "YXZT"}.get(len(shape), axes[::-1])
    note = (
        f"orpam_pipeline export of array {array!r}; axes {axes} in pipeline orientation (Y along the scan lines)"
        + ("; frames were transposed on ingest (--scan-lines rows)" if transposed else "")
    )
    meta = {
        "array": array,
        "axes": axes,
        "matlab_axes": matlab_axes,
        "store": str(zarr_dir.resolve()),
        "scan": group.attrs.get("scan"),
        "conventions": conventions,
        "transposed_on_ingest": transposed,
        "physical": _physical(group),
        "note": note,
        "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    chunk = max(1, int(source.chunks[0]))
    with atomic_file(out) as tmp:
        WRITERS[fmt](tmp, source, chunk, meta, progress)
    return {
        "store": str(zarr_dir),
        "out": str(out),
        "format": fmt,
        "array": array,
        "shape": list(shape),
        "axes": matlab_axes if fmt == "mat-v7.3" else ("TYX" if fmt.endswith("tiff") and len(shape) == 2 else axes),
        "frames": shape[0] if shape else 0,
        "physical": meta["physical"],
        "transposed_on_ingest": transposed,
    }
