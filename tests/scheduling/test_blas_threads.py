"""Chunk tasks on local threads run BLAS on one thread each (no oversubscription), restored afterwards."""

from __future__ import annotations

import threading

from threadpoolctl import threadpool_info, threadpool_limits

from orpam_pipeline.scheduling import make_tasks, one_blas_thread, run_tasks


def _blas_threads() -> list[int]:
    return [int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_local_tasks_see_one_blas_thread_and_the_limit_is_restored():
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert before and max(before) == 2
        seen = run_tasks(make_tasks(_blas_threads, [()] * 4, "blas-probe"), "probe", "blas-probe")
        assert all(threads == [1] * len(before) for threads in seen)
        assert _blas_threads() == before


def test_a_run_ending_inside_another_keeps_the_limit():
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        seen: list[list[int]] = []

        def other_run() -> None:
            with one_blas_thread():
                seen.append(_blas_threads())

        with one_blas_thread():
            thread = threading.Thread(target=other_run)
            thread.start()
            thread.join(10)
            seen.append(_blas_threads())
        assert seen == [[1] * len(before)] * 2
        assert _blas_threads() == before
