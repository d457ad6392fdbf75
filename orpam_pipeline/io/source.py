"""``ScanSource`` and ``open_scan``: one entry point for every input format."""

from __future__ import annotations

from pathlib import Path

from ..errors import ScanError
from ..store.names import safe_scan_name
from ._base import ScanSource
from .discover import ScanEntry, discover_scans
from .frames_dir import FramesScanSource
from .readers import open_file
from .spec import ReadSpec

__all__ = ["ReadSpec", "ScanSource", "open_scan"]


def open_scan(
    entry_or_path: ScanEntry | Path | str,
    variable: str | None = None,
    depth_axis: int | None = None,
    *,
    spec: ReadSpec | None = None,
) -> ScanSource:
    """Open a scan for lazy reading.

    A file is one scan; a directory must hold exactly one scan (see ``discover_scans``).
    ``variable`` names the npz key, HDF5 dataset path or MATLAB variable; ``depth_axis`` (pipeline
    axis order, after MATLAB reorientation) reduces raw A-line volumes to MAP frames (envelope by
    default). ``spec`` gives every reading option at once (``--axes``, the MAP method, binary layout)
    and replaces ``variable`` and ``depth_axis``. Every failure is a one-line ``ScanError`` naming
    the offending file.
    """
    spec = spec or ReadSpec(variable=variable, depth_axis=depth_axis)
    if isinstance(entry_or_path, ScanEntry):
        entry = entry_or_path
    else:
        path = Path(entry_or_path)
        if path.is_dir():
            entries = discover_scans(path, variable=spec.variable, raw=spec.raw, positions=spec.positions)
            if len(entries) != 1:
                names = ", ".join(e.name for e in entries[:8])
                raise ScanError(path, f"holds {len(entries)} scans ({names}); open them one at a time")
            entry = entries[0]
        else:
            return open_file(path, name=safe_scan_name(path.stem), spec=spec)
    if len(entry.paths) == 1:
        return open_file(entry.paths[0], name=entry.name, spec=spec)
    return FramesScanSource(entry.name, entry.paths, spec=spec)
