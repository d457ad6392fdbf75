"""Where each scan of an output folder stands (``orpam status``) and whether its bytes are intact
(``orpam verify``): recorded sources re-hashed, every chunk of every array decoded through the
CRC32C codec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zarr

from orpam_pipeline.errors import StoreError
from orpam_pipeline.io import sha256_file
from orpam_pipeline.io.discover import natural_key
from orpam_pipeline.store.layout import STORE_NAME, check_layout, is_store
from orpam_pipeline.store.damage import WRITTEN_BY, base_name, find_damage, unreadable_arrays
from orpam_pipeline.store.lock import LOCK_NAME, describe_holder, holder_alive, read_lock
from orpam_pipeline.store.resume import STATE_DIR, ChunkMarkers
from orpam_pipeline.store.stage import stage_record, stage_state

STAGES = ("ingest", "register", "report")


def find_stores(path: Path) -> list[Path]:
    """Stores under an output folder (or the one store ``path`` names), including ones not yet created."""
    path = Path(path)
    if (path / STORE_NAME).exists() or (path / LOCK_NAME).exists():
        return [path / STORE_NAME]
    if is_store(path):
        return [path]
    if not path.is_dir():
        return []
    found = [
        d / STORE_NAME
        for d in path.iterdir()
        if d.is_dir() and any((d / n).exists() for n in (STORE_NAME, LOCK_NAME, STATE_DIR))
    ]
    return sorted(found, key=lambda p: natural_key(p.parent.name))


def _open(store: Path) -> tuple[zarr.Group | None, str | None]:
    if not is_store(store):
        return None, "no store yet"
    try:
        group = zarr.open_group(store, mode="r")
    except Exception as exc:  # zarr raises several types for damaged metadata
        return None, f"cannot open ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
    try:
        check_layout(group, store)
    except StoreError as exc:
        return None, exc.reason
    return group, None


def scan_status(store: Path) -> dict[str, Any]:
    """Per stage: ``state`` (absent, partial, complete), chunks done of total, and the lock holder if any."""
    store = Path(store)
    group, problem = _open(store)
    damaged = unreadable_arrays(store, group) if group is not None else []
    if damaged:
        problem = f"damaged metadata of {', '.join(damaged)}; run `orpam repair`"
    damaged_stages = {WRITTEN_BY[base_name(name)] for name in damaged}
    result: dict[str, Any] = {"scan": store.parent.name, "store": str(store), "problem": problem, "stages": {}}
    for stage in STAGES:
        record = stage_record(group, stage) if group is not None else None
        state = "damaged" if stage in damaged_stages else stage_state(record)
        if record is None:
            result["stages"][stage] = {"state": state, "chunks_done": 0, "chunks_total": None}
            continue
        total = 1 if stage == "report" else record.get("chunks")
        done = total if state == "complete" else (0 if stage == "report" else ChunkMarkers(store, stage).count())
        entry = {"state": state, "chunks_done": done, "chunks_total": total}
        if "method" in record:
            entry["method"] = record["method"]
        result["stages"][stage] = entry
    holder = read_lock(store.parent)
    result["lock"] = None if holder is None else {**holder, "alive": holder_alive(holder) if holder else False}
    return result


def collect_status(path: Path) -> list[dict[str, Any]]:
    """:func:`scan_status` of every store under ``path``."""
    return [scan_status(s) for s in find_stores(path)]


@dataclass
class VerifyResult:
    """What ``verify_outputs`` checked and every problem found, one line each."""

    stores: int = 0
    source_files: int = 0
    chunks: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _verify_sources(store: Path, group: zarr.Group, result: VerifyResult,
                    storage_options: dict[str, Any] | None = None) -> None:
    from orpam_pipeline.remote.urls import is_url

    for entry in group.attrs.get("source", {}).get("files", []):
        result.source_files += 1
        if is_url(entry["path"]):
            _verify_remote_source(store, entry, result, storage_options)
            continue
        path = Path(entry["path"])
        if not path.is_file():
            result.problems.append(f"{store}: source {path} is missing")
            continue
        size = path.stat().st_size
        if size != entry.get("size"):
            result.problems.append(f"{store}: source {path} changed: {size} bytes, recorded {entry.get('size')}")
        elif sha256_file(path) != entry.get("sha256"):
            result.problems.append(f"{store}: source {path} changed: sha256 differs from the recorded one")


def _verify_remote_source(store: Path, entry: dict[str, Any], result: VerifyResult,
                          storage_options: dict[str, Any] | None) -> None:
    """A source recorded by URL (staged from object storage): re-read and re-hash it where it is."""
    from orpam_pipeline.remote.sync import sha256_remote
    from orpam_pipeline.remote.urls import filesystem

    url = entry["path"]
    try:
        fs, key = filesystem(url, storage_options)
        size, digest = sha256_remote(fs, key)
    except FileNotFoundError:
        result.problems.append(f"{store}: source {url} is missing")
        return
    except Exception as exc:  # unreachable storage is a problem of this check, not a crash
        result.problems.append(f"{store}: source {url} cannot be read: {type(exc).__name__}: {exc}")
        return
    if size != entry.get("size"):
        result.problems.append(f"{store}: source {url} changed: {size} bytes, recorded {entry.get('size')}")
    elif digest != entry.get("sha256"):
        result.problems.append(f"{store}: source {url} changed: sha256 differs from the recorded one")


def verify_outputs(path: Path, progress: Callable[[str, int, int], None] | None = None, *,
                   storage_options: dict[str, Any] | None = None) -> VerifyResult:
    """Re-check every store under ``path``: sources' size and sha256, stage completion, every chunk.
    Sources recorded by URL are read with ``storage_options``; for an output URL see
    :func:`orpam_pipeline.remote.verify.verify_remote`."""
    result = VerifyResult()
    stores = find_stores(path)
    if not stores:
        result.problems.append(f"{path}: no scan stores found")
    for store in stores:
        result.stores += 1
        holder = read_lock(store.parent)
        if holder is not None and (not holder or holder_alive(holder)):
            result.problems.append(f"{store}: being written by {describe_holder(holder)}; verify again when it has finished")
            continue
        group, problem = _open(store)
        if group is None:
            result.problems.append(f"{store}: {problem}")
            continue
        _verify_sources(store, group, result, storage_options)
        status = scan_status(store)["stages"]
        for stage in ("ingest", "register"):
            s = status[stage]
            if s["state"] == "partial":
                result.problems.append(
                    f"{store}: stage {stage} is incomplete ({s['chunks_done']}/{s['chunks_total']} chunks); "
                    "rerun the same command to continue"
                )
        damage = find_damage(store, group, progress)
        result.chunks += damage.checked
        result.problems.extend(damage.problems())
    return result
