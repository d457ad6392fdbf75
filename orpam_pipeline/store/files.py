"""Atomic and durable file writes.

Atomic: a temporary ``.<name>.partial-<pid>`` beside the target, then one rename; a killed writer
leaves at most such a temporary behind, never a half-written target, and
:func:`orpam_pipeline.store.resume.clean_strays` recognises the name (:data:`OWN_PARTIAL`).

Durable: a completion marker or stage record must not survive a power loss that the data it stands
for did not. So data files are flushed to the disk (``fsync``) before the marker that vouches for
them is made, and the marker and its folder are flushed after. ``ORPAM_FSYNC=0`` turns this off
(safe against killed processes still, not against power loss); ``benchmarks/bench_durability.py``
measures what it costs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DURABLE = os.environ.get("ORPAM_FSYNC", "1") != "0"
"""Flush data, markers and records to the disk before they count (see the module docstring)."""

OWN_PARTIAL = re.compile(r"^\..+\.partial-\d+$")
"""Names of this package's temporaries (see :func:`partial_path`)."""


def partial_path(target: Path) -> Path:
    """The temporary name beside ``target`` that this process writes before renaming it into place."""
    target = Path(target)
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


def sync_file(path: Path) -> None:
    """Flush one file's data to the disk (no-op when :data:`DURABLE` is off or the file is gone)."""
    if not DURABLE:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_dir(path: Path) -> None:
    """Flush a folder's entries (created, renamed, removed names) to the disk."""
    if not DURABLE:
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the data files were synced
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield the temporary path to write ``path``'s content to; on success it is flushed and renamed into
    place (whole or absent, on the disk), on any failure removed."""
    path = Path(path)
    tmp = partial_path(path)
    try:
        yield tmp
        sync_file(tmp)
        os.replace(tmp, path)
        sync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, no newline translation) to ``path`` with :func:`atomic_file`."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def sync_chunks(array_dir: Path, chunk_keys: list[str]) -> None:
    """Flush the chunk files of one array (keys as the array's metadata encodes them) and their folders."""
    if not DURABLE:
        return
    folders = set()
    for key in chunk_keys:
        sync_file(array_dir / key)
        folders.add((array_dir / key).parent)
    for folder in folders:
        sync_dir(folder)
