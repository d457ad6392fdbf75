"""One writer per scan folder: a second `orpam run` fails at once naming the holder; stale locks are taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from orpam_pipeline.errors import StoreError
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.store.lock import LockBusy, borrowed_lock, lock_path, read_lock, store_lock
from tests.reliability.conftest import RUN_ARGS, orpam_process


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_second_run_on_the_same_output_reports_the_scan_busy_at_once_naming_the_holder(tmp_path, long_scan):
    out = tmp_path / "out"
    first = orpam_process("run", long_scan, out, *RUN_ARGS)
    try:
        _wait_for(lambda: bool(read_lock(out / "scan")))
        os.kill(first.pid, signal.SIGSTOP)  # the holder is alive but cannot finish while the second one runs
        started = time.monotonic()
        second = orpam_process("run", long_scan, out, *RUN_ARGS)
        _, err2 = second.communicate(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 75  # busy is not a failure: retry later
    message = " ".join(err2.split())
    assert "1 busy" in message and "failed" not in message
    assert f"being written by another orpam process (pid {first.pid} on {socket.gethostname()}, started" in message
    assert elapsed < 30
    assert not lock_path(out / "scan").exists()
    assert (out / "scan" / "report.json").is_file()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, small_sim):
    import numpy as np

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "out" / "s"
    folder.mkdir(parents=True)
    lock_path(folder).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "then"}))
    np.save(tmp_path / "s.npy", small_sim.frames[:4])
    outcome = run_batch(tmp_path / "s.npy", tmp_path / "out", RunOptions(method="none"))[0]
    assert outcome.ok, outcome.error
    assert not lock_path(folder).exists()


def test_live_lock_on_another_host_is_refused_and_lock_is_released_on_exceptions(tmp_path):
    folder = tmp_path / "scan"
    folder.mkdir()
    lock_path(folder).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "2024-01-01T00:00:00+00:00"}))
    with pytest.raises(StoreError, match=r"being written by another orpam process \(pid 1 on elsewhere, started 2024"):
        with store_lock(folder):
            pass
    lock_path(folder).unlink()
    with pytest.raises(RuntimeError), store_lock(folder):
        with store_lock(folder):  # re-entrant in the same thread
            assert read_lock(folder)["pid"] == os.getpid()
        assert lock_path(folder).exists()
        raise RuntimeError("boom")
    assert not lock_path(folder).exists()


def test_with_wait_for_locks_a_second_run_waits_and_ends_complete(tmp_path, long_scan):
    out = tmp_path / "out"
    first = orpam_process("run", long_scan, out, *RUN_ARGS)
    try:
        _wait_for(lambda: bool(read_lock(out / "scan")))
        os.kill(first.pid, signal.SIGSTOP)
        second = orpam_process("run", long_scan, out, *RUN_ARGS, "--wait-for-locks")
        time.sleep(2.0)
        assert second.poll() is None  # waiting, not failed
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err1 = first.communicate(timeout=120)
    out2, err2 = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert "already complete" in out2 + err2


def test_unlock_follows_the_rule(tmp_path):
    from orpam_pipeline.store.lock import unlock

    folder = tmp_path / "scan"
    folder.mkdir()
    (folder / "chunk").write_text("x")
    assert unlock(folder) == "not locked"
    lock_path(folder).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "now"}))
    with pytest.raises(StoreError, match="live process on this host"):
        unlock(folder, force=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(folder).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "then"}))
    assert unlock(folder).startswith("removed the lock") and not lock_path(folder).exists()
    lock_path(folder).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "then"}))
    with pytest.raises(StoreError, match="another host.*pass --force"):
        unlock(folder)
    with pytest.raises(StoreError, match="changed .* ago; a writer may still be running"):
        unlock(folder, force=True)
    old = time.time() - 3600
    os.utime(folder / "chunk", (old, old))
    assert unlock(folder, force=True).startswith("removed") and not lock_path(folder).exists()


def test_a_thread_may_borrow_a_lock_another_thread_of_the_process_holds(tmp_path):
    import threading

    folder = tmp_path / "scan"
    seen: dict[str, object] = {}

    def without() -> None:
        try:
            with store_lock(folder):
                seen["without"] = "taken"
        except LockBusy as exc:
            seen["without"] = exc

    def borrowing(owner: int) -> None:
        with borrowed_lock(folder, owner), store_lock(folder):  # re-entrant from here while borrowed
            seen["borrowed"] = read_lock(folder)["pid"]

    with store_lock(folder):
        for target, args in ((without, ()), (borrowing, (threading.get_ident(),))):
            t = threading.Thread(target=target, args=args)
            t.start()
            t.join()
        assert lock_path(folder).exists(), "the borrower's block does not release the owner's lock"
    assert isinstance(seen["without"], LockBusy), "a thread that did not borrow it is refused"
    assert seen["borrowed"] == os.getpid()
    assert not lock_path(folder).exists()
    with pytest.raises(RuntimeError, match="does not hold"):
        with borrowed_lock(folder, threading.get_ident()):
            pass
