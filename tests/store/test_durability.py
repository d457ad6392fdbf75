"""Power-loss safety: data are flushed to the disk before the marker that vouches for them, records after."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.store import files
from orpam_pipeline.store.resume import state_root


def test_every_chunk_is_synced_before_its_marker_and_the_records_after(tmp_path, monkeypatch):
    np.save(tmp_path / "s.npy", np.random.default_rng(0).random((6, 32, 16), dtype=np.float32))
    out = tmp_path / "out"
    synced: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        marker_dir = None
        parts = path.relative_to(out).parts if path.is_relative_to(out) else ()
        if len(parts) >= 4 and parts[1] == "scan.zarr" and parts[3] == "c":
            stage = "ingest" if parts[2] == "frames" else "register"
            marker_dir = state_root(out / parts[0] / "scan.zarr") / stage / f"{int(parts[4])}.done"
        synced.append((str(path), marker_dir is not None and marker_dir.exists()))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", recording_fsync)
    [outcome] = run_batch(tmp_path / "s.npy", out, RunOptions(method="phase", chunk_frames=2))
    assert outcome.ok, outcome.error
    store = out / "s" / "scan.zarr"
    chunk_files = {str(p) for p in store.rglob("c/*/*") if p.is_file()} | {str(p) for p in store.rglob("c/*/*/*") if p.is_file()}
    synced_paths = {p for p, _ in synced}
    renamed = {str(_target(Path(p))) for p in synced_paths if files.OWN_PARTIAL.match(Path(p).name)}
    assert chunk_files and chunk_files <= synced_paths | renamed, chunk_files - synced_paths - renamed
    assert not [p for p, marker_first in synced if marker_first], "a marker existed before its chunk was synced"
    assert str(store / "zarr.json") in synced_paths
    assert any(Path(p).name.startswith(".report.json.partial-") for p in synced_paths)  # synced, then renamed
    assert str(out / "s") in synced_paths  # ... and the rename itself


def _target(partial: Path) -> Path:
    """The file an atomic write's temporary (``files.partial_path``) was renamed to."""
    return partial.with_name(partial.name[1:].rsplit(".partial-", 1)[0])


def test_durability_can_be_switched_off(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(files, "DURABLE", False)
    monkeypatch.setattr(files.os, "fsync", lambda fd: calls.append(fd))
    files.atomic_write(tmp_path / "a.txt", "x")
    files.sync_dir(tmp_path)
    assert calls == [] and (tmp_path / "a.txt").read_text() == "x"
