"""Batch behaviour: bad scans are reported in one line each and the good ones complete."""

import json

import h5py
import numpy as np
import pytest
import scipy.io

from orpam_pipeline.io import sha256_file
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.store.layout import STORE_NAME


def _truncate(path, keep=0.6):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture()
def messy_dir(tmp_path, small_sim):
    src = tmp_path / "scans"
    src.mkdir()
    good = small_sim.frames[:6]
    np.save(src / "good.npy", good)
    stack_yxt = np.ascontiguousarray(np.moveaxis(good, 0, -1)).astype(np.float64)
    scipy.io.savemat(src / "trunc_v5.mat", {"img": stack_yxt})
    _truncate(src / "trunc_v5.mat")
    with h5py.File(src / "trunc_v73.mat", "w", userblock_size=512) as f:
        f.create_dataset("img", data=np.transpose(stack_yxt))
    _truncate(src / "trunc_v73.mat")
    with h5py.File(src / "trunc.h5", "w") as f:
        f.create_dataset("frames", data=good)
    _truncate(src / "trunc.h5", 0.5)
    (src / "empty.npy").write_bytes(b"")
    np.save(src / "line.npy", np.arange(10.0))
    nan = good.copy()
    nan[2] = np.nan
    np.save(src / "nan_frame.npy", nan)
    (src / "notes.npy").write_text("this is not an array\n")
    mixed = src / "mixed"
    mixed.mkdir()
    for i in range(3):
        np.save(mixed / f"frame{i}.npy", good[i])
    np.save(mixed / "frame3.npy", good[3, :, :-2])
    return src


BAD = {
    "trunc_v5": "trunc_v5.mat",
    "trunc_v73": "trunc_v73.mat",
    "trunc": "trunc.h5",
    "empty": "empty.npy",
    "line": "line.npy",
    "nan_frame": "nan_frame.npy",
    "notes": "notes.npy",
    "mixed": "frame3.npy",
}


