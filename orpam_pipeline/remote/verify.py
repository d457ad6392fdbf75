"""``orpam verify`` for outputs in object storage: manifests, every object's sha256, then the local checks."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orpam_pipeline.remote.lock import lease_expired, read_remote_lock
from orpam_pipeline.remote.sync import MANIFEST, download_file, read_manifest
from orpam_pipeline.remote.urls import filesystem, join, redact
from orpam_pipeline.store.layout import STORE_NAME
from orpam_pipeline.store.lock import describe_holder
from orpam_pipeline.store.status import VerifyResult, verify_outputs


def scan_folders(fs: Any, root: str) -> list[str]:
    """``root`` itself when it is one scan's folder, else its sub-folders that hold a scan (an upload,
    a store or a lock)."""
    root = root.rstrip("/")

    def holds_scan(folder: str) -> bool:
        return any(fs.exists(f"{folder}/{name}") for name in (MANIFEST, f"{STORE_NAME}/zarr.json", ".orpam.lock"))

    if holds_scan(root):
        return [root]
    return sorted(p.rstrip("/") for p in fs.ls(root, detail=False) if fs.isdir(p) and holds_scan(p.rstrip("/")))


def verify_remote(url: str, storage_options: dict[str, Any] | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> VerifyResult:
    """Check every scan folder under ``url``: its upload is complete (manifest present, no live lease),
    every object matches the manifest's size and sha256, and the store passes :func:`verify_outputs`
    (sources re-hashed where they are, chunks decoded) on a temporary copy."""
    result = VerifyResult()
    fs, root = filesystem(url, storage_options)
    fs.invalidate_cache()  # fsspec shares filesystem objects: listings cached earlier may be stale
    folders = scan_folders(fs, root) if fs.exists(root) else []
    if not folders:
        result.problems.append(f"{redact(url)}: no scan stores found")
    protocol = url.split("://", 1)[0]
    for folder in folders:
        shown = redact(f"{protocol}://{folder}")
        holder = read_remote_lock(fs, folder)
        if holder and not lease_expired(holder):
            result.problems.append(f"{shown}: being written by {describe_holder(holder)}; verify again when it has finished")
            continue
        manifest = read_manifest(fs, folder)
        if manifest is None:
            result.problems.append(f"{shown}: upload incomplete (no {MANIFEST}); rerun the same command to finish it")
            continue
        with tempfile.TemporaryDirectory(prefix="orpam-verify-") as tmp:
            local = Path(tmp) / folder.rsplit("/", 1)[-1]
            entries = manifest.get("files") or []
            for i, entry in enumerate(entries):
                if progress is not None:
                    progress("download", i, len(entries))
                try:
                    problem = download_file(fs, join(folder, entry["path"]), local / entry["path"], entry)
                except FileNotFoundError:
                    problem = "missing"
                if problem is not None:
                    result.problems.append(f"{shown}/{entry['path']}: {problem}")
            checked = verify_outputs(local, progress, storage_options=storage_options)
            result.stores += checked.stores
            result.source_files += checked.source_files
            result.chunks += checked.chunks
            result.problems.extend(p.replace(str(local), shown) for p in checked.problems)
    return result
