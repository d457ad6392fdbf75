"""``orpam run`` from and to s3:// against a real S3 API (moto's server): same arrays as a local run, a
kill and a resume, verify, the lease lock, skips and refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.remote.lock import RemoteLockBusy, check_held, LockLost, lock_url, read_remote_lock, remote_lock
from orpam_pipeline.remote.sync import MANIFEST, read_manifest
from orpam_pipeline.remote.verify import verify_remote
from orpam_pipeline.simulate import SimulationParams, write_simulation
from orpam_pipeline.store.layout import get_array, store_arrays

REPO = Path(__file__).resolve().parents[2]


def remote_arrays(url: str, options: dict) -> dict[str, np.ndarray]:
    """Every array of a store read in place through zarr's fsspec store."""
    group = zarr.open_group(zarr.storage.FsspecStore.from_url(url, storage_options=options, read_only=True), mode="r")
    return {name: get_array(group, name)[:] for name in store_arrays(group)}


def local_arrays(store: Path) -> dict[str, np.ndarray]:
    group = zarr.open_group(store, mode="r")
    return {name: get_array(group, name)[:] for name in store_arrays(group)}


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys() and a
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def simulate(tmp_path: Path, seeds=(3, 4), frames: int = 8) -> Path:
    for seed in seeds:
        write_simulation(tmp_path / "sim", SimulationParams.randomised(seed, frames=frames, height=64, width=48))
    return tmp_path / "sim" / "scans"


