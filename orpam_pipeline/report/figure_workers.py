"""Draw a report's figures on several cores, in worker processes that alone import the plotting code.

matplotlib holds the GIL for most of its work (layout, ticks, text, SVG), so threads would not help;
processes do. Importing matplotlib costs about a CPU-second, so it is imported once: the first worker
is a plain ``python -c`` child that imports the plotting code and then forks the other workers (it has
no other threads at that point, so the fork is safe); the calling process never imports it while
workers draw. Jobs and results travel as pickles over each worker's own pair of pipes. The workers are
not started through ``multiprocessing``, whose ``spawn`` and ``forkserver`` re-import the caller's main
script (a user's script without an ``if __name__ == "__main__"`` guard would run again) and whose ``fork``
is unsafe in a process with threads. The calling thread draws only when no worker can: a job whose worker
dies is drawn there, and ``ORPAM_FIGURE_WORKERS=0``, a single core, a dask.distributed worker (the cluster
already spreads whole scans over the cores) or a process that cannot start children draws everything
there. A worker whose parent is gone reads end-of-file and exits; the figures are the same bytes
wherever they are drawn.
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
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import IO, Any, TypeVar

from orpam_pipeline.cores import usable_cores

MAX_WORKERS = 3
"""At most this many worker processes (a report has five figures at most)."""
ENV = "ORPAM_FIGURE_WORKERS"
"""Environment variable: the number of worker processes (0: draw on the calling thread only)."""
PRELOAD = ("orpam_pipeline.report.figures", "orpam_pipeline.report.image_figures", "orpam_pipeline.report.plot_figures")
"""What a worker imports before it forks the others: everything a figure is drawn with."""
SINGLE_THREADED = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Thread pools a worker keeps to one thread: drawing needs none, and the first worker forks the others."""
NICENESS = 10
"""How much lower than the caller the workers run (Unix ``nice``): their imports, made while a scan ingests, and
their drawing, while the next scan of a batch goes on, take the cores only when the pipeline leaves them idle."""
FORKS = sys.platform.startswith("linux")
"""Whether the first worker forks the others: on Linux. macOS's system libraries (libdispatch behind Accelerate)
do not survive a fork once used, and Windows has none."""
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
    """How many worker processes to use: ``$ORPAM_FIGURE_WORKERS``, else one per usable core (at most
    ``MAX_WORKERS``; none on a single core, where the calling thread draws), and none inside a
    dask.distributed worker unless the variable asks for them."""
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
    return 0 if cores < 2 else min(MAX_WORKERS, cores)


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


def serve(siblings: Sequence[tuple[int, int]] = ()) -> None:
    """A worker's life: import the plotting code, fork one worker per ``siblings`` pipe pair (read, write),
    then draw each job read and answer ``(True, result)`` or ``(False, exception)``, after a first message
    with its process id.

    Ctrl-C reaches the whole process group; the worker leaves it to its parent, whose exit closes the pipes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    for module in PRELOAD:
        __import__(module)
    sys.stdout.flush()
    forked = False
    for read, write in siblings:
        forked = _fork_detached()
        if forked:  # this worker's own pipes become its stdin and stdout
            os.dup2(read, 0)
            os.dup2(write, 1)
            break
    for fd in {fd for pair in siblings for fd in pair}:
        os.close(fd)  # a pipe end left open elsewhere would keep the caller from seeing its worker end
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing the plotting code prints may reach a pipe
    _send(stdout, os.getpid())
    while True:
        try:
            draw, job, args = _receive(stdin)
        except EOFError:
            break
        try:
            answer: tuple[bool, Any] = (True, draw(job, *args))
        except Exception as exc:
            answer = (False, exc)
        try:
            _send(stdout, answer)
        except (pickle.PicklingError, TypeError, AttributeError):
            _send(stdout, (False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}")))
    if forked:
        os._exit(0)  # nothing of the first worker's exit (atexit, buffers) is a forked worker's to run


def _fork_detached() -> bool:
    """Fork a grandchild that init adopts (so nobody has to reap it); True in the grandchild."""
    child = os.fork()
    if child == 0:
        if os.fork() != 0:
            os._exit(0)
        return True
    os.waitpid(child, 0)
    return False


class Worker:
    """One worker process, reached through its pair of pipes; it draws one job at a time."""

    def __init__(self, to_worker: IO[bytes], from_worker: IO[bytes], process: subprocess.Popen | None = None) -> None:
        self.to_worker, self.from_worker, self.process = to_worker, from_worker, process
        self.lock = threading.Lock()
        self.gone = False
        self._pid: int | None = None

    @property
    def pid(self) -> int:
        """The worker's process id (its first message: waits until its imports are done)."""
        with self.lock:
            return self._hello()

    def _hello(self) -> int:
        if self._pid is None:
            try:
                self._pid = int(_receive(self.from_worker))
            except (EOFError, OSError, pickle.UnpicklingError, ValueError) as exc:
                self.close()
                raise WorkerGone(str(exc)) from None
        return self._pid

    def alive(self) -> bool:
        return not self.gone and (self.process is None or self.process.poll() is None)

    def call(self, draw: Callable[..., Any], job: Any, args: tuple) -> Any:
        """``draw(job, *args)`` in the worker; ``WorkerGone`` when the worker cannot answer."""
        with self.lock:
            self._hello()
            try:
                _send(self.to_worker, (draw, job, args))
                ok, value = _receive(self.from_worker)
            except (EOFError, OSError, pickle.UnpicklingError) as exc:
                self.close()
                raise WorkerGone(str(exc)) from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self.gone = True
        for stream in (self.to_worker, self.from_worker):
            try:
                stream.close()
            except OSError:
                pass
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_workers(count: int) -> list[Worker]:
    """``count`` new workers: one started as a fresh interpreter, which forks the others once it has imported
    the plotting code (:data:`FORKS`; elsewhere each is a fresh interpreter of its own)."""
    if count < 1:
        return []
    if not FORKS:
        return [w for _ in range(count) for w in start_workers_forked(0)]
    return start_workers_forked(count - 1)


