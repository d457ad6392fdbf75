"""The metrics of the frames as ingested are computed once per ingest and reused by every later report."""

from __future__ import annotations

import threading
import time

import numpy as np
import zarr

from orpam_pipeline.io import open_scan
from orpam_pipeline.register import get_method
from orpam_pipeline.register.engine import register
from orpam_pipeline.report import chunk_scores, scan_report
from orpam_pipeline.report.chunk_scores import UNREGISTERED_CACHE
from orpam_pipeline.report.scan_report import write_report
from orpam_pipeline.store.ingest import ingest

UNREGISTERED_KEYS = ("ncc_unregistered", "ssim_unregistered", "psnr_unregistered", "pair_ncc_unregistered",
                     "pair_ncc_odd")  # fmt: skip


def _store(tmp_path):
    rng = np.random.default_rng(5)
    np.save(tmp_path / "s.npy", rng.random((7, 40, 30), dtype=np.float32))
    with open_scan(tmp_path / "s.npy") as source:
        return ingest(source, tmp_path / "out", chunk_frames=3).store


def _spy(monkeypatch) -> list[bool]:
    """Records, for every report of a store, whether it scored the unregistered lines (read from the store)."""
    calls: list[bool] = []
    original = scan_report._score_store

    def spy(group, unregistered):
        calls.append(unregistered)
        return original(group, unregistered)

    monkeypatch.setattr(scan_report, "_score_store", spy)
    return calls


def _count_scorings(monkeypatch) -> list[int]:
    """Counts every chunk's intra-frame scoring (registered, and unregistered while not cached)."""
    count = [0]
    original = chunk_scores.intra_frame_metrics
    lock = threading.Lock()  # the ingest scorer scores chunks on several threads

    def spy(*args):
        with lock:
            count[0] += 1
        return original(*args)

    monkeypatch.setattr(chunk_scores, "intra_frame_metrics", spy)
    return count


def test_computed_once_then_reused_across_methods_with_the_same_numbers(tmp_path, monkeypatch):
    store = _store(tmp_path)
    calls, scored = _spy(monkeypatch), _count_scorings(monkeypatch)
    register(store, get_method("none"))
    assert scored == [3]  # 3 chunks, while they are in memory; `none`'s registered lines are the unregistered ones
    first = write_report(store)[0]
    cache = zarr.open_group(store, mode="r")[UNREGISTERED_CACHE]
    ingest_fp = zarr.open_group(store, mode="r").attrs["stages"]["ingest"]["fingerprint"]
    assert cache.attrs["ingest"] == ingest_fp and cache.shape == (7, 5)
    register(store, get_method("phase"), overwrite=True)
    assert scored == [6]  # registered only
    second = write_report(store)[0]
    assert calls == []  # both reports assembled the chunks' saved scores, reading nothing again
    third = write_report(store)[0]  # saved scores are gone after a report: read, registered lines only
    assert calls == [False] and scored == [9]
    for key in UNREGISTERED_KEYS:
        assert first["per_frame"][key] == second["per_frame"][key] == third["per_frame"][key]
    for key in ("ncc_mean_unregistered", "ssim_mean_unregistered", "tncc_unregistered", "tncc_odd", "tncg_unregistered"):
        assert first[key] == second[key] == third[key]
    assert {k: v for k, v in second.items() if k not in ("created", "warnings")} == {
        k: v for k, v in third.items() if k not in ("created", "warnings")}


def test_a_cache_of_other_frames_is_computed_again(tmp_path, monkeypatch):
    store = _store(tmp_path)
    register(store, get_method("none"))
    want = write_report(store)[0]
    group = zarr.open_group(store, mode="r+")
    group[UNREGISTERED_CACHE].attrs["ingest"] = "another ingest"
    group[UNREGISTERED_CACHE][...] = 0.0
    calls = _spy(monkeypatch)
    got = write_report(store)[0]
    assert calls == [True]
    assert {k: got["per_frame"][k] for k in UNREGISTERED_KEYS} == {k: want["per_frame"][k] for k in UNREGISTERED_KEYS}
    assert zarr.open_group(store, mode="r")[UNREGISTERED_CACHE].attrs["ingest"] != "another ingest"


def _scan(tmp_path, frames=9):
    rng = np.random.default_rng(6)
    src = tmp_path / "in"
    src.mkdir()
    np.save(src / "s.npy", (100.0 * rng.random((frames, 40, 30))).astype(np.uint16))  # stored as float32
    return src


