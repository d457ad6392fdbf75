"""Finding the scans under a path: files holding stacks, and directories of 2-D frame files."""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import ScanError
from ..store.names import safe_scan_name
from .binary import RawLayout
from .readers import inspect_file, is_supported, supported_suffixes, unsupported_error


@dataclass(frozen=True)
class ScanEntry:
    """One scan: a single file, or the naturally sorted 2-D frame files of one directory.

    ``name`` is a safe folder name (``store.names``); ``original`` is the name the files suggested
    when that had to change (unsafe characters, or a clash with another scan's name).
    """

    name: str
    paths: tuple[Path, ...]
    original: str | None = None


def natural_key(name: str) -> tuple[tuple[int, object], ...]:
    """Sort key where digit runs compare as numbers: ``frame2`` < ``frame10``."""
    parts = re.split(r"(\d+)", name)
    key = tuple((0, int(p)) if i % 2 else (1, p.lower()) for i, p in enumerate(parts))
    return key + ((2, name),)


def _probe_ndim(path: Path, variable: str | None, raw: RawLayout | None = None) -> int | None:
    """Pipeline ndim from the header, or None when the file cannot be probed."""
    try:
        return len(inspect_file(path, variable, raw).pipeline_shape)
    except ScanError:
        return None


def unique_entries(entries: list[tuple[ScanEntry, str | None]]) -> list[ScanEntry]:
    """Safe names for every entry; colliding ones get their suffix appended (``scan-npy``), then numbers.

    Names that differ only in case collide too (they would share a folder on case-insensitive
    file systems); the first in sorted order keeps its name.
    """
    safe = [(safe_scan_name(e.name), e, suffix) for e, suffix in entries]
    counts = Counter(name.casefold() for name, _, _ in safe)
    named = []
    for name, entry, suffix in safe:
        if counts[name.casefold()] > 1 and suffix:
            name = safe_scan_name(f"{name}-{suffix}")
        named.append((name, entry))
    seen: set[str] = set()
    out = []
    for name, entry in named:
        candidate, n = name, 2
        while candidate.casefold() in seen:
            candidate, n = f"{name}-{n}", n + 1
        seen.add(candidate.casefold())
        out.append(ScanEntry(candidate, entry.paths, None if candidate == entry.name else entry.name))
    return out


def discover_scans(
    src: Path, *, variable: str | None = None, raw: RawLayout | None = None, positions: str | None = None
) -> list[ScanEntry]:
    """The scans under ``src``: a file is one scan; a directory is walked recursively.

    In each directory the 2-D files form one scan named after the directory (relative path with
    ``/`` -> ``_``, ``src``'s own name at the top), and every 3-D+ file or file that cannot be
    probed is a scan of its own named by its relative path without suffix. Hidden entries and
    unsupported files are skipped. ``variable`` is used when probing containers (.npz/.h5/.mat),
    ``raw`` (``--dtype``/``--shape``/``--order``) when probing headerless binary files. With
    ``positions`` (point scans) every file is a scan of its own: its A-lines may be 2-D.
    """
    src = Path(src)
    if not src.exists():
        raise ScanError(src, "no such file or directory")
    if src.is_file():
        if not is_supported(src):
            raise unsupported_error(src)
        return unique_entries([(ScanEntry(src.stem, (src,)), None)])
    top_name = src.name or src.resolve().name or "scan"
    entries: list[tuple[ScanEntry, str | None]] = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=natural_key)
        here = Path(dirpath)
        rel = here.relative_to(src)
        files = sorted(
            (f for f in filenames if not f.startswith(".") and is_supported(Path(f)) and (here / f).is_file()),
            key=natural_key,
        )
        frames: list[Path] = []
        singles: list[Path] = []
        for f in files:
            two_d = positions is None and _probe_ndim(here / f, variable, raw) == 2
            (frames if two_d else singles).append(here / f)
        if frames:
            name = "_".join(rel.parts) if rel.parts else top_name
            entries.append((ScanEntry(name, tuple(frames)), None))
        for p in singles:
            stem_parts = (*rel.parts, p.stem)
            entries.append((ScanEntry("_".join(stem_parts), (p,)), p.suffix.lower().lstrip(".")))
    if not entries:
        raise ScanError(src, f"no scan files found (supported: {', '.join(supported_suffixes())})")
    return unique_entries(entries)
