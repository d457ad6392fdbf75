"""A full disk mid-registration leaves the store resumable; a frame too large for memory is refused up front."""

from __future__ import annotations

import errno
import pathlib
import sys
import threading

import numpy as np
import pytest
import zarr
import zarr.storage

from orpam_pipeline.errors import StoreError
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import process_scan
from orpam_pipeline.register import get_method
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.store.layout import get_array, open_scan_store, stage_complete
from orpam_pipeline.store.resume import ChunkMarkers
from tests.conftest import make_store
from tests.reliability.conftest import assert_same_arrays, read_arrays

OUTPUTS = ("registered_even/0/c/", "merged/0/c/", "displacement/c/")


def test_disk_full_during_registration_leaves_a_resumable_store(tmp_path, small_sim, monkeypatch):
    frames = small_sim.frames
    reference = make_store(tmp_path / "ref", frames, chunk_frames=2)
    register_store(reference, get_method("phase"))
    store = make_store(tmp_path / "faulty", frames, chunk_frames=2)

    real_open = pathlib.Path.open
    guard = threading.Lock()
    writes = {"n": 0}

    def full_disk(self, mode="r", *args, **kwargs):
        """Chunk files of the registered arrays opened for writing (by zarr or by ``store.chunk_files``) fail
        after the 13th: the disk is full."""
        if "w" in mode and self.is_relative_to(store) and self.relative_to(store).as_posix().startswith(OUTPUTS):
            with guard:
                writes["n"] += 1
                fail = writes["n"] > 13
            if fail:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", full_disk)
    with pytest.raises(StoreError, match="No space left on device.*rerun to continue") as err:
        register_store(store, get_method("phase"))
    assert "\n" not in str(err.value)
    group = open_scan_store(store)
    assert not stage_complete(group, "register")
    done = ChunkMarkers(store, "register").done()
    assert 0 < len(done) <= 4 < 12, done  # 13 writes = 4 whole chunks (3 arrays each) and part of a fifth
    want = read_arrays(reference)
    for i in done:
        for name in ("registered_even", "merged", "displacement"):
            np.testing.assert_array_equal(get_array(group, name)[2 * i : 2 * i + 2], want[name][2 * i : 2 * i + 2])

    monkeypatch.setattr(pathlib.Path, "open", real_open)
    register_store(store, get_method("phase"))
    assert_same_arrays(read_arrays(store), want)
    assert stage_complete(zarr.open_group(store), "register")


def test_frame_too_large_for_memory_is_refused_before_reading(tmp_path, small_sim, monkeypatch):
    src = tmp_path / "big.npy"
    np.save(src, small_sim.frames[:3])
    monkeypatch.setattr("orpam_pipeline.memory.available_memory", lambda: 100_000)
    outcome = process_scan(src, tmp_path / "out", RunOptions(method="none"))
    assert not outcome.ok
    assert str(src) in outcome.error and "memory is available" in outcome.error and "\n" not in outcome.error
    assert not (tmp_path / "out" / "big" / "scan.zarr").exists()


def test_chunk_too_large_for_memory_is_refused(tmp_path, small_sim, monkeypatch):
    src = tmp_path / "s.npy"
    np.save(src, small_sim.frames[:8])
    frame = small_sim.frames[0].nbytes
    monkeypatch.setattr("orpam_pipeline.memory.available_memory", lambda: 8 * frame * 4)
    outcome = process_scan(src, tmp_path / "out", RunOptions(method="none", chunk_frames=8))
    assert not outcome.ok and "a chunk of 8 frames" in outcome.error, outcome.error
    assert process_scan(src, tmp_path / "out", RunOptions(method="none", chunk_frames=2)).ok


def _capped(env_extra: dict[str, str]) -> str:
    """What :func:`limit_malloc_arenas` returns in a fresh process with ``env_extra`` in its environment."""
    import os
    import subprocess

    code = "from orpam_pipeline.memory import limit_malloc_arenas\nprint(limit_malloc_arenas())\n"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env_extra
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas are a Linux matter")
def test_the_cli_caps_malloc_arenas_unless_the_user_set_them():
    assert _capped({}) == "True"
    assert _capped({"MALLOC_ARENA_MAX": "8"}) == "False"
