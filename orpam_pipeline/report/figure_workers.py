"""Draw a report's figures on several cores: the calling thread and a few worker processes share the jobs.

matplotlib holds the GIL for most of its work (layout, ticks, text, SVG), so threads would not help;
processes do. The workers are plain ``python -c`` children that import the plotting code once and then
draw jobs sent as pickles over their stdin/stdout. They are not started through ``multiprocessing``,
whose ``spawn`` and ``forkserver`` re-import the caller's main script (a user's script without an
``if __name__ == "__main__"`` guard would run again) and whose ``fork`` is unsafe in a process with
threads. A worker that dies is replaced by drawing on the calling thread; a worker whose parent is gone
reads end-of-file and exits. ``ORPAM_FIGURE_WORKERS=0``, a single core, a dask.distributed worker (the
cluster already spreads whole scans over the cores) or a process that cannot start children draws
everything on the calling thread; the figures are the same bytes either way.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from pathlib import Path
from typing import IO, Any, TypeVar

from orpam_pipeline.cores import usable_cores

MAX_WORKERS = 3
"""At most this many worker processes (a report has five figures at most; the calling thread draws too)."""
ENV = "ORPAM_FIGURE_WORKERS"
"""Environment variable: the number of worker processes (0: draw on the calling thread only)."""
PRELOAD = "orpam_pipeline.report.figures"
_HEADER = struct.Struct("<Q")

J = TypeVar("J")
R = TypeVar("R")


class WorkerGone(Exception):
    """The worker process ended or its pipe broke: the job is drawn elsewhere."""


def _on_dask_worker() -> bool:
    """Whether this runs inside a dask.distributed worker (whose cluster already spreads scans over the cores)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def worker_count() -> int:
    """How many worker processes to use: ``$ORPAM_FIGURE_WORKERS``, else one fewer than the usable cores (at most
    ``MAX_WORKERS``), and none inside a dask.distributed worker unless the variable asks for them."""
    wanted = os.environ.get(ENV, "").strip()
    if wanted:
        try:
            return max(0, int(wanted))
        except ValueError:
            from orpam_pipeline.errors import OrpamError

            raise OrpamError(f"${ENV} must be a whole number of worker processes, not {wanted!r}") from None
    if _on_dask_worker():
        return 0
    cores = usable_cores()
    return min(MAX_WORKERS, cores - 1)


def _send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def serve() -> None:
    """A worker's loop: draw each job read from stdin and answer ``(True, result)`` or ``(False, exception)``.

    Ctrl-C reaches the whole process group; the worker leaves it to its parent, whose exit closes the pipe.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    __import__(PRELOAD)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing the plotting code prints may reach the pipe
    while True:
        try:
            draw, job, args = _receive(stdin)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, draw(job, *args))
        except Exception as exc:
            answer = (False, exc)
        try:
            _send(stdout, answer)
        except (pickle.PicklingError, TypeError, AttributeError):
            _send(stdout, (False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}")))


class Worker:
    """One worker process; it draws one job at a time."""

    def __init__(self) -> None:
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from orpam_pipeline.report.figure_workers import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
        )  # fmt: skip
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, draw: Callable[..., Any], job: Any, args: tuple) -> Any:
        """``draw(job, *args)`` in the worker; ``WorkerGone`` when the worker cannot answer."""
        with self.lock:
            try:
                _send(self.process.stdin, (draw, job, args))  # type: ignore[arg-type]
                ok, value = _receive(self.process.stdout)  # type: ignore[arg-type]
            except (EOFError, OSError, pickle.UnpicklingError) as exc:
                self.close()
                raise WorkerGone(str(exc)) from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


_workers: list[Worker] = []
_workers_lock = threading.Lock()


def workers() -> list[Worker]:
    """The process's figure workers, started on first use and kept (dead ones replaced)."""
    wanted = worker_count()
    with _workers_lock:
        for gone in [w for w in _workers if not w.alive()]:
            gone.close()  # reap it and release its pipes
            _workers.remove(gone)
        try:
            while len(_workers) < wanted:
                _workers.append(Worker())
        except OSError:  # no children may be started here: draw on the calling thread
            pass
        return list(_workers[:wanted])


def start() -> None:
    """Start the workers now (each imports the plotting code), so that the first report finds them ready."""
    workers()


@atexit.register
def _close_all() -> None:
    with _workers_lock:
        for w in _workers:
            w.close()
        _workers.clear()


def draw_all(jobs: Sequence[J], draw: Callable[..., R], *args: Any, order: Sequence[int] | None = None) -> list[R]:
    """``[draw(job, *args) for job in jobs]``, the jobs shared between the workers and the calling thread.

    Jobs start in ``order`` (indices into ``jobs``; default: as given), each on whichever of the workers
    and the calling thread is free first, so the longest jobs given first finish together. A job that
    raises raises here. A job whose worker dies is drawn on the calling thread.
    """
    results: list[Any] = [None] * len(jobs)
    idle = workers() if len(jobs) > 1 else []
    pending = list(range(len(jobs))) if order is None else list(order)
    if sorted(pending) != list(range(len(jobs))):
        raise ValueError(f"order must name every job once, got {pending} for {len(jobs)} jobs")
    running: dict[Future, tuple[int, Worker]] = {}

    def dispatch(worker: Worker, i: int) -> Future:
        future: Future = Future()

        def run() -> None:
            try:
                future.set_result(worker.call(draw, jobs[i], args))
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=run, name="orpam-figure-job", daemon=True).start()
        return future

    def feed() -> None:
        while idle and pending:
            i = pending.pop(0)
            worker = idle.pop()
            running[dispatch(worker, i)] = (i, worker)

    def collect(futures: Any) -> None:
        for future in futures:
            i, worker = running.pop(future)
            try:
                results[i] = future.result()
                idle.append(worker)
            except WorkerGone:
                pending.append(i)

    feed()
    while pending or running:
        if pending:
            i = pending.pop(0)
            results[i] = draw(jobs[i], *args)
        else:
            collect(wait(running).done)
        collect([f for f in running if f.done()])
        feed()
    return results