def test_s3_to_s3_equals_a_local_run_and_verifies(tmp_path, s3):
    fs, bucket, options = s3
    scans = simulate(tmp_path)
    fs.put(str(scans), f"{bucket}/in", recursive=True)
    opts = RunOptions(method="phase", chunk_frames=3)
    local = run_batch(scans, tmp_path / "local", opts)
    endpoint = options["client_kwargs"]["endpoint_url"]
    result = CliRunner().invoke(app, ["run", f"s3://{bucket}/in", f"s3://{bucket}/out", "--method", "phase",
                                      "--chunk-frames", "3", "--workers", "2", "--json",
                                      "-S", f"client_kwargs.endpoint_url={endpoint}"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["index_html"] == f"s3://{bucket}/out/index.html" and fs.exists(f"{bucket}/out/index.html")
    assert endpoint not in result.output and "testing" not in result.output  # options are never printed
    remote = summary["scans"]
    for lo, ro in zip(local, remote):
        assert ro["store"] == f"s3://{bucket}/out/{lo.name}/scan.zarr" and ro["status"] == "processed"
        assert_same(local_arrays(lo.store), remote_arrays(ro["store"], options))
        group = zarr.open_group(zarr.storage.FsspecStore.from_url(ro["store"], storage_options=options,
                                                                  read_only=True), mode="r")  # fmt: skip
        assert group.attrs["source"]["files"][0]["path"] == f"s3://{bucket}/in/{lo.name}.npy"
        assert fs.exists(f"{bucket}/out/{lo.name}/report.html") and not fs.exists(lock_url(f"{bucket}/out/{lo.name}"))
    assert not any((tmp_path / "cache").rglob("*.npy")), "staged sources are deleted after the upload"
    checked = verify_remote(f"s3://{bucket}/out", options)
    assert checked.ok, checked.problems
    assert checked.stores == 2 and checked.source_files == 2 and checked.chunks > 0
    again = run_batch(f"s3://{bucket}/in", f"s3://{bucket}/out", opts, storage_options=options)
    assert [o.status for o in again] == ["skipped", "skipped"]
    assert again[0].report["ncc_mean"] == remote[0]["report"]["ncc_mean"]


def test_verify_finds_a_changed_object_an_incomplete_upload_and_a_changed_source(tmp_path, s3):
    fs, bucket, options = s3
    scans = simulate(tmp_path, seeds=(5,))
    fs.put(str(scans), f"{bucket}/in", recursive=True)
    run_batch(f"s3://{bucket}/in", f"s3://{bucket}/out", RunOptions(method="phase"), storage_options=options)
    folder = f"{bucket}/out/sim-0005"
    chunk = next(p for p in fs.find(f"{folder}/scan.zarr/merged") if "/c/" in p)
    fs.pipe_file(chunk, b"\x00" + fs.cat_file(chunk)[1:])
    problems = verify_remote(f"s3://{bucket}/out", options).problems
    assert any("merged" in p and "sha256 differs from the manifest" in p for p in problems), problems
    fs.pipe_file(f"{bucket}/in/sim-0005.npy", fs.cat_file(f"{bucket}/in/sim-0005.npy") + b"\x00")
    problems = verify_remote(f"s3://{bucket}/out", options).problems
    assert any(f"source s3://{bucket}/in/sim-0005.npy changed" in p for p in problems), problems
    fs.rm_file(f"{folder}/{MANIFEST}")
    problems = verify_remote(f"s3://{bucket}/out", options).problems
    assert problems == [f"s3://{folder}: upload incomplete (no {MANIFEST}); rerun the same command to finish it"]


def test_other_parameters_are_refused_without_overwrite(tmp_path, s3):
    fs, bucket, options = s3
    scans = simulate(tmp_path, seeds=(6,))
    run_batch(scans, f"s3://{bucket}/out", RunOptions(method="phase"), storage_options=options)
    refused = run_batch(scans, f"s3://{bucket}/out", RunOptions(method="none"), storage_options=options)[0]
    assert not refused.ok and "made with other parameters" in refused.error and f"s3://{bucket}/out/sim-0006" in refused.error
    replaced = run_batch(scans, f"s3://{bucket}/out", RunOptions(method="none", overwrite=True), storage_options=options)[0]
    assert replaced.ok and read_manifest(fs, f"{bucket}/out/sim-0006") is not None


def test_the_lease_lock_admits_one_writer_and_expires(s3):
    fs, bucket, _ = s3
    folder = f"{bucket}/out/scan"
    with remote_lock(fs, folder, lease_s=30) as held:
        with pytest.raises(RemoteLockBusy, match="being written by another orpam process"):
            with remote_lock(fs, folder, url=f"s3://{folder}"):
                pass
        check_held(held, fs, folder, f"s3://{folder}")
    assert read_remote_lock(fs, folder) is None
    with remote_lock(fs, folder, lease_s=30) as stalled:
        record = read_remote_lock(fs, folder)
        record["expires"] = time.time() - 1  # this writer stalled past its lease
        fs.pipe_file(lock_url(folder), json.dumps(record).encode())
        with remote_lock(fs, folder, lease_s=30) as taker:
            assert read_remote_lock(fs, folder)["token"] == taker.token
            with pytest.raises(LockLost, match="taken over"):
                check_held(stalled, fs, folder, f"s3://{folder}")
        assert read_remote_lock(fs, folder) is None
    assert read_remote_lock(fs, folder) is None


@pytest.mark.slow
def test_a_killed_s3_run_resumes_and_ends_equal_to_a_local_run(tmp_path, s3, s3_server):
    fs, bucket, options = s3
    write_simulation(tmp_path / "sim", SimulationParams.randomised(8, frames=400, height=128, width=96))
    scans = tmp_path / "sim" / "scans"
    fs.put(str(scans), f"{bucket}/in", recursive=True)
    env = {**os.environ, **s3_server[1], "ORPAM_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "orpam_pipeline.cli", "run", f"s3://{bucket}/in", f"s3://{bucket}/out",
           "--method", "phase", "--chunk-frames", "10", "--json"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    markers = tmp_path / "cache"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(markers.rglob("register/*.done"))) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_manifest(fs, f"{bucket}/out/sim-0008") is None, "an interrupted scan must not look complete"
    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert '"status": "resumed"' in rerun.stdout
    run_batch(scans, tmp_path / "local", RunOptions(method="phase", chunk_frames=10))
    assert_same(local_arrays(tmp_path / "local" / "sim-0008" / "scan.zarr"),
                remote_arrays(f"s3://{bucket}/out/sim-0008/scan.zarr", options))
    result = CliRunner().invoke(app, ["verify", f"s3://{bucket}/out", "--json"])
    assert result.exit_code == 0, result.output


def test_a_batch_workflow_reads_and_writes_s3(tmp_path, s3):
    from orpam_pipeline.workflow import load_workflow, run_workflow

    fs, bucket, _ = s3
    scans = simulate(tmp_path, seeds=(9,))
    fs.put(str(scans), f"{bucket}/in", recursive=True)
    file = tmp_path / "wf.toml"
    file.write_text(f'[workflow]\nkind = "batch"\n[inputs]\nscans = ["s3://{bucket}/in"]\n'
                    f'[output]\ndir = "s3://{bucket}/wf"\n[method]\nname = "phase"\n')  # fmt: skip
    result = run_workflow(load_workflow(file))
    assert [o.ok for o in result.outcomes] == [True]
    record = json.loads(fs.cat_file(f"{bucket}/wf/workflow.json"))
    assert record["finished"] and record["outputs"]["scans"][0]["name"] == "sim-0009"
    assert read_manifest(fs, f"{bucket}/wf/sim-0009") is not None
