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

WAIT_POLL_S = 0.5


class LockBusy(StoreError):
    """The folder is locked by a live process (not a failure of this scan: it is being written)."""

    def __init__(self, folder: Path, holder: dict[str, Any]) -> None:
        self.holder = holder
        super().__init__(folder, f"being written by another orpam process ({describe_holder(holder)}); "
                                 "rerun when it has finished, or pass --wait-for-locks")  # fmt: skip


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


def holder_info() -> dict[str, Any]:
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
    return parse_holder(raw)


def parse_holder(raw: bytes) -> dict[str, Any]:
    """A lock record's holder, ``{}`` when the bytes are not a JSON object."""
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
    info = holder_info()
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
            raise LockBusy(folder, holder)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        return info
    raise StoreError(folder, f"could not take the lock {path} (it keeps changing hands); try again")


def _release(folder: Path, info: dict[str, Any]) -> None:
    current = read_lock(folder)
    if current is not None and current.get("token") == info["token"]:
        lock_path(folder).unlink(missing_ok=True)


def _acquire_waiting(folder: Path, wait: float) -> dict[str, Any]:
    """:func:`_acquire`, retried while a live process holds the lock, for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return _acquire(folder)
        except LockBusy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(WAIT_POLL_S)


@contextmanager
def store_lock(folder: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (created if missing) for the duration of the block.

    ``wait`` > 0: while another live process holds it, wait up to that many seconds (``math.inf``:
    until it is released) instead of raising :class:`LockBusy` at once.
    """
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
    info = _acquire_waiting(folder, wait) if wait > 0 else _acquire(folder)
    with _held_guard:
        _held[key] = 1
    try:
        yield
    finally:
        with _held_guard:
            del _held[key]
        _release(folder, info)


@contextmanager
def borrowed_lock(folder: Path, owner: int) -> Iterator[None]:
    """Let this thread use the lock of ``folder`` that thread ``owner`` of this process holds, re-entrantly, for
    the duration of the block (a batch finishes one scan's report on another thread while its lock stays held).

    The owner's hold is not touched: the lock file is released when the owner's :func:`store_lock` block ends,
    which must not happen before this block ends. Raises ``RuntimeError`` when ``owner`` does not hold it.
    """
    folder = Path(folder).absolute()
    mine = (folder, threading.get_ident())
    with _held_guard:
        if (folder, owner) not in _held:
            raise RuntimeError(f"thread {owner} does not hold the lock of {folder}")
        _held[mine] = _held.get(mine, 0) + 1
    try:
        yield
    finally:
        with _held_guard:
            _held[mine] -= 1
            if not _held[mine]:
                del _held[mine]


QUIET_SECONDS = 600.0
"""How long nothing in a scan folder may have changed before ``orpam unlock --force`` removes a lock
held from another host (a live writer there touches chunk files and markers far more often)."""


def _newest_change(folder: Path) -> float:
    newest = 0.0
    for root, _, files in os.walk(folder):
        for name in files:
            if name == LOCK_NAME:
                continue
            try:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
            except FileNotFoundError:
                continue
    return newest


def unlock(folder: Path, force: bool = False, quiet_seconds: float = QUIET_SECONDS) -> str:
    """Remove the lock of a scan folder when that is safe; returns what was done, or raises why not.

    The rule: a lock of a live process on this host is never removed; one of a dead process on this
    host is (the next run would take it over anyway); one held from another host is removed only
    with ``force`` and only when nothing in the folder changed for ``quiet_seconds``, because this
    host cannot see whether that process still runs.
    """
    folder = Path(folder)
    holder = read_lock(folder)
    if holder is None:
        return "not locked"
    here = holder.get("host") == socket.gethostname()
    if holder and here and holder_alive(holder):
        raise StoreError(folder, f"locked by a live process on this host ({describe_holder(holder)}); stop it first")
    if holder and not here:
        if not force:
            raise StoreError(folder, f"locked from another host ({describe_holder(holder)}); make sure that process has "
                                     "ended, then pass --force")  # fmt: skip
        idle = time.time() - _newest_change(folder)
        if idle < quiet_seconds:
            raise StoreError(folder, f"locked from another host and its files changed {idle:.0f} s ago; a writer may "
                                     f"still be running (refusing until {quiet_seconds:.0f} s without changes)")  # fmt: skip
    lock_path(folder).unlink(missing_ok=True)
    return f"removed the lock of {describe_holder(holder)}"
