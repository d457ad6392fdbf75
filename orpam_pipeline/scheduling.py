"""Where the per-chunk dask tasks run: this process's threads, a local cluster, or an existing cluster.

Three modes, chosen once per command by :func:`compute_context`:

- neither ``scheduler`` nor ``workers``: dask's threaded scheduler in this process (``distributed`` is
  not imported at all);
- ``workers=N``: a ``distributed.LocalCluster`` of N worker processes on this machine;
- ``scheduler="tcp://host:8786"``: an existing ``dask.distributed`` cluster.

Code that builds tasks never names a scheduler: :func:`run_tasks` uses the active client when there
is one (also one a caller created itself, e.g. in a notebook) and the threaded scheduler otherwise,
and reports finished tasks to the ``progress(stage, done, total)`` callback in every mode. Tasks carry
only paths and small settings; workers read and write the stores themselves, so every worker must
see the output paths (and checkpoints) under the same absolute names: a local disk for a local
cluster, a shared POSIX filesystem (NFS, Lustre, GPFS, CephFS) for a multi-node one.

A batch of several scans is spread by :func:`map_scans`: one task per scan, so many small scans keep
every worker busy, each scan's chunk tasks staying on its worker's threads. Sources and outputs in
object storage (``s3://``) need no shared filesystem: each worker stages its scans
(:mod:`orpam_pipeline.remote`).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import dask
import dask.threaded
from dask.callbacks import Callback

from orpam_pipeline.errors import OrpamError

ProgressFn = Callable[[str, int, int], None]
"""Called as ``progress(stage, blocks_done, blocks_total)``."""


def active_client() -> Any | None:
    """The default ``distributed`` client of this process, or None (never imports ``distributed``)."""
    if "distributed" not in sys.modules or local_only():
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


@contextmanager
def compute_context(
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    threads_per_worker: int | None = None,
    worker_resources: Mapping[str, float] | None = None,
    cluster: Mapping[str, Any] | None = None,
) -> Iterator[Any | None]:
    """Run the enclosed pipeline calls on the chosen scheduler; yields the client (None when local).

    ``workers`` starts a local cluster of that many processes with ``threads_per_worker`` threads
    each (default: the CPU cores shared out) and ``worker_resources`` advertised by each (e.g.
    ``{"GPU": 1}``); it is shut down on exit. ``scheduler`` connects to a running cluster, left running.
    ``cluster`` starts one through a cluster manager (:func:`make_cluster`), shut down on exit.
    """
    if sum(bool(x) for x in (scheduler, workers, cluster)) > 1:
        raise OrpamError("give one of a scheduler address, a number of local workers or a cluster to start")
    if cluster:
        from distributed import Client

        manager = make_cluster(cluster)
        with manager, Client(manager, set_as_default=True) as client:
            yield client
        return
    if workers is not None and workers < 1:
        raise OrpamError(f"workers must be at least 1, not {workers}")
    if not scheduler and not workers:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - a core dependency
        raise OrpamError("running on a cluster needs the 'distributed' package (pip install distributed)") from None
    if scheduler:
        probe_scheduler(scheduler)
        try:
            client = Client(scheduler, timeout="20s", set_as_default=True)
        except (OSError, MemoryError, ValueError, TypeError) as exc:
            raise OrpamError(f"cannot reach the dask scheduler at {scheduler}: {type(exc).__name__}: {exc}") from None
        with client:
            yield client
        return
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // int(workers or 1))
    cluster = LocalCluster(
        n_workers=int(workers or 1),
        threads_per_worker=threads,
        processes=True,
        host="127.0.0.1",
        # The scheduler always runs an HTTP server (health routes); without these it binds port 8787,
        # dashboard or not. Loopback, a free port and no dashboard: nothing extra answers.
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
        resources=dict(worker_resources) if worker_resources else None,
    )
    with cluster, Client(cluster, set_as_default=True) as client:
        yield client


CLUSTER_KINDS: dict[str, tuple[str, str, str]] = {
    "slurm": ("dask_jobqueue", "SLURMCluster", "dask-jobqueue"),
    "pbs": ("dask_jobqueue", "PBSCluster", "dask-jobqueue"),
    "sge": ("dask_jobqueue", "SGECluster", "dask-jobqueue"),
    "lsf": ("dask_jobqueue", "LSFCluster", "dask-jobqueue"),
    "gateway": ("dask_gateway", "GatewayCluster", "dask-gateway"),
    "kubernetes": ("dask_kubernetes.operator", "KubeCluster", "dask-kubernetes"),
}
"""``kind`` of a ``[compute] cluster`` table -> (module, class, the package to install)."""


def make_cluster(spec: Mapping[str, Any]) -> Any:
    """A cluster started by a cluster manager from a ``[compute] cluster`` table (docs/clusters.md).

    ``kind`` picks the manager, ``workers`` how many workers (or batch jobs) to ask for; every other
    key goes to the manager's constructor as its own documentation names it (``cores``, ``memory``,
    ``job_extra_directives``, ``image``, …). Nothing is submitted until ``workers`` is scaled to.
    """
    import importlib

    options = dict(spec)
    kind = str(options.pop("kind", ""))
    if kind not in CLUSTER_KINDS:
        raise OrpamError(f"[compute] cluster kind must be one of {', '.join(CLUSTER_KINDS)}, not {kind!r}")
    module, name, package = CLUSTER_KINDS[kind]
    workers = options.pop("workers", None)
    try:
        manager = getattr(importlib.import_module(module), name)
    except ImportError:
        raise OrpamError(f"a {kind} cluster needs the {package} package (pip install {package})") from None
    try:
        cluster = manager(**options)
    except TypeError as exc:
        raise OrpamError(f"[compute] cluster ({kind}): {exc}") from None
    if workers:
        cluster.scale(int(workers))
    return cluster


PROBE_SECONDS = 5.0


def probe_scheduler(address: str, seconds: float = PROBE_SECONDS) -> None:
    """Check that a dask scheduler answers at a ``tcp://`` address before ``distributed`` connects.

    A dask scheduler greets a new connection at once with a framed message (8-byte little-endian
    total length, then the frame count). Something else on that port either says nothing (an HTTP
    server waits for a request: ``distributed`` would then wait long past its timeout) or sends
    bytes that ``distributed`` reads as an absurd frame length and tries to allocate. Both are one
    line here instead. Other protocols (tls://, ucx://) are left to ``distributed``.
    """
    import socket
    import struct

    target = address.removeprefix("tcp://")
    if "://" in target:
        return
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise OrpamError(f"scheduler address {address!r}: expected tcp://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=seconds) as sock:
            sock.settimeout(seconds)
            greeting = b""
            while len(greeting) < 16:
                part = sock.recv(16 - len(greeting))
                if not part:
                    break
                greeting += part
    except TimeoutError:
        raise OrpamError(f"{address}: something answers but sends no dask greeting within {seconds:.0f} s "
                         "(is it a dask scheduler? the usual port is 8786)") from None  # fmt: skip
    except OSError as exc:
        raise OrpamError(f"cannot reach the dask scheduler at {address}: {exc.strerror or exc}") from None
    if len(greeting) < 16:
        raise OrpamError(f"{address}: the connection closed without a dask greeting (not a dask scheduler)")
    total, frames = struct.unpack("<QQ", greeting)
    if not (0 < frames <= 1024 and total < 2**30):
        raise OrpamError(f"{address}: answers, but not like a dask scheduler (the usual port is 8786)")


def cluster_resources(client: Any) -> dict[str, float]:
    """The largest amount of each resource any worker of the cluster advertises."""
    found: dict[str, float] = {}
    for worker in client.scheduler_info(n_workers=-1)["workers"].values():
        for name, amount in (worker.get("resources") or {}).items():
            found[name] = max(found.get(name, 0.0), float(amount))
    return found


def placement(client: Any | None, wanted: Mapping[str, float]) -> dict[str, float]:
    """The resource restrictions to put on tasks: ``wanted`` when the cluster advertises all of it, else none."""
    if client is None or not wanted:
        return {}
    have = cluster_resources(client)
    return dict(wanted) if all(have.get(k, 0.0) >= v for k, v in wanted.items()) else {}


class _TaskProgress(Callback):
    """Counts finished tasks whose key starts with ``prefix`` (threaded scheduler)."""

    def __init__(self, prefix: str, stage: str, total: int, report: ProgressFn, done: int) -> None:
        super().__init__()
        self.prefix, self.stage, self.total, self.report, self.done = prefix, stage, total, report, done

    def _start(self, dsk: Any) -> None:
        self.report(self.stage, self.done, self.total)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if isinstance(name, str) and name.startswith(self.prefix):
            self.done += 1
            self.report(self.stage, self.done, self.total)


def make_tasks(
    fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], prefix: str, resources: Mapping[str, float] | None = None
) -> list[Any]:
    """One delayed call ``fn(*a)`` per entry of ``args``, keyed ``prefix-<i>``, annotated with ``resources``."""
    annotations = {"resources": dict(resources)} if resources else {}
    with dask.annotate(**annotations):
        return [dask.delayed(fn, pure=False)(*a, dask_key_name=f"{prefix}-{i}") for i, a in enumerate(args)]


def run_tasks(
    tasks: Sequence[Any],
    stage: str,
    prefix: str,
    progress: ProgressFn | None = None,
    *,
    total: int | None = None,
    done: int = 0,
) -> list[Any]:
    """Compute ``tasks`` (from :func:`make_tasks`) on the active client or local threads, in order.

    ``progress`` hears ``(stage, done + finished, total)`` after every finished task. On a cluster the
    graph is submitted unoptimised, so no fusion can merge tasks or drop their resource annotations;
    on an error or an interrupt the remaining tasks are cancelled.
    """
    total = len(tasks) + done if total is None else total
    client = active_client()
    if client is None:
        # The threaded scheduler given as a function: a scheduler named by string makes dask import
        # ``distributed`` (when installed) just to look for a client.
        with one_blas_thread():
            if progress is None:
                return list(dask.compute(*tasks, scheduler=dask.threaded.get))
            with _TaskProgress(prefix, stage, total, progress, done):
                return list(dask.compute(*tasks, scheduler=dask.threaded.get))
    from distributed import as_completed

    if progress is not None:
        progress(stage, done, total)
    futures = client.compute(list(tasks), optimize_graph=False)
    try:
        for future in as_completed(futures):
            future.result()
            done += 1
            if progress is not None:
                progress(stage, done, total)
        return client.gather(futures)
    except BaseException:
        client.cancel(futures)
        raise


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limits: Any = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread while chunk tasks run on this process's threads, restored when the last such run ends.

    Every dask thread already keeps a core busy; a BLAS call that starts its own threads on top
    (OpenBLAS uses every core by default) oversubscribes the cores and is slower than one thread
    (the phase method's window transforms are matrix products). Distributed workers set their
    BLAS threads to 1 themselves (dask's nanny). The limit is process-wide, so overlapping runs share it.
    """
    global _blas_users, _blas_limits
    with _blas_lock:
        if _blas_users == 0:
            from threadpoolctl import threadpool_limits

            _blas_limits = threadpool_limits(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limits.restore_original_limits()
                _blas_limits = None


_local = threading.local()


def local_only() -> bool:
    """True inside a per-scan task on a worker: its chunk tasks stay on that worker's threads."""
    return getattr(_local, "active", False)


PROGRESS_TOPIC = "orpam-progress"


def _scan_task(call: Callable[..., Any], item: Any, key: str, threads: int) -> Any:
    """Run ``call(item, progress)`` on a worker: chunk tasks on this worker's own threads, progress
    sent to the client as ``(key, stage, done, total)`` events."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        worker = None

    def progress(stage: str, done: int, total: int) -> None:
        if worker is not None:
            worker.log_event(PROGRESS_TOPIC, (key, stage, done, total))

    _local.active = True
    try:
        with dask.config.set(num_workers=max(1, threads)):
            return call(item, progress)
    finally:
        _local.active = False


SCAN_MEMORY = 512 * 2**20
"""Memory one scan in flight is given by default: a few chunks of frames and the method's buffers
(``benchmarks/bench_run_scaling.py`` measures 0.47-0.50 GiB peak for a whole ``orpam run`` of 256x256
frames, flat in the number of frames)."""


def _total_threads(client: Any) -> int:
    return sum(int(w.get("nthreads", 1)) for w in client.scheduler_info(n_workers=-1)["workers"].values()) or 1


def default_jobs(client: Any, scan_memory: int = SCAN_MEMORY) -> int:
    """Scans in flight by default: one per worker thread, fewer where the workers' memory limits would
    not hold :data:`SCAN_MEMORY` for each."""
    slots = 0
    for worker in client.scheduler_info(n_workers=-1)["workers"].values():
        threads = int(worker.get("nthreads", 1))
        limit = int(worker.get("memory_limit") or 0)
        slots += min(threads, max(1, limit // scan_memory)) if limit else threads
    return max(1, slots)


def _map_here(
    call: Callable[[Any, ProgressFn | None], Any],
    items: Sequence[Any],
    names: Sequence[str],
    results: list[Any],
    on_start: Callable[[int, int, str], None] | None,
    on_done: Callable[[Any], None] | None,
    progress: ProgressFn | None,
) -> list[Any]:
    """:func:`map_scans` in this process, one item after another. A ``call`` may return a ``Future`` of its result
    (the rest of its work goes on elsewhere): the next item then starts at once, and that result is awaited before
    the next one is taken, so results and ``on_done`` keep the items' order and at most one is outstanding. A result
    that arrives while the next item runs is handed to ``on_done`` at that item's next progress event on this
    thread, not only when it ends."""
    outstanding: tuple[int, Future[Any]] | None = None
    here = threading.get_ident()

    def settle() -> None:
        nonlocal outstanding
        if outstanding is not None:
            i, future = outstanding
            outstanding = None
            results[i] = future.result()
            if on_done is not None:
                on_done(results[i])

    raised: list[Exception] = []

    def heard(stage: str, done: int, total: int) -> None:
        if outstanding is not None and outstanding[1].done() and threading.get_ident() == here:
            try:
                settle()
            except Exception as exc:  # on_done's own error: raised after this item, not as the item's failure
                raised.append(exc)
        if progress is not None:
            progress(stage, done, total)

    try:
        for i, item in enumerate(items):
            if on_start is not None:
                on_start(i, len(items), names[i])
            result = call(item, heard)
            if raised:
                raise raised[0]
            settle()
            if isinstance(result, Future):
                outstanding = (i, result)
                continue
            results[i] = result
            if on_done is not None:
                on_done(result)
        settle()
    finally:
        if outstanding is not None:  # interrupted: the outstanding work still ends as it would have
            outstanding[1].exception()
    return results


def map_scans(
    call: Callable[[Any, ProgressFn | None], Any],
    items: Sequence[Any],
    names: Sequence[str],
    *,
    jobs: int | None = None,
    on_start: Callable[[int, int, str], None] | None = None,
    on_done: Callable[[Any], None] | None = None,
    on_lost: Callable[[Any, BaseException], Any] | None = None,
    progress: ProgressFn | None = None,
    always_tasks: bool = False,
) -> list[Any]:
    """``call(item, progress)`` for every item, one whole scan per call; results in the items' order.

    Locally (no client) the scans run one after another and ``call`` fans its own chunk tasks out to
    threads. With a client every scan is a task of its own, at most ``jobs`` in flight (default:
    :func:`default_jobs`, one per worker thread within the workers' memory), so many small scans keep
    every worker busy; each scan's chunk tasks run on the worker that holds it. ``progress`` then hears
    each stage summed over the scans running;
    a scan whose worker died comes back as ``on_lost(item, error)``. A single scan runs here and
    spreads its chunks over the workers instead, unless ``always_tasks`` (scans staged on a worker's
    own disk must be processed whole where they are staged).
    """
    client = active_client()
    results: list[Any] = [None] * len(items)
    if client is None or len(items) < 2 and jobs is None and not always_tasks:
        return _map_here(call, items, names, results, on_start, on_done, progress)
    from distributed import as_completed

    limit = max(1, jobs or default_jobs(client))
    threads = max(1, _total_threads(client) // max(1, len(client.scheduler_info(n_workers=-1)["workers"])))
    keys = [f"orpam-scan-{i}-{names[i]}" for i in range(len(items))]
    stages: dict[str, dict[str, tuple[int, int]]] = {}
    guard = threading.Lock()

    def heard(event: Any) -> None:
        message = event[1] if isinstance(event, tuple) and len(event) == 2 else event
        key, stage, done, total = message
        with guard:
            stages.setdefault(stage, {})[key] = (done, total)
            summed = stages[stage].values()
            if progress is not None:
                progress(stage, sum(d for d, _ in summed), sum(t for _, t in summed))

    if progress is not None:
        client.subscribe_topic(PROGRESS_TOPIC, heard)
    if on_start is not None:
        on_start(0, len(items), f"{len(items)} scans on {limit} slots")
    pending = iter(range(len(items)))
    index_of: dict[Any, int] = {}

    def submit() -> Any | None:
        i = next(pending, None)
        if i is None:
            return None
        future = client.submit(_scan_task, call, items[i], keys[i], threads, key=keys[i], pure=False)
        index_of[future] = i
        return future

    running = as_completed([f for f in (submit() for _ in range(limit)) if f is not None])
    try:
        for future in running:
            i = index_of.pop(future)
            try:
                results[i] = future.result()
            except Exception as exc:  # the worker died or the task could not run: that scan fails alone
                if on_lost is None:
                    raise
                results[i] = on_lost(items[i], exc)
            if on_done is not None:
                on_done(results[i])
            nxt = submit()
            if nxt is not None:
                running.add(nxt)
        return results
    except BaseException:
        client.cancel(list(index_of))
        raise
    finally:
        if progress is not None:
            client.unsubscribe_topic(PROGRESS_TOPIC)