def start_workers_forked(forks: int) -> list[Worker]:
    """A fresh interpreter that forks ``forks`` more workers: all of them, the fresh one first."""
    pairs = []  # per forked worker: (its read end, its write end, our write end, our read end)
    try:
        for _ in range(forks):
            down, up = os.pipe(), os.pipe()
            pairs.append((down[0], up[1], down[1], up[0]))
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
        env.update(dict.fromkeys(SINGLE_THREADED, "1"))
        siblings = [(r, w) for r, w, _, _ in pairs]
        process = subprocess.Popen(
            [sys.executable, "-c", f"from orpam_pipeline.report.figure_workers import serve; serve({siblings!r})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
            pass_fds=[fd for pair in siblings for fd in pair],
        )  # fmt: skip
    except BaseException:
        for fd in (fd for pair in pairs for fd in pair):
            os.close(fd)
        raise
    for r, w, _, _ in pairs:
        os.close(r)
        os.close(w)
    first = Worker(process.stdin, process.stdout, process)  # type: ignore[arg-type]
    return [first, *(Worker(os.fdopen(ours_w, "wb"), os.fdopen(ours_r, "rb")) for _, _, ours_w, ours_r in pairs)]


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
            _workers.extend(start_workers(wanted - len(_workers)))
        except OSError:  # no children may be started here: draw on the calling thread
            pass
        return list(_workers[:wanted])


def start() -> int:
    """Start the workers now (they import the plotting code), so that the first report finds them ready; how many
    there are."""
    return len(workers())


@atexit.register
def _close_all() -> None:
    with _workers_lock:
        for w in _workers:
            w.close()
        _workers.clear()


def draw_all(jobs: Sequence[J], draw: Callable[..., R], *args: Any, order: Sequence[int] | None = None) -> list[R]:
    """``[draw(job, *args) for job in jobs]``, the jobs shared between the workers.

    Jobs start in ``order`` (indices into ``jobs``; default: as given), each on whichever worker is free
    first (one that no other thread's call is using before one that is), so the longest jobs given first
    finish together. A job that raises raises here. A job whose
    worker dies goes to another; the calling thread draws only when no worker is left (or none was started).
    """
    results: list[Any] = [None] * len(jobs)
    idle = workers() if jobs else []
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
            free = [w for w in idle if not w.lock.locked()]
            worker = (free or idle)[-1]
            idle.remove(worker)
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
        if running:
            collect(wait(running, return_when=FIRST_COMPLETED).done)
        else:
            i = pending.pop(0)
            results[i] = draw(jobs[i], *args)
        feed()
    return results