def _report_without_cache(store):
    """The report of ``store`` scored from the store itself, as before ingest kept any scores."""
    group = zarr.open_group(store, mode="r+")
    del group[UNREGISTERED_CACHE]
    chunk_scores.clear_scores(store)
    return write_report(store)[0]


def _numbers(report):
    return {k: v for k, v in report.items() if k not in ("created", "warnings", "store")}


def test_a_run_scores_the_frames_as_ingested_while_it_ingests_them(tmp_path, monkeypatch):
    from orpam_pipeline.options import RunOptions
    from orpam_pipeline.pipeline import run_batch

    src = _scan(tmp_path)
    scored = _count_scorings(monkeypatch)
    outcome = run_batch(src, tmp_path / "out", RunOptions(method="none", chunk_frames=4))[0]
    assert outcome.ok, outcome.error
    assert scored == [3]  # 3 chunks scored once, at ingest; `none`'s register pass reused them
    cache = zarr.open_group(outcome.store, mode="r")[UNREGISTERED_CACHE]
    assert cache.shape == (9, 5)
    assert _numbers(_report_without_cache(outcome.store)) == _numbers(outcome.report)

    scored[0] = 0
    outcome = run_batch(src, tmp_path / "out-phase", RunOptions(method="phase", chunk_frames=4))[0]
    assert scored == [6]  # 3 at ingest, 3 registered chunks; none of the unregistered ones again
    assert _numbers(_report_without_cache(outcome.store)) == _numbers(outcome.report)


def test_the_ingest_scorer_keeps_nothing_unless_it_scored_every_chunk_in_order(tmp_path, monkeypatch):
    store = _store(tmp_path)  # 7 frames in chunks of 3
    frames = np.asarray(zarr.open_group(store, mode="r")["frames/0"][...])
    chunks = [frames[a : a + 3] for a in range(0, 7, 3)]

    def cached():
        return UNREGISTERED_CACHE in zarr.open_group(store, mode="r")

    with chunk_scores.IngestScorer() as scorer:  # a resumed ingest writes the last chunks only
        scorer(1, chunks[1], "forward")
        scorer(2, chunks[2], "forward")
        assert not scorer.save(store, 3)
    with chunk_scores.IngestScorer() as scorer:  # an ingest that stopped early
        scorer(0, chunks[0], "forward")
        assert not scorer.save(store, 3)
    with monkeypatch.context() as m, chunk_scores.IngestScorer() as scorer:
        m.setattr(chunk_scores, "score_unregistered", lambda *a: 1 / 0)
        for i, c in enumerate(chunks):
            scorer(i, c, "forward")
        assert not scorer.save(store, 3)
    assert not cached()

    with chunk_scores.IngestScorer(ahead=1) as scorer:
        for i, c in enumerate(chunks):
            scorer(i, c, "forward")
        assert scorer.save(store, 3)
    kept = np.asarray(zarr.open_group(store, mode="r")[UNREGISTERED_CACHE][...])
    register(store, get_method("phase"))
    write_report(store)
    del zarr.open_group(store, mode="r+")[UNREGISTERED_CACHE]
    chunk_scores.clear_scores(store)
    write_report(store)  # scores the store and keeps the same table
    assert np.array_equal(np.asarray(zarr.open_group(store, mode="r")[UNREGISTERED_CACHE][...]), kept, equal_nan=True)


def test_scores_from_several_scorer_threads_are_the_same_in_frame_order(tmp_path, monkeypatch):
    """Chunks scored side by side, finishing out of order, keep the one-thread table bit for bit."""
    store = _store(tmp_path)  # 7 frames in chunks of 3
    frames = np.asarray(zarr.open_group(store, mode="r")["frames/0"][...])
    chunks = [frames[a : a + 3] for a in range(0, 7, 3)]
    tables = []
    for threads in (1, 3):
        with monkeypatch.context() as m:
            original = chunk_scores.score_unregistered

            def slow_first(block, first_line):  # the first chunk finishes last
                time.sleep(0.3 if threads > 1 and np.array_equal(block, chunks[0]) else 0.0)
                return original(block, first_line)

            m.setattr(chunk_scores, "score_unregistered", slow_first)
            with chunk_scores.IngestScorer(threads=threads) as scorer:
                for i, c in enumerate(chunks):
                    scorer(i, c, "forward")
                assert scorer.save(store, 3)
        tables.append(np.asarray(zarr.open_group(store, mode="r")[UNREGISTERED_CACHE][...]))
    assert np.array_equal(tables[0], tables[1], equal_nan=True)
