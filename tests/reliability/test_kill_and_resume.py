"""SIGKILL `orpam run` at seeded random points during ingest and registration; rerunning the same
command finishes the scan with arrays bit-identical to an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.store.lock import lock_path
from orpam_pipeline.store.resume import ChunkMarkers
from orpam_pipeline.store.status import scan_status, verify_outputs
from tests.reliability.conftest import RUN_ARGS, assert_same_arrays, orpam_process, read_arrays

runner = CliRunner()
N_CHUNKS = 30


def _run_in_process(src: Path, out: Path) -> str:
    res = runner.invoke(app, ["run", str(src), str(out), *RUN_ARGS], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def _start_and_kill(src: Path, out: Path, stage: str, at: int, timeout: float = 60.0) -> dict[str, str]:
    store = out / "scan" / "scan.zarr"
    markers = ChunkMarkers(store, stage)
    proc = orpam_process("run", src, out, *RUN_ARGS)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if markers.count() >= at:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.0005)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"not killed (rc {proc.returncode})"
    return {k: v["state"] for k, v in scan_status(store)["stages"].items()}


def test_sigkill_during_ingest_and_registration_then_rerun_is_bit_identical(tmp_path, long_scan):
    reference = tmp_path / "reference"
    _run_in_process(long_scan, reference)
    want = read_arrays(reference / "scan" / "scan.zarr")

    rng = random.Random(6)
    plan = [("ingest", rng.randint(1, 18)) for _ in range(3)] + [("register", rng.randint(1, 26)) for _ in range(2)]
    landed = []
    for i, (stage, at) in enumerate(plan):
        out = tmp_path / f"killed-{i}"
        states = _start_and_kill(long_scan, out, stage, at)
        assert states["register"] != "complete", f"kill {i} came too late: {states}"
        landed.append("ingest" if states["ingest"] != "complete" else "register")
        assert lock_path(out / "scan").exists(), "a SIGKILLed run cannot release its lock"
        assert "(continued)" in _run_in_process(long_scan, out)
        store = out / "scan" / "scan.zarr"
        assert_same_arrays(read_arrays(store), want)
        status = scan_status(store)
        assert all(s["state"] == "complete" for s in status["stages"].values()), status
        assert status["stages"]["register"]["chunks_done"] == N_CHUNKS and status["lock"] is None
        assert verify_outputs(out).ok
        assert not [p for p in out.rglob("*") if ".partial" in p.name], "strays of the killed run remain"
        assert zarr.open_group(store).attrs["registration"]["method"] == "phase"
    assert landed.count("ingest") >= 1 and landed.count("register") >= 1, landed
    assert sorted(p.name for p in long_scan.parent.iterdir()) == ["scan.npy"], "something was written beside the source"
