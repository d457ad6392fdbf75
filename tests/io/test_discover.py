"""Discovery groups frame directories naturally, names scans uniquely and skips what it cannot read."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orpam_pipeline.errors import ScanError
from orpam_pipeline.io import ScanEntry, discover_scans, natural_key, open_scan, sha256_file

from .conftest import write_h5, write_mat5, write_npy, write_tiff


def test_natural_key():
    names = ["frame10.npy", "frame2.npy", "Frame1.npy", "frame2b.npy", "frame002.npy"]
    assert sorted(names, key=natural_key) == ["Frame1.npy", "frame002.npy", "frame2.npy", "frame2b.npy", "frame10.npy"]


def _frames_dir(d, n=12, shape=(4, 5)):
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(n, *shape))
    for i in range(n):
        write_npy(d / f"frame{i + 1}.npy", frames[i])
    return frames


def test_frames_directory_natural_order(tmp_path):
    frames = _frames_dir(tmp_path / "run")
    (tmp_path / "run" / "notes.txt").write_text("hello")
    (tmp_path / "run" / ".hidden.npy").write_bytes(b"junk")
    entries = discover_scans(tmp_path / "run")
    assert len(entries) == 1
    entry = entries[0]
    assert entry.name == "run"
    assert [p.name for p in entry.paths] == [f"frame{i}.npy" for i in range(1, 13)]
    with open_scan(entry) as src:
        assert src.reader == "frames:npy" and src.shape == (12, 4, 5)
        assert src.source_shape == (12, 4, 5)
        np.testing.assert_array_equal(src.read(0, 12), frames.astype(np.float32))
        np.testing.assert_array_equal(src.read(9, 11), frames[9:11].astype(np.float32))
        assert len(src.provenance()["files"]) == 12
    with open_scan(tmp_path / "run") as src:
        assert src.shape == (12, 4, 5)


def test_recursive_tree_names_and_grouping(tmp_path):
    root = tmp_path / "lab"
    _frames_dir(root / "day1" / "mouseA", n=3)
    stack = np.zeros((3, 4, 5))
    write_npy(root / "day1" / "scan.npy", stack)
    write_tiff(root / "day1" / "scan.tif", stack.astype(np.float32))
    write_h5(root / "vol.h5", stack)
    write_npy(root / "top1.npy", stack[0])
    write_mat5(root / "top2.mat", stack[0])
    (root / ".git").mkdir()
    write_npy(root / ".git" / "x.npy", stack)
    (root / "readme.md").write_text("x")
    (root / "day1" / "broken.npy").write_text("not numpy")
    entries = {e.name: e for e in discover_scans(root)}
    assert set(entries) == {"lab", "vol", "day1_mouseA", "day1_scan-npy", "day1_scan-tif", "day1_broken"}
    assert [p.name for p in entries["lab"].paths] == ["top1.npy", "top2.mat"]
    assert len(entries["day1_mouseA"].paths) == 3
    with pytest.raises(ScanError, match="broken.npy"):
        open_scan(entries["day1_broken"])


def test_name_collision_dir_vs_file(tmp_path):
    root = tmp_path / "r"
    _frames_dir(root / "a", n=2)
    write_npy(root / "a.npy", np.zeros((2, 4, 5)))
    write_npy(root / "a_b.npy", np.zeros((2, 4, 5)))
    _frames_dir(root / "a" / "b", n=2)
    names = [e.name for e in discover_scans(root)]
    assert len(names) == len(set(names))
    assert {"a", "a-npy", "a_b", "a_b-npy"} == set(names)


def test_single_file_and_errors(tmp_path):
    p = write_npy(tmp_path / "one.npy", np.zeros((2, 3, 4)))
    assert discover_scans(p) == [ScanEntry("one", (p,))]
    with pytest.raises(ScanError, match="no such file"):
        discover_scans(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    with pytest.raises(ScanError, match=r"no scan files found \(supported: .npy"):
        discover_scans(empty)
    with pytest.raises(ScanError, match="unsupported file type"):
        discover_scans(empty / "a.txt")


def test_frames_shape_mismatch_names_the_file(tmp_path):
    d = tmp_path / "run"
    _frames_dir(d, n=3)
    write_npy(d / "frame10.npy", np.zeros((4, 6)))
    entry = discover_scans(d)[0]
    with pytest.raises(ScanError) as err:
        open_scan(entry)
    msg = str(err.value)
    assert "frame10.npy" in msg and "(4, 6)" in msg and "(4, 5)" in msg and "\n" not in msg


def test_frames_nan_names_frame_and_file(tmp_path):
    d = tmp_path / "run"
    frames = _frames_dir(d, n=4)
    bad = frames[2].copy()
    bad[0, :2] = [np.nan, np.inf]
    write_npy(d / "frame3.npy", bad)
    with open_scan(d) as src:
        src.read(0, 2)
        with pytest.raises(ScanError, match=r"frame3\.npy: frame 2: 2 non-finite values \(NaN/Inf\)"):
            src.read(1, 4)


def test_frames_read_only_touch_requested_files(tmp_path):
    d = tmp_path / "run"
    frames = _frames_dir(d, n=4)
    with open_scan(d) as src:
        os.remove(d / "frame2.npy")
        np.testing.assert_array_equal(src.read(2, 4), frames[2:].astype(np.float32))
        with pytest.raises(ScanError, match="frame2.npy"):
            src.read(1, 2)


def test_frames_mixed_formats(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    a = np.arange(20.0).reshape(4, 5)
    write_npy(d / "f1.npy", a)
    write_tiff(d / "f2.tif", (a + 1).astype(np.float32))
    write_mat5(d / "f3.mat", a + 2)
    hashes = {p: sha256_file(p) for p in d.iterdir()}
    with open_scan(d) as src:
        assert src.reader == "frames:mat-v5+npy+tiff"
        np.testing.assert_array_equal(src.read(0, 3), np.stack([a, a + 1, a + 2]).astype(np.float32))
    assert hashes == {p: sha256_file(p) for p in d.iterdir()}


def test_discover_with_variable_groups_container_frames(tmp_path):
    d = tmp_path / "mats"
    d.mkdir()
    a = np.arange(20.0).reshape(4, 5)
    for i in range(3):
        write_mat5(d / f"f{i}.mat", a + i, other=np.ones((3, 3)))
    assert len(discover_scans(d)) == 3
    entries = discover_scans(d, variable="img")
    assert [e.name for e in entries] == ["mats"]
    with open_scan(entries[0], variable="img") as src:
        assert src.reader == "frames:mat-v5" and src.variable == "img"
        np.testing.assert_array_equal(src.read(0, 3), np.stack([a, a + 1, a + 2]).astype(np.float32))


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=20, unique=True))
def test_natural_key_orders_numbers(numbers):
    names = [f"frame{n}.npy" for n in numbers]
    assert sorted(names, key=natural_key) == [f"frame{n}.npy" for n in sorted(numbers)]
