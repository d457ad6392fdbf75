"""The report's metrics come from the register pass's saved chunk scores, or from the store with the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from orpam_pipeline.io import open_scan
from orpam_pipeline.register import get_method
from orpam_pipeline.register.engine import register
from orpam_pipeline.report.chunk_scores import scores_dir
from orpam_pipeline.report.scan_report import write_report
from orpam_pipeline.store.ingest import ingest
from orpam_pipeline.store.resume import state_root

IGNORED = ("created", "warnings")


def _registered(tmp_path, method: str):
    rng = np.random.default_rng(9)
    np.save(tmp_path / "s.npy", rng.random((8, 48, 30), dtype=np.float32))
    with open_scan(tmp_path / "s.npy") as source:
        store = ingest(source, tmp_path / "out", chunk_frames=3).store
    register(store, get_method(method))
    return store


def _numbers(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in IGNORED}


@pytest.mark.parametrize("damage", ["none", "missing", "garbage"])
@pytest.mark.parametrize("method", ["none", "phase"])
def test_saved_missing_or_damaged_scores_give_the_same_report(tmp_path, method, damage):
    store = _registered(tmp_path, method)
    folders = [p for p in state_root(store).iterdir() if p.name.startswith("scores-")]
    assert len(folders) == 1 and sorted(p.name for p in folders[0].iterdir()) == ["0.npz", "1.npz", "2.npz"]
    if damage == "missing":
        (folders[0] / "1.npz").unlink()
    elif damage == "garbage":
        (folders[0] / "2.npz").write_bytes(b"not a zip")
    got = write_report(store)[0]
    assert not folders[0].exists()  # removed once the report is written
    again = write_report(store)[0]  # no saved scores left: read from the store
    assert _numbers(got) == _numbers(again)


def test_scores_are_kept_per_registration(tmp_path):
    store = _registered(tmp_path, "none")
    register(store, get_method("copy-odd"), overwrite=True)
    names = [p.name for p in state_root(store).iterdir() if p.name.startswith("scores-")]
    assert len(names) == 1  # the earlier registration's scores went with it
    import zarr

    fp = zarr.open_group(store, mode="r").attrs["stages"]["register"]["fingerprint"]
    assert scores_dir(store, fp).name == names[0]


def test_the_checks_take_the_sampled_frames_the_register_stage_kept(tmp_path, monkeypatch):
    """The register stage keeps the checks' sampled frames with its chunk scores: they are the stored frames and
    merged frames bit for bit, the checks find the same from them as from the store, and the report's checks
    then read no frames; a score file without them sends the checks back to the store."""
    import zarr

    from orpam_pipeline.checks import frames as frame_checks
    from orpam_pipeline.checks import registration as registration_checks
    from orpam_pipeline.checks.frames import check_frames, sample_indices
    from orpam_pipeline.checks.registration import check_registration
    from orpam_pipeline.report.chunk_scores import ChunkScores, save_scores, saved_chunks, saved_samples
    from orpam_pipeline.simulate import SimulationParams, simulate

    frames = simulate(SimulationParams.randomised(41, frames=40, height=96, width=64)).frames
    np.save(tmp_path / "rows.npy", np.ascontiguousarray(frames.transpose(0, 2, 1)))  # lines stored as rows
    with open_scan(tmp_path / "rows.npy") as source:
        store = ingest(source, tmp_path / "out", chunk_frames=3).store
    register(store, get_method("phase"))
    group = zarr.open_group(store, mode="r")
    folder = scores_dir(store, group.attrs["stages"]["register"]["fingerprint"])
    paths = saved_chunks(folder, 14)
    samples = saved_samples(paths, 40)
    assert samples is not None
    kept = list(samples())
    indices = sample_indices(40)
    assert len(kept) == len(indices) == 16
    for (frame, merged), i in zip(kept, indices):
        np.testing.assert_array_equal(frame, group["frames/0"][i])
        np.testing.assert_array_equal(merged, group["merged/0"][i])
    found = check_frames(group, samples)
    assert found == check_frames(group) and [f.code for f in found] == ["lines-are-rows"]
    assert check_registration(group, samples) == check_registration(group)

    def no_reading(*_):
        raise AssertionError("a check read the store")

    with monkeypatch.context() as patch:
        patch.setattr(frame_checks, "sampled_frames", no_reading)
        patch.setattr(registration_checks, "sampled_frames", no_reading)
        report = write_report(store)[0]
    assert "lines-are-rows" in [w["code"] for w in report["warnings"]]

    register(store, get_method("copy-odd"), overwrite=True)
    paths = saved_chunks(scores_dir(store, zarr.open_group(store, mode="r").attrs["stages"]["register"]["fingerprint"]), 14)
    older = ChunkScores.from_file(paths[5])
    assert older.samples
    older.samples = {}  # as a score file of an earlier version
    save_scores(paths[5].parent, 5, older)
    assert saved_samples(paths, 40) is None
