"""Figures drawn side by side in worker processes: the same bytes as on one thread, the plotting code imported
once and never by the caller, errors and dead workers handled, and a caller's script without a main guard
never run again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.report import figure_workers
from orpam_pipeline.report.figures import build_figures
from orpam_pipeline.report.scan_report import compute_report
from orpam_pipeline.jsonsafe import json_safe

def slow_pid(job: int, seconds: float) -> tuple[int, int]:
    time.sleep(seconds)
    return job, os.getpid()


def fails_in_worker(job: int, caller: int) -> int:
    if os.getpid() != caller:
        raise ValueError(f"job {job} cannot be drawn")
    return job


def dies_in_worker(job: int, caller: int) -> int:
    if os.getpid() != caller:
        os._exit(3)
    return job * 10


@pytest.fixture
def two_workers(monkeypatch):
    monkeypatch.setenv(figure_workers.ENV, "2")


def test_jobs_are_shared_with_workers_and_come_back_in_order(two_workers):
    out = figure_workers.draw_all(list(range(6)), slow_pid, 0.3)
    assert [job for job, _ in out] == list(range(6))
    pids = {pid for _, pid in out}
    assert os.getpid() not in pids and len(pids) == 2, "both workers drew, the calling thread did not"


def test_calls_from_two_threads_take_turns_and_each_gets_its_own_results(two_workers):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(figure_workers.draw_all, list(range(0, 6)), slow_pid, 0.1)
        second = pool.submit(figure_workers.draw_all, list(range(10, 16)), slow_pid, 0.1)
        assert [job for job, _ in first.result()] == list(range(0, 6))
        assert [job for job, _ in second.result()] == list(range(10, 16))


def test_a_job_goes_to_a_worker_no_other_call_is_using(two_workers):
    """A worker busy with another thread's job is taken only when no other is free, so a report's plots do not
    queue behind figures drawn early on one worker."""
    import threading

    other, busy = figure_workers.workers()  # the last one is the one taken first without the preference
    busy_pid = busy.pid
    started = threading.Event()

    def hold() -> None:
        with busy.lock:
            started.set()
            time.sleep(3.0)

    holder = threading.Thread(target=hold)
    holder.start()
    started.wait()
    t0 = time.perf_counter()
    [(_, pid)] = figure_workers.draw_all([1], slow_pid, 0.0)
    assert pid != busy_pid and pid == other.pid and time.perf_counter() - t0 < 2.0
    holder.join()


def matplotlib_module_id(job: int) -> int:
    return id(sys.modules["matplotlib"])


@pytest.mark.skipif(not figure_workers.FORKS, reason="workers are forked on Linux only")
def test_the_plotting_code_is_imported_once_and_never_by_the_caller(tmp_path):
    """The first worker imports matplotlib and forks the others: they hold the very same module objects."""
    script = (
        "import sys\n"
        "from orpam_pipeline.report.figure_workers import draw_all, workers\n"
        "from tests.report.test_figure_workers import matplotlib_module_id\n"
        "ids = draw_all(list(range(6)), matplotlib_module_id)\n"
        "print(len(workers()), len(set(ids)), 'matplotlib' in sys.modules)\n"
    )
    env = {**os.environ, figure_workers.ENV: "3", "PYTHONPATH": str(Path(__file__).parents[2])}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["3", "1", "False"]


def test_a_report_drawn_by_workers_is_the_same_bytes_as_on_one_thread(runs, monkeypatch, tmp_path):
    report, data = compute_report(runs["truth"].store)
    report = json_safe(report)
    monkeypatch.setenv(figure_workers.ENV, "0")
    alone = build_figures(report, data, tmp_path / "alone")
    monkeypatch.setenv(figure_workers.ENV, "3")
    shared = build_figures(report, data, tmp_path / "shared")
    assert [f.name for f in shared] == [f.name for f in alone] == ["frames", "crop", "displacement", "truth",
                                                                   "metrics_per_frame"]
    for a, b in zip(alone, shared):
        assert a.png == b.png and a.svg == b.svg, a.name
        assert b.png_path.read_bytes() == b.png and b.png_path.parent == tmp_path / "shared"


def niceness(job: int) -> int:
    return os.nice(0)


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no process priorities here")
def test_workers_run_below_the_caller(two_workers):
    """Their imports and drawing take the cores only where the pipeline leaves them idle."""
    assert set(figure_workers.draw_all([1, 2, 3, 4], niceness)) == {min(19, os.nice(0) + figure_workers.NICENESS)}


def test_an_error_in_a_worker_is_raised_to_the_caller(two_workers):
    with pytest.raises(ValueError, match="cannot be drawn"):
        figure_workers.draw_all([1, 2, 3, 4], fails_in_worker, os.getpid())


def test_jobs_of_a_worker_that_dies_are_drawn_by_the_caller(two_workers):
    before = {w.pid for w in figure_workers.workers()}
    assert figure_workers.draw_all([1, 2, 3, 4], dies_in_worker, os.getpid()) == [10, 20, 30, 40]
    assert not before & {w.pid for w in figure_workers.workers()}, "the workers died and were replaced"
    assert figure_workers.draw_all([5, 6], slow_pid, 0.0)[0][0] == 5, "dead workers are replaced"


def test_no_workers_when_asked_or_on_one_core(monkeypatch):
    monkeypatch.setenv(figure_workers.ENV, "0")
    assert figure_workers.workers() == []
    assert {pid for _, pid in figure_workers.draw_all([1, 2, 3], slow_pid, 0.0)} == {os.getpid()}
    monkeypatch.delenv(figure_workers.ENV)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert figure_workers.worker_count() == 0
    monkeypatch.setenv(figure_workers.ENV, "two")
    with pytest.raises(OrpamError, match="ORPAM_FIGURE_WORKERS must be a whole number"):
        figure_workers.worker_count()


def test_jobs_start_in_the_order_given_and_come_back_in_theirs(monkeypatch):
    monkeypatch.setenv(figure_workers.ENV, "0")
    started: list[int] = []
    assert figure_workers.draw_all([10, 20, 30], lambda job: started.append(job) or job, order=[2, 0, 1]) == [10, 20, 30]
    assert started == [30, 10, 20]
    with pytest.raises(ValueError, match="order must name every job once"):
        figure_workers.draw_all([1, 2], slow_pid, 0.0, order=[0, 0])


def test_the_longest_figures_start_first(runs, monkeypatch, tmp_path):
    """The longest figure is handed out first and the next longest to the next free drawer, so no drawer is left
    with the longest figure after the others are done."""
    from orpam_pipeline.report import figures

    report, data = compute_report(runs["truth"].store)
    started: list[str] = []
    monkeypatch.setenv(figure_workers.ENV, "0")
    monkeypatch.setattr(figures, "draw_job", lambda job, folder, svg: started.append(job.name))
    build_figures(json_safe(report), data, tmp_path)
    assert started == ["truth", "frames", "metrics_per_frame", "displacement", "crop"]


def test_a_script_without_a_main_guard_runs_once(tmp_path):
    """multiprocessing's spawn and forkserver would import the caller's script again in every worker."""
    log = tmp_path / "ran.txt"
    script = tmp_path / "unguarded.py"
    script.write_text(
        f"open({str(log)!r}, 'a').write('ran\\n')\n"
        "from orpam_pipeline.report.figure_workers import draw_all\n"
        "from tests.report.test_figure_workers import slow_pid\n"
        "print(len({pid for _, pid in draw_all(list(range(4)), slow_pid, 0.3)}))\n"
    )
    env = {**os.environ, figure_workers.ENV: "2", "PYTHONPATH": str(Path(__file__).parents[2])}
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert log.read_text() == "ran\n"
    assert int(res.stdout) >= 2, "workers drew some of the jobs"


def test_a_dask_worker_draws_on_its_own_thread(monkeypatch):
    """A cluster already spreads whole scans over the cores: no figure workers per dask worker."""
    from distributed import Client, LocalCluster

    monkeypatch.delenv(figure_workers.ENV, raising=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            assert client.submit(figure_workers.worker_count).result() == 0
    cores = len(os.sched_getaffinity(0))
    assert figure_workers.worker_count() == (0 if cores < 2 else min(figure_workers.MAX_WORKERS, cores))


def test_ctrl_c_is_left_to_the_parent(two_workers):
    """Ctrl-C reaches the whole process group: a worker must not print a traceback and die mid-report."""
    import signal

    for worker in figure_workers.workers():  # the first, started afresh, and a forked one
        assert worker.call(slow_pid, 6, (0.0,)) == (6, worker.pid)  # up and past its imports
        os.kill(worker.pid, signal.SIGINT)
        time.sleep(0.3)
        assert worker.alive()
        assert worker.call(slow_pid, 7, (0.0,)) == (7, worker.pid)
