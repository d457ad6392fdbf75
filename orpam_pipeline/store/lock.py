"""One writer per scan output folder: an exclusive lock file ``OUT/<scan>/.orpam.lock``.

The file is created with ``O_CREAT | O_EXCL`` and holds the holder's pid, host, start time and
command, so a second process fails at once with a message naming the holder. A lock left by a
process that died (same host, pid gone, a zombie, or the pid reused by a younger process) is taken
over. Within one thread the lock is re-entrant, so ``process_scan`` and the stage functions it calls
can all hold it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from orpam_pipeline.errors import StoreError
from orpam_pipeline.store.layout import now_iso

LOCK_NAME = ".orpam.lock"
UNREADABLE_GRACE_S = 5.0
"""An unparsable lock file younger than this is assumed to be still being written by its holder."""

_held: dict[tuple[Path, int], int] = {}
_held_guard = threading.Lock()


def lock_path(folder: Path) -> Path:
    """The lock file of a scan output folder."""
    return Path(folder) / LOCK_NAME


def _process_create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def _holder_info() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": now_iso(),
        "process_started": _process_create_time(os.getpid()),
        "command": " ".join(" ".join(sys.argv).split())[:500],
        "thread": threading.get_ident(),
        "token": uuid.uuid4().hex,
    }


def read_lock(folder: Path) -> dict[str, Any] | None:
    """The holder recorded in the folder's lock file, ``{}`` if unreadable, None if there is no lock."""
    try:
        raw = lock_path(folder).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        info = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def holder_alive(info: dict[str, Any]) -> bool:
    """Whether the process named by a lock record may still run (unknown hosts count as alive)."""
    if info.get("host") != socket.gethostname():
        return True
    try:
        pid = int(info["pid"])
    except (KeyError, TypeError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = info.get("process_started")
        if started is not None and abs(proc.create_time() - float(started)) > 1.0:
            return False
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, OSError):
        return True
    return True


def describe_holder(info: dict[str, Any]) -> str:
    """``pid 123 on host, started 2024-…: orpam run …`` for messages."""
    if not info:
        return "an unknown process (unreadable lock file)"
    text = f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"
    if info.get("command"):
        text += f": {info['command']}"
    return text


def _is_stale(path: Path, info: dict[str, Any]) -> bool:
    if not info:
        try:
            return time.time() - path.stat().st_mtime > UNREADABLE_GRACE_S
        except FileNotFoundError:
            return False
    return not holder_alive(info)


def _take_over(path: Path, expected: bytes) -> None:
    """Remove a stale lock file, unless another process replaced it meanwhile."""
    grave = path.with_name(f"{LOCK_NAME}.stale-{os.getpid()}-{threading.get_ident()}")
    try:
        os.rename(path, grave)
    except FileNotFoundError:
        return
    try:
        if grave.read_bytes() != expected:
            try:
                os.link(grave, path)
            except FileExistsError:
                pass
    finally:
        grave.unlink(missing_ok=True)


def _acquire(folder: Path) -> dict[str, Any]:
    path = lock_path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{LOCK_NAME}.stale-*"):
        stale.unlink(missing_ok=True)
    info = _holder_info()
    payload = json.dumps(info).encode("utf-8")
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                continue
            holder = read_lock(folder)
            if holder is None:
                continue
            if _is_stale(path, holder):
                _take_over(path, raw)
                continue
            raise StoreError(
                folder,
                f"in use by another orpam process ({describe_holder(holder)}); wait for it to finish, "
                f"or remove {path} if that process is gone",
            ) from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        return info
    raise StoreError(folder, f"could not take the lock {path} (it keeps changing hands); try again")


def _release(folder: Path, info: dict[str, Any]) -> None:
    current = read_lock(folder)
    if current is not None and current.get("token") == info["token"]:
        lock_path(folder).unlink(missing_ok=True)


@contextmanager
def store_lock(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (created if missing) for the duration of the block."""
    folder = Path(folder).absolute()
    key = (folder, threading.get_ident())
    with _held_guard:
        if key in _held:
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    info = _acquire(folder)
    with _held_guard:
        _held[key] = 1
    try:
        yield
    finally:
        with _held_guard:
            del _held[key]
        _release(folder, info)
