"""Copying a scan folder between the local staging area and object storage, and the upload manifest.

An uploaded scan folder is complete when its manifest ``orpam-upload.json`` exists: it is written last
and lists every object with its size and sha256, so a folder whose upload was cut off never looks
complete, and ``orpam verify`` can check every byte. Before a folder is uploaded again its old
manifest is deleted first, for the same reason.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orpam_pipeline.store.files import OWN_PARTIAL, atomic_file
from orpam_pipeline.store.layout import now_iso
from orpam_pipeline.store.lock import LOCK_NAME

MANIFEST = "orpam-upload.json"
MANIFEST_FORMAT = 1
_SKIP = (LOCK_NAME,)


def local_files(folder: Path) -> list[str]:
    """Relative paths of the files to upload: everything but the lock and temporaries, data before
    metadata before resume markers before reports (so a cut-off upload lacks the markers)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name in _SKIP or name.startswith(f"{LOCK_NAME}.") or OWN_PARTIAL.match(name) or name.endswith(".partial"):
                continue
            found.append(Path(root, name).relative_to(folder).as_posix())

    def rank(rel: str) -> tuple[int, str]:
        if rel.startswith(".orpam/"):
            return 2, rel
        if "/" not in rel:
            return 3, rel
        return (1 if rel.endswith("zarr.json") else 0), rel

    return sorted(found, key=rank)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(fs: Any, folder: str) -> dict[str, Any] | None:
    """The manifest of a remote scan folder, or None when its upload is absent or incomplete."""
    try:
        raw = fs.cat_file(f"{folder}/{MANIFEST}")
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT else None


def upload_folder(local: Path, fs: Any, folder: str, extra: dict[str, Any],
                  check: Callable[[], None] | None = None) -> dict[str, Any]:
    """Upload ``local`` to ``folder`` and write the manifest last; returns the manifest.

    ``check`` runs before the manifest is written (the lock is still held); objects of an earlier
    upload that this one does not have are removed before the manifest makes the folder complete.
    """
    try:
        fs.rm_file(f"{folder}/{MANIFEST}")
    except FileNotFoundError:
        pass
    entries = []
    for rel in local_files(local):
        data = (local / rel).read_bytes()
        fs.pipe_file(f"{folder}/{rel}", data)
        entries.append({"path": rel, "size": len(data), "sha256": sha256_bytes(data)})
    keep = {f"{folder}/{e['path']}".rstrip("/") for e in entries} | {f"{folder}/{LOCK_NAME}"}
    fs.invalidate_cache(folder)
    stale = [p for p in (fs.find(folder) if fs.exists(folder) else []) if p.rstrip("/") not in keep]
    for path in stale:
        fs.rm_file(path)
    if check is not None:
        check()
    manifest = {"format": MANIFEST_FORMAT, "uploaded": now_iso(), **extra, "files": entries}
    fs.pipe_file(f"{folder}/{MANIFEST}", json.dumps(manifest, indent=1).encode("utf-8"))
    return manifest


def download_file(fs: Any, path: str, target: Path, expected: dict[str, Any] | None = None) -> str | None:
    """Copy one object to ``target`` atomically; with ``expected`` (size, sha256) check it and return the
    problem in one line instead of keeping a wrong copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with atomic_file(target) as tmp, fs.open(path, "rb") as src, open(tmp, "wb") as dst:
        while block := src.read(8 << 20):
            digest.update(block)
            size += len(block)
            dst.write(block)
    if expected is None:
        return None
    if size != expected.get("size"):
        return f"{size} bytes, the manifest says {expected.get('size')}"
    if digest.hexdigest() != expected.get("sha256"):
        return "sha256 differs from the manifest's"
    return None


def sha256_remote(fs: Any, path: str) -> tuple[int, str]:
    """Size and sha256 of an object, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with fs.open(path, "rb") as src:
        while block := src.read(8 << 20):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()