def test_bad_scans_fail_cleanly_and_the_good_one_completes(messy_dir, tmp_path):
    hashes = {p: sha256_file(p) for p in messy_dir.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    outcomes = {o.name: o for o in run_batch(messy_dir, out, RunOptions(method="phase"))}
    assert set(outcomes) == set(BAD) | {"good"}
    assert outcomes["good"].ok
    report = json.loads((out / "good" / "report.json").read_text())
    assert report["frames"] == 6 and report["ncc_mean"] > report["ncc_mean_unregistered"]
    for name, culprit in BAD.items():
        o = outcomes[name]
        assert not o.ok, name
        assert "\n" not in o.error and culprit in o.error, o.error
        assert "Traceback" not in o.error
        assert not (out / name / STORE_NAME).exists(), f"{name} left a store behind"
        assert not (out / name / "report.json").exists()
    assert {p: sha256_file(p) for p in hashes} == hashes, "inputs were modified"


def test_existing_store_is_skipped_when_complete_and_refused_when_different(tmp_path, small_sim):
    src = tmp_path / "s.npy"
    np.save(src, small_sim.frames[:4])
    out = tmp_path / "out"
    first = run_batch(src, out, RunOptions(method="none"))[0]
    assert first.ok and first.status == "processed"
    again = run_batch(src, out, RunOptions(method="none"))[0]
    assert again.ok and again.status == "skipped" and again.report["frames"] == 4
    different = run_batch(src, out, RunOptions(method="copy-odd"))[0]
    assert not different.ok and "different parameters" in different.error and "--overwrite" in different.error
    assert "method none -> copy-odd" in different.error and "\n" not in different.error
    replaced = run_batch(src, out, RunOptions(method="copy-odd", overwrite=True))[0]
    assert replaced.ok and replaced.status == "processed" and replaced.report["method"] == "copy-odd"


def test_empty_directory_is_a_clear_error(tmp_path):
    from orpam_pipeline.errors import ScanError

    (tmp_path / "nothing").mkdir()
    with pytest.raises(ScanError, match="no scan files"):
        run_batch(tmp_path / "nothing", tmp_path / "out", RunOptions())


@pytest.fixture()
def three_scans(tmp_path, small_sim):
    src = tmp_path / "scans"
    src.mkdir()
    for i, name in enumerate("abc"):
        np.save(src / f"{name}.npy", small_sim.frames[4 * i : 4 * i + 6])
    return src


def _comparable(report):
    return {k: v for k, v in report.items() if k not in ("store", "created")}


def test_the_next_scan_starts_while_the_report_of_one_is_written(three_scans, tmp_path, monkeypatch):
    """A batch hands each report to another thread and goes on: results equal those of one scan at a time."""
    import threading

    import orpam_pipeline.pipeline as pipeline

    started: dict[str, threading.Event] = {name: threading.Event() for name in "abc"}
    overlapped: dict[str, bool] = {}
    write_report = pipeline.write_report

    def waiting_report(store, figures, early=None):
        name = store.parent.name
        if name == "a":  # returns only once scan b has begun, which a batch without overlap never does
            overlapped[name] = started["b"].wait(timeout=60)
        return write_report(store, figures, early)

    monkeypatch.setattr(pipeline, "write_report", waiting_report)
    done: list[str] = []
    out = tmp_path / "out"
    outcomes = run_batch(three_scans, out, RunOptions(method="phase", figures="png"),
                         on_start=lambda i, n, name: started[name].set(), on_done=lambda o: done.append(o.name))
    assert overlapped == {"a": True}, "scan b began while scan a's report was being written"
    assert [o.name for o in outcomes] == done == ["a", "b", "c"], "results and on_done keep the scans' order"
    assert all(o.ok and o.status == "processed" for o in outcomes), [o.error for o in outcomes]
    assert not any((out / name / ".orpam.lock").exists() for name in "abc"), "every lock is released"
    monkeypatch.setattr(pipeline, "write_report", write_report)
    alone = tmp_path / "alone"
    for o in outcomes:
        single = pipeline.process_scan(three_scans / f"{o.name}.npy", alone, RunOptions(method="phase", figures="png"))
        assert _comparable(json.loads((out / o.name / "report.json").read_text())) == _comparable(
            json.loads((alone / o.name / "report.json").read_text()))
        assert _comparable(o.report) == _comparable(single.report)


def test_a_report_that_fails_on_its_thread_fails_its_scan_alone(three_scans, tmp_path, monkeypatch):
    import orpam_pipeline.pipeline as pipeline

    write_report = pipeline.write_report

    def failing(store, figures, early=None):
        if store.parent.name == "a":
            raise OSError("disk full")
        return write_report(store, figures, early)

    monkeypatch.setattr(pipeline, "write_report", failing)
    out = tmp_path / "out"
    a, b, c = run_batch(three_scans, out, RunOptions(method="none", figures="none"))
    assert not a.ok and a.status == "failed" and "a.npy" in a.error and "disk full" in a.error
    assert "\n" not in a.error
    assert b.ok and c.ok
    assert not (out / "a" / ".orpam.lock").exists()
    monkeypatch.setattr(pipeline, "write_report", write_report)
    again = run_batch(three_scans, out, RunOptions(method="none", figures="none"))
    assert [o.status for o in again] == ["resumed", "skipped", "skipped"], "the rerun writes only a's report"


def test_ctrl_c_during_the_next_scan_finishes_the_report_begun(three_scans, tmp_path, monkeypatch):
    """Interrupted while scan b is under way, the batch still ends scan a's report, and stops there."""
    import time

    import orpam_pipeline.pipeline as pipeline

    write_report = pipeline.write_report

    def slow_report(store, figures, early=None):
        time.sleep(0.5)  # still running when b is interrupted
        return write_report(store, figures, early)

    def interrupt(i, n, name):
        if name == "b":
            raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "write_report", slow_report)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_batch(three_scans, out, RunOptions(method="none", figures="png"), on_start=interrupt)
    report = json.loads((out / "a" / "report.json").read_text())
    assert report["frames"] == 6
    assert not (out / "a" / ".orpam.lock").exists()
    assert not (out / "b").exists() and not (out / "c").exists()
    rerun = run_batch(three_scans, out, RunOptions(method="none", figures="png"))
    assert [o.status for o in rerun] == ["skipped", "processed", "processed"]


def test_a_scan_is_reported_done_as_soon_as_its_report_is_written(three_scans, tmp_path, monkeypatch):
    """``on_done`` of a scan whose report ends while the next scan runs comes at that scan's next progress event."""
    import time

    import orpam_pipeline.pipeline as pipeline

    out = tmp_path / "out"
    ingest_scored = pipeline.ingest_scored

    def after_a(source, out_dir, options, progress=None):
        if source.name == "b":  # b's stages begin only once a's report is on disk
            deadline = time.monotonic() + 60
            while not (out / "a" / "report.json").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)
        return ingest_scored(source, out_dir, options, progress)

    monkeypatch.setattr(pipeline, "ingest_scored", after_a)
    events: list[str] = []
    outcomes = run_batch(three_scans, out, RunOptions(method="none", figures="none"),
                         on_start=lambda i, n, name: events.append(f"start {name}"),
                         progress=lambda stage, d, n: events.append(stage),
                         on_done=lambda o: events.append(f"done {o.name}"))  # fmt: skip
    assert all(o.ok for o in outcomes)
    b = events[events.index("start b") : events.index("start c")]
    assert "done a" in b and "register" in b[b.index("done a") :], events
    assert events.index("done b") < events.index("done c") and events[-1] == "done c"


def test_an_error_of_on_done_stops_the_batch_and_is_not_the_next_scans_failure(three_scans, tmp_path):
    def on_done(outcome):
        if outcome.name == "a":
            raise RuntimeError("the caller's own bug")

    with pytest.raises(RuntimeError, match="own bug"):
        run_batch(three_scans, tmp_path / "out", RunOptions(method="none", figures="none"), on_done=on_done)
    assert (tmp_path / "out" / "a" / "report.json").exists()
    assert not (tmp_path / "out" / "a" / ".orpam.lock").exists()
