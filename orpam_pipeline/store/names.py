"""Scan names that are safe folder names, and the one guard that keeps every write inside OUT.

A scan's name comes from its file or folder name, which a lab (or an attacker) chooses: ``...npy``
would otherwise name the scan ``..`` and put its outputs in OUT's parent. :func:`safe_scan_name`
turns any name into one path component that is not hidden, not an option, not ``.``/``..``, holds
no separator or control character and is not too long; :func:`scan_folder` is the only way the
pipeline turns a name into ``OUT/<name>`` and refuses anything that would land outside OUT.
"""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

from orpam_pipeline.errors import StoreError

MAX_NAME = 120
"""Characters of a scan name; longer names keep their start and get a digest of the whole name."""
_ALLOWED_PUNCTUATION = set("._-+=@,~()[] ")


def _safe_char(ch: str) -> str:
    if ch in _ALLOWED_PUNCTUATION:
        return ch
    category = unicodedata.category(ch)
    return ch if category[0] in "LN" else "_"


def safe_scan_name(name: str) -> str:
    """``name`` as one safe path component (unchanged when it already is one).

    Separators, control and undecodable characters become ``_``; a name starting with ``.``, ``-``
    or a space gets a leading ``_``; an empty name is ``scan``; a name over :data:`MAX_NAME`
    characters keeps its start plus 8 hex digits of its sha256, so distinct names stay distinct.
    """
    cleaned = "".join(_safe_char(ch) for ch in name).rstrip(" ")
    if not cleaned:
        return "scan"
    if cleaned[0] in ".- ":
        cleaned = "_" + cleaned
    if len(cleaned) > MAX_NAME:
        digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        cleaned = f"{cleaned[: MAX_NAME - 9]}-{digest}"
    return cleaned


def scan_folder(out_dir: Path, name: str) -> Path:
    """``OUT/<name>`` for a safe ``name``; a name that is not one safe component, or a folder that
    would resolve outside ``out_dir`` (a symbolic link planted in OUT), is refused."""
    out_dir = Path(out_dir)
    if safe_scan_name(name) != name:
        raise StoreError(out_dir, f"refusing unsafe scan name {name!r} (expected e.g. {safe_scan_name(name)!r})")
    folder = out_dir / name
    inside(out_dir, folder)
    return folder


def inside(root: Path, path: Path) -> Path:
    """``path`` when it resolves to ``root`` or below it; a one-line error otherwise."""
    root_resolved = Path(root).resolve()
    resolved = Path(path).resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise StoreError(Path(path), f"refusing to write outside the output folder {root} (resolves to {resolved})")
    return Path(path)
