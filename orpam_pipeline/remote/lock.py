"""One writer per scan folder in object storage: a lock object with a lease.

Object storage has no ``O_EXCL`` and no way to ask whether a process on another machine is alive.
What it offers instead, and what this lock relies on:

* **Exclusive creation.** The lock object ``<scan>/.orpam.lock`` is written with a conditional put
  (``If-None-Match: *`` on S3, ``mode="create"`` in fsspec): of two writers, exactly one succeeds.
  Where a filesystem cannot do this it falls back to check-then-write, and :func:`exclusive_create`
  says so (``exclusive`` is False in the holder record).
* **A lease instead of liveness.** The holder records ``expires`` (now + ``lease_s``) and renews it
  from a background thread every third of the lease. A lock whose lease ran out belongs to a writer
  that died or lost its connection and is taken over: deleted, then created again exclusively, so
  of several writers breaking it at once one wins. A lock held by a process of this same host that
  is gone (killed) is taken over at once, as the local lock does. A writer that stalls longer than its lease (a
  suspended laptop) may find its lock taken; it notices at its next renewal and the scan fails
  rather than upload over the new holder's work.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.remote.urls import join, redact
from orpam_pipeline.store.lock import LOCK_NAME, LockBusy, holder_info, describe_holder, holder_alive, parse_holder

LEASE_S = 120.0
"""How long a lock stays valid without renewal."""


class RemoteLockBusy(LockBusy):
    """The remote scan folder's lease is held by another writer."""

    def __init__(self, url: str, holder: dict[str, Any]) -> None:
        self.holder = holder
        self.path = url  # type: ignore[assignment]
        left = max(0.0, float(holder.get("expires", 0)) - time.time()) if holder else 0.0
        OrpamError.__init__(self, f"{redact(url)}: being written by another orpam process ({describe_holder(holder)}; "
                                  f"its lease runs {left:.0f} s more); rerun when it has finished, or pass --wait-for-locks")  # fmt: skip


class LockLost(OrpamError):
    """This writer's lease ran out and another writer took the folder."""


def lock_url(folder_url: str) -> str:
    return join(folder_url, LOCK_NAME)


def exclusive_create(fs: Any, path: str, data: bytes) -> bool:
    """Create ``path`` only if absent; True if this call created it. Conditional put where the
    filesystem has one, otherwise check-then-write (racy; the lock record says which was used)."""
    try:
        fs.pipe_file(path, data, mode="create")
        return True
    except FileExistsError:
        return False
    except (TypeError, NotImplementedError):
        if fs.exists(path):
            return False
        fs.pipe_file(path, data)
        return True
    except OSError as exc:  # s3fs maps 412 Precondition Failed to an OSError on some versions
        if "412" in str(exc) or "PreconditionFailed" in str(exc):
            return False
        raise


def read_remote_lock(fs: Any, folder: str) -> dict[str, Any] | None:
    """The holder recorded in the lock object, ``{}`` if unreadable, None if there is none."""
    try:
        return parse_holder(fs.cat_file(lock_url(folder)))
    except FileNotFoundError:
        return None


def lease_expired(info: dict[str, Any], now: float | None = None) -> bool:
    """Whether a holder record's lease has run out (an unreadable record counts as expired)."""
    try:
        return float(info["expires"]) < (time.time() if now is None else now)
    except (KeyError, TypeError, ValueError):
        return True


def _record(token: str, lease_s: float) -> dict[str, Any]:
    return {**holder_info(), "token": token, "lease_s": lease_s, "expires": time.time() + lease_s}


def _try_acquire(fs: Any, folder: str, token: str, lease_s: float) -> dict[str, Any] | None:
    """Create the lock (or take over an expired one); the record written, or None when held."""
    path = lock_url(folder)
    record = _record(token, lease_s)
    if exclusive_create(fs, path, json.dumps(record).encode()):
        return record
    holder = read_remote_lock(fs, folder)
    if holder is None or lease_expired(holder) or not holder_alive(holder):
        try:
            fs.rm_file(path)
        except FileNotFoundError:
            pass
        fs.invalidate_cache(path)
        record = _record(token, lease_s)
        if exclusive_create(fs, path, json.dumps(record).encode()):
            return record
    return None


class _Renewer(threading.Thread):
    """Renews the lease every third of it; stops at release or when the lock was taken."""

    def __init__(self, fs: Any, folder: str, token: str, lease_s: float) -> None:
        super().__init__(daemon=True, name=f"orpam-lease {folder}")
        self.fs, self.folder, self.token, self.lease_s = fs, folder, token, lease_s
        self.stop = threading.Event()
        self.lost: str | None = None

    def run(self) -> None:
        while not self.stop.wait(self.lease_s / 3):
            holder = read_remote_lock(self.fs, self.folder)
            if not holder or holder.get("token") != self.token:
                self.lost = describe_holder(holder or {})
                return
            try:
                self.fs.pipe_file(lock_url(self.folder), json.dumps(_record(self.token, self.lease_s)).encode())
            except OSError:
                continue  # try again at the next tick; the lease still covers a missed renewal


@contextmanager
def remote_lock(fs: Any, folder: str, *, wait: float = 0.0, lease_s: float = LEASE_S,
                url: str | None = None) -> Iterator[_Renewer]:
    """Hold the scan folder ``folder`` (a path in ``fs``) for the block; raises :class:`RemoteLockBusy`
    when another writer's lease is valid (after waiting up to ``wait`` seconds). Yields the renewer:
    call :func:`check_held` before anything that must not happen without the lock."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    while (record := _try_acquire(fs, folder, token, lease_s)) is None:
        holder = read_remote_lock(fs, folder) or {}
        if time.monotonic() >= deadline:
            raise RemoteLockBusy(url or folder, holder)
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
    renewer = _Renewer(fs, folder, record["token"], lease_s)
    renewer.start()
    try:
        yield renewer
    finally:
        renewer.stop.set()
        renewer.join()
        holder = read_remote_lock(fs, folder)
        if holder and holder.get("token") == token:
            try:
                fs.rm_file(lock_url(folder))
            except FileNotFoundError:
                pass


def check_held(renewer: _Renewer, fs: Any, folder: str, url: str) -> None:
    """Raise :class:`LockLost` if this writer no longer holds the folder."""
    holder = read_remote_lock(fs, folder)
    if renewer.lost is not None or not holder or holder.get("token") != renewer.token:
        raise LockLost(f"{redact(url)}: the lock was taken over by {describe_holder(holder or {})} while this "
                       "run held it (its lease ran out); nothing was uploaded")  # fmt: skip
