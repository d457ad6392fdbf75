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
