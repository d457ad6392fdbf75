"""Scale-out on dask.distributed: same stores as the threaded scheduler, small graphs, one model load per worker."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

import orpam_pipeline.register.engine as engine
from orpam_pipeline.cli.main import app
from orpam_pipeline.scheduling import compute_context, make_tasks, placement, run_tasks
from orpam_pipeline.register import get_method
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.register.pcregnet import runner_loads
from orpam_pipeline.simulate import SimulationParams, write_simulation
from orpam_pipeline.store.layout import get_array, has_array
from tests.conftest import make_store

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[2]
ARRAYS = ("frames", "registered_even", "merged", "displacement")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each, each advertising one (pretend) GPU."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, resources={"GPU": 1}
    ) as c:
        yield c


def threaded_reference(store: Path, method: str, **options) -> None:
    """Register ``store`` on the threaded scheduler in a fresh process with one OpenMP thread, as the
    workers run. In this test process, after other tests ran torch in dask's pool threads, float32
    results differed from the workers' in the last bit (thread setup), not because of the cluster."""
    code = (
        "from orpam_pipeline.register import get_method\n"
        "from orpam_pipeline.register.engine import register_store\n"
        f"register_store({str(store)!r}, get_method({method!r}, **{options!r}))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env)


def arrays(store: Path) -> dict[str, np.ndarray]:
    group = zarr.open_group(store, mode="r")
    return {k: get_array(group, k)[:] for k in ARRAYS if has_array(group, k)}


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def probe_resources(i: int) -> dict[str, float]:
    return dict(distributed.get_worker().state.available_resources)


def test_orpam_run_on_a_scheduler_equals_the_threaded_run(tmp_path, cluster):
    write_simulation(tmp_path / "sim", SimulationParams.randomised(5, frames=10, height=64, width=48))
    scans = tmp_path / "sim" / "scans"
    runner = CliRunner()
    common = ["--method", "phase", "--chunk-frames", "3"]
    res = runner.invoke(app, ["run", str(scans), str(tmp_path / "threads"), *common], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["run", str(scans), str(tmp_path / "dist"), *common, "--scheduler",
                              cluster.scheduler_address], catch_exceptions=False)  # fmt: skip
    assert res.exit_code == 0, res.output
    name = "sim-0005/scan.zarr"
    assert_same(arrays(tmp_path / "threads" / name), arrays(tmp_path / "dist" / name))
    record = zarr.open_group(tmp_path / "dist" / name).attrs["registration"]["compute"]
    assert record["mode"] == "distributed" and record["workers"] == 2


def test_pcregnet_on_the_cluster_loads_once_per_worker_and_keeps_the_graph_small(
    tmp_path, small_sim, cluster, monkeypatch
):
    frames = small_sim.frames[:6, :32, :40]
    method = get_method("pcregnet", device="cpu", precision="fp32")
    reference = make_store(tmp_path / "ref", frames, chunk_frames=2)
    threaded_reference(reference, "pcregnet", device="cpu", precision="fp32")

    captured: list = []

    def capturing(tasks, *args, **kwargs):
        captured.extend(tasks)
        return real(tasks, *args, **kwargs)

    real = engine.run_tasks
    monkeypatch.setattr(engine, "run_tasks", capturing)
    stores = [make_store(tmp_path / str(i), frames, chunk_frames=2) for i in range(2)]
    calls: list = []
    with compute_context(scheduler=cluster.scheduler_address) as client:
        before = client.run(runner_loads)
        for store in stores:
            register_store(store, get_method("pcregnet", device="cpu", precision="fp32"),
                           progress=lambda *a: calls.append(a))  # fmt: skip
        after = client.run(runner_loads)
    assert len(after) == 2
    assert {w: after[w] - before[w] for w in after} == {w: 1 for w in after}, (before, after)
    assert calls[-1] == ("register", 3, 3)
    assert len(pickle.dumps(method)) < 10_000
    assert captured and max(len(pickle.dumps(dict(t.__dask_graph__()))) for t in captured) < 10_000
    for store in stores:
        assert_same(arrays(reference), arrays(store))


def test_resource_annotations_reach_the_workers(cluster):
    with compute_context(scheduler=cluster.scheduler_address) as client:
        assert placement(client, {"GPU": 1}) == {"GPU": 1}
        assert placement(client, {"TPU": 1}) == {}
        done = []
        restricted = run_tasks(make_tasks(probe_resources, [(i,) for i in range(4)], "gpu", {"GPU": 1}), "s", "gpu",
                               lambda *a: done.append(a))  # fmt: skip
        free = run_tasks(make_tasks(probe_resources, [(i,) for i in range(4)], "free"), "s", "free")
    assert all(r == {"GPU": 0} for r in restricted) and all(r == {"GPU": 1} for r in free)
    assert done[-1] == ("s", 4, 4)


def test_local_mode_does_not_import_distributed(tmp_path, small_sim):
    store = make_store(tmp_path, small_sim.frames[:4])
    code = (
        "import sys\n"
        "from orpam_pipeline.scheduling import compute_context\n"
        "from orpam_pipeline.register import get_method\n"
        "from orpam_pipeline.register.engine import register_store\n"
        "with compute_context():\n"
        f"    register_store({str(store)!r}, get_method('phase'))\n"
        "assert 'distributed' not in sys.modules, 'distributed was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_scheduler_and_workers_together_are_refused():
    from orpam_pipeline.errors import OrpamError

    with pytest.raises(OrpamError, match="give one of"):
        with compute_context(scheduler="tcp://127.0.0.1:1", workers=2):
            pass


def test_a_batch_runs_scan_by_scan_on_the_workers_and_equals_the_serial_run(tmp_path, cluster):
    """Several scans: each is a task of its own (the workers run whole scans side by side); a broken
    file fails alone; the arrays equal a serial threaded run bit for bit."""
    from orpam_pipeline.options import RunOptions
    from orpam_pipeline.pipeline import run_batch

    for seed in (11, 12, 13):
        write_simulation(tmp_path / "sim", SimulationParams.randomised(seed, frames=6, height=48, width=40))
    scans = tmp_path / "sim" / "scans"
    (scans / "broken.npy").write_bytes(b"\x93NUMPY not really")
    options = RunOptions(method="phase", chunk_frames=2)
    serial = run_batch(scans, tmp_path / "serial", options)
    heard: list[tuple[str, int, int]] = []
    started: list[str] = []
    with compute_context(scheduler=cluster.scheduler_address):
        spread = run_batch(scans, tmp_path / "spread", options, progress=lambda *a: heard.append(a),
                           on_start=lambda i, n, name: started.append(name), jobs=2)  # fmt: skip
    assert [o.name for o in spread] == [o.name for o in serial]
    assert [o.ok for o in spread] == [False, True, True, True]
    assert "broken.npy" in spread[0].error
    for a, b in zip(serial[1:], spread[1:]):
        assert_same(arrays(a.store), arrays(b.store))
        record = zarr.open_group(b.store).attrs["registration"]["compute"]
        assert record["mode"] != "distributed", "a scan's chunks stay on the worker that holds the scan"
    assert started == ["4 scans on 2 slots"]
    assert {stage for stage, _, _ in heard} >= {"ingest", "register"}
    assert (tmp_path / "spread" / "index.html").exists() is False  # the page is the CLI's to write
