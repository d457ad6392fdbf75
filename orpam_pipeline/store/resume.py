"""What makes a stage resumable: per-chunk markers, parameter fingerprints and clean-up of strays.

Chunk markers are empty files ``OUT/<scan>/.orpam/<store>/<stage>/<chunk>.done``, created only after
every array of that chunk is written (zarr writes each chunk file atomically), so a marker never
stands for data that are not on disk. They live beside the store, not inside it, so the zarr
hierarchy stays clean. Each stage records a fingerprint (sha256 of its canonical parameters) in the
group attribute ``stages``; :mod:`orpam_pipeline.store.stage` decides from it whether a rerun
continues, skips, starts afresh or is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from orpam_pipeline.store.files import sync_dir, OWN_PARTIAL, atomic_write
from orpam_pipeline.store.layout import remove_tree

STATE_DIR = ".orpam"
MARKER_SUFFIX = ".done"
_ZARR_PARTIAL = re.compile(r"\.[0-9a-f]{32}\.partial$")


def state_root(store: Path) -> Path:
    """Folder holding the resume state of every stage of ``store``."""
    store = Path(store)
    return store.parent / STATE_DIR / store.name


def canonical(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, numpy scalars plain numbers)."""
    return json.loads(json.dumps(value, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot fingerprint {type(value).__name__}")


def fingerprint(params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a stage's parameters."""
    text = json.dumps(canonical(params), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_mismatch(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """Which recorded parameters differ, e.g. ``method phase -> none, first_line forward -> backward``."""
    if not old:
        return "no parameters recorded"
    new = canonical(new)
    parts: list[str] = []
    method_changed = old.get("method") != new.get("method")
    for key in sorted(set(old) | set(new), key=lambda k: (k != "method", k)):
        a, b = old.get(key), new.get(key)
        if a == b or (key == "params" and method_changed):
            continue
        if key == "files":
            parts.append("source files differ (size or sha256)")
        elif key == "ingest":
            parts.append("the ingested frames differ")
        elif isinstance(a, dict) and isinstance(b, dict):
            inner = [f"{key}.{k} {_short(a.get(k))} -> {_short(b.get(k))}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            parts.extend(inner)
        else:
            parts.append(f"{key} {_short(a)} -> {_short(b)}")
    return ", ".join(parts) or "fingerprints differ"


class ChunkMarkers:
    """Completion markers of one stage, one empty file per finished chunk; safe from many threads."""

    def __init__(self, store: Path, stage: str) -> None:
        self.dir = state_root(store) / stage

    def done(self) -> set[int]:
        """Indices of the chunks marked complete."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return set()
        return {int(n[: -len(MARKER_SUFFIX)]) for n in names if n.endswith(MARKER_SUFFIX) and n[: -len(MARKER_SUFFIX)].isdigit()}

    def count(self) -> int:
        """How many chunks are marked complete."""
        return len(self.done())

    def path(self, index: int) -> Path:
        """The marker file of chunk ``index`` (there once the chunk is complete)."""
        return self.dir / f"{int(index)}{MARKER_SUFFIX}"

    def mark(self, index: int) -> None:
        """Record chunk ``index`` as complete; call only after its data are written."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path(index), os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)
        sync_dir(self.dir)

    def clear(self) -> None:
        """Forget every marker and the stage's saved intermediate files (empty state folders go too)."""
        remove_tree(self.dir)
        for parent in (self.dir.parent, self.dir.parent.parent):
            try:
                parent.rmdir()
            except OSError:
                break

    def save_array(self, name: str, array: np.ndarray) -> None:
        """Keep a small intermediate table (written atomically) for a later resume."""
        self.dir.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        atomic_write(self.dir / f"{name}.npy", buffer.getvalue())

    def load_array(self, name: str) -> np.ndarray | None:
        """A table saved by :meth:`save_array`, or None when missing or unreadable."""
        try:
            return np.load(self.dir / f"{name}.npy", allow_pickle=False)
        except (OSError, ValueError):
            return None


def clear_state(store: Path) -> None:
    """Remove every stage's markers of ``store`` (and the state folder when it becomes empty)."""
    root = state_root(store)
    remove_tree(root)
    try:
        root.parent.rmdir()
    except OSError:
        pass


def clean_strays(store: Path) -> list[Path]:
    """Delete files a killed writer left behind: zarr's ``*.<uuid>.partial`` and this package's
    ``.<name>.partial-<pid>`` chunk files inside the store (``chunk_files``), and ``.<name>.partial-<pid>``
    files or folders beside it and in its state folder.

    Call only while holding the folder's lock: then no live writer owns them.
    """
    store = Path(store)
    removed: list[Path] = []
    if store.is_dir():
        for dirpath, _, filenames in os.walk(store):
            for name in filenames:
                if _ZARR_PARTIAL.search(name) or OWN_PARTIAL.match(name):
                    removed.append(Path(dirpath) / name)
    for folder in (store.parent, *_walk_dirs(state_root(store))):
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        removed.extend(folder / n for n in names if OWN_PARTIAL.match(n))
    for path in removed:
        remove_tree(path)
    return removed


def _walk_dirs(root: Path) -> list[Path]:
    return [Path(d) for d, _, _ in os.walk(root)]
