"""Resume rules: strays of killed writers are cleaned, reruns say what they did, different parameters are refused,
another chunking is no different parameter."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.io import open_scan
from orpam_pipeline.pipeline import RunOptions, process_scan
from orpam_pipeline.register import engine
from orpam_pipeline.store.ingest import ingest, write_threads
from orpam_pipeline.store.resume import ChunkMarkers, fingerprint, state_root
from orpam_pipeline.store.status import scan_status
from tests.reliability.conftest import assert_same_arrays, read_arrays

runner = CliRunner()


def _invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_strays_are_cleaned_and_reruns_continue_skip_or_refuse(tmp_path, small_sim):
    src = tmp_path / "s.npy"
    np.save(src, small_sim.frames[:6])
    out = tmp_path / "out"
    res = _invoke("ingest", src, out, "--chunk-frames", 2)
    assert res.exit_code == 0 and "already complete" not in res.output
    store = out / "s" / "scan.zarr"
    strays = [
        out / "s" / ".scan.zarr.partial-999999",
        out / "s" / ".report.json.partial-999999",
        store / "frames" / "0" / "c" / "0" / "0" / ("0." + "ab" * 16 + ".partial"),
        state_root(store) / "register" / ".measure.npy.partial-999999",
    ]
    for stray in strays:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"left by a killed process")
    res = _invoke("ingest", src, out, "--chunk-frames", 2)
    assert res.exit_code == 0 and "already complete" in res.output, res.output
    assert not any(p.exists() for p in strays)

    res = _invoke("ingest", src, out, "--chunk-frames", 3)  # chunking is no parameter: the store keeps its own
    assert res.exit_code == 0 and "already complete" in res.output, res.output
    assert zarr.open_group(store, mode="r")["frames/0"].chunks[0] == 2

    assert _invoke("register", out / "s", "--method", "phase").exit_code == 0
    res = _invoke("register", out / "s", "--method", "phase")
    assert res.exit_code == 0 and "already registered with phase" in res.output
    res = _invoke("register", out / "s", "--method", "none")
    assert res.exit_code == 1 and "method phase -> none" in res.output and "--overwrite" in res.output
    res = _invoke("register", out / "s", "--method", "none", "--overwrite")
    assert res.exit_code == 0 and "registered with none" in res.output

    res = _invoke("run", src, out, "--method", "none", "--chunk-frames", 2)
    assert res.exit_code == 0 and "(continued)" in res.output  # only the report was missing
    res = _invoke("run", src, out, "--method", "none", "--chunk-frames", 2)
    assert res.exit_code == 0 and "already complete, skipped" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.npy"]


def _interrupted_ingest(src: Path, out: Path, chunk: int, after: int) -> int:
    """Ingest ``src`` and stop it (as Ctrl-C would) once ``after`` chunks are written; the chunks marked done
    (writes already under way when it stopped finish too)."""

    def stop(done: int, total: int) -> None:
        if done == after:
            raise KeyboardInterrupt

    with open_scan(src) as source, pytest.raises(KeyboardInterrupt):
        ingest(source, out, chunk_frames=chunk, progress=stop)
    done = ChunkMarkers(next(out.glob("*/scan.zarr")), "ingest").count()
    assert after <= done < after + 1 + write_threads()
    return done


def test_other_chunking_continues_a_partial_registration_and_skips_a_complete_scan(tmp_path, small_sim, monkeypatch):
    src = tmp_path / "s.npy"
    np.save(src, small_sim.frames[:12])
    assert process_scan(src, tmp_path / "ref", RunOptions(method="phase", chunk_frames=2)).ok
    want = read_arrays(tmp_path / "ref" / "s" / "scan.zarr")

    real_write = engine.write_image
    guard, writes = threading.Lock(), {"n": 0}

    def full_disk(levels, start, stop, data):
        with guard:
            writes["n"] += 1
            if writes["n"] > 6:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_write(levels, start, stop, data)

    out = tmp_path / "out"
    monkeypatch.setattr(engine, "write_image", full_disk)
    failed = process_scan(src, out, RunOptions(method="phase", chunk_frames=2))
    assert not failed.ok and "No space left" in failed.error
    monkeypatch.setattr(engine, "write_image", real_write)
    store = out / "s" / "scan.zarr"
    assert scan_status(store)["stages"]["register"]["state"] == "partial"
    done = ChunkMarkers(store, "register").done()
    assert 0 < len(done) < 6, done

    again = process_scan(src, out, RunOptions(method="phase", chunk_frames=3))  # no --overwrite needed
    assert again.ok and again.status == "resumed", again.error
    assert zarr.open_group(store, mode="r")["merged/0"].chunks[0] == 2
    assert_same_arrays(read_arrays(store), want)
    skipped = process_scan(src, out, RunOptions(method="phase", chunk_frames=5))
    assert skipped.ok and skipped.status == "skipped"


def test_partial_ingest_with_other_chunking_restarts_and_ends_bit_identical(tmp_path, small_sim):
    src = tmp_path / "s.npy"
    np.save(src, small_sim.frames[:12])
    assert process_scan(src, tmp_path / "ref", RunOptions(method="phase", chunk_frames=2)).ok
    want = read_arrays(tmp_path / "ref" / "s" / "scan.zarr")

    out = tmp_path / "out"
    assert _interrupted_ingest(src, out, chunk=2, after=3) < 6
    store = out / "s" / "scan.zarr"
    with open_scan(src) as source:
        restarted = ingest(source, out, chunk_frames=5)
    assert restarted.state == "created" and restarted.chunks == restarted.chunks_written == 3
    group = zarr.open_group(store, mode="r")
    assert group["frames/0"].chunks[0] == 5 and group.attrs["stages"]["ingest"]["chunk_frames"] == 5
    assert process_scan(src, out, RunOptions(method="phase", chunk_frames=5)).ok
    assert_same_arrays(read_arrays(store), want)


def _legacy(record: dict, chunk: int) -> dict:
    """A stage record as written before chunking left the parameters: ``chunk_frames`` among them."""
    params = {**record["params"], "chunk_frames": chunk}
    old = {k: v for k, v in record.items() if k != "chunk_frames"}
    return {**old, "params": params, "fingerprint": fingerprint(params)}


def test_records_with_chunk_frames_among_the_parameters_are_the_same_parameters(tmp_path, small_sim):
    src = tmp_path / "s.npy"
    np.save(src, small_sim.frames[:6])
    out = tmp_path / "out"
    assert process_scan(src, out, RunOptions(method="none", chunk_frames=2)).ok
    store = out / "s" / "scan.zarr"
    group = zarr.open_group(store, mode="r+")
    stages = dict(group.attrs["stages"])
    stages["ingest"] = _legacy(stages["ingest"], 2)
    stages["register"] = _legacy({**stages["register"], "params": {**stages["register"]["params"],
                                  "ingest": stages["ingest"]["fingerprint"]}}, 2)  # fmt: skip
    stages["report"] = {**stages["report"], "fingerprint": fingerprint({"register": stages["register"]["fingerprint"]})}
    group.attrs["stages"] = stages

    for chunk in (2, 3):
        again = process_scan(src, out, RunOptions(method="none", chunk_frames=chunk))
        assert again.ok and again.status == "skipped", (chunk, again.error)
    other = process_scan(src, out, RunOptions(method="copy-odd"))
    assert not other.ok and "parameters (method none -> copy-odd);" in other.error, other.error

    legacy_out = tmp_path / "legacy-partial"
    done = _interrupted_ingest(src, legacy_out, chunk=2, after=1)
    partial = zarr.open_group(legacy_out / "s" / "scan.zarr", mode="r+")
    partial.attrs["stages"] = {"ingest": _legacy(partial.attrs["stages"]["ingest"], 2)}
    with open_scan(src) as source:
        resumed = ingest(source, legacy_out, chunk_frames=2)
    assert resumed.state == "resumed" and resumed.chunks_written == 3 - done
    np.testing.assert_array_equal(zarr.open_group(legacy_out / "s" / "scan.zarr", mode="r")["frames/0"][:], small_sim.frames[:6])
