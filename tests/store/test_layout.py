"""Store helpers: atomic writes whose strays are cleaned, the scan-store test and the chunking of a stage."""

from __future__ import annotations

import os

import pytest

from orpam_pipeline.store.files import atomic_write, partial_path
from orpam_pipeline.store.layout import frames_per_chunk, is_store, open_scan_store
from orpam_pipeline.store.resume import clean_strays
from tests.conftest import make_store


def test_atomic_write_leaves_the_target_whole_or_absent_and_its_stray_is_cleaned(tmp_path, monkeypatch):
    target = tmp_path / "s" / "report.json"
    target.parent.mkdir()
    atomic_write(target, "é\r\n")
    assert target.read_bytes() == "é\r\n".encode()
    atomic_write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.raises(OSError):
        atomic_write(target, "new")
    assert target.read_bytes() == b"\x00\x01" and not partial_path(target).exists()
    monkeypatch.undo()

    stray = partial_path(target)
    stray.write_text("left by a killed writer")
    assert clean_strays(target.parent / "scan.zarr") == [stray] and not stray.exists()


def test_is_store_and_frames_per_chunk(tmp_path, small_sim):
    store = make_store(tmp_path, small_sim.frames[:5], chunk_frames=2)
    assert is_store(store) and is_store(store.parent) and not is_store(tmp_path) and not is_store(tmp_path / "nope")
    group = open_scan_store(store.parent)
    assert frames_per_chunk(group) == frames_per_chunk(group["frames/0"]) == 2
