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
