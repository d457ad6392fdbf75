"""The metrics of the frames as ingested are computed once per ingest and reused by every later report."""

from __future__ import annotations

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

    def spy(*args):
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
