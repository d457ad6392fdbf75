"""Cluster recipes: the [compute] cluster table, the managers it starts, and the shipped recipe files."""

from __future__ import annotations

from pathlib import Path

import pytest

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.scheduling import CLUSTER_KINDS, compute_context, make_cluster
from orpam_pipeline.workflow import load_workflow

RECIPES = Path(__file__).resolve().parents[2] / "workflows" / "clusters"


def test_unknown_kinds_and_missing_managers_are_one_line_errors(monkeypatch):
    with pytest.raises(OrpamError, match="cluster kind must be one of slurm, pbs"):
        make_cluster({"kind": "yarn"})
    import builtins

    real = builtins.__import__

    def no_gateway(name, *args, **kwargs):
        if name.startswith("dask_gateway"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gateway)
    with pytest.raises(OrpamError, match=r"needs the dask-gateway package \(pip install dask-gateway\)"):
        make_cluster({"kind": "gateway", "address": "http://nowhere:8000"})


def test_only_one_way_to_compute_is_accepted():
    with pytest.raises(OrpamError, match="give one of"):
        with compute_context(workers=2, cluster={"kind": "slurm"}):
            pass


def test_every_recipe_loads_and_differs_from_the_batch_workflow_in_compute_only():
    batch = load_workflow(RECIPES.parent / "batch.toml")
    for file in sorted(RECIPES.glob("*.toml")):
        wf = load_workflow(file)
        assert wf.kind == "batch" and wf.config["compute"]["cluster"]["kind"] in CLUSTER_KINDS
        assert wf.config["method"] == batch.config["method"]
    k8s = load_workflow(RECIPES / "kubernetes.toml")
    assert k8s.output == "s3://lab-bucket/processed/session-2026-12-01"  # URLs are not resolved as paths


def test_the_slurm_recipe_builds_the_job_script_it_says(tmp_path):
    """dask-jobqueue's own SLURMCluster writes the batch script (no SLURM needed until workers are asked for)."""
    pytest.importorskip("dask_jobqueue", reason="the SLURM recipe needs dask-jobqueue")
    spec = dict(load_workflow(RECIPES / "slurm.toml").config["compute"]["cluster"])
    spec.pop("workers")
    cluster = make_cluster({**spec, "scheduler_options": {"host": "127.0.0.1", "dashboard_address": None}})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH --gres=gpu:1" in script and "#SBATCH -p normal" in script and "#SBATCH -t 02:00:00" in script
    assert "--resources GPU=1" in script and "--nthreads 4" in script


class _Info:
    def __init__(self, workers):
        self.workers = workers

    def scheduler_info(self, n_workers=-1):
        return {"workers": {str(i): w for i, w in enumerate(self.workers)}}


def test_scans_in_flight_follow_threads_and_memory():
    from orpam_pipeline.scheduling import SCAN_MEMORY, default_jobs

    assert default_jobs(_Info([{"nthreads": 4, "memory_limit": 64 * SCAN_MEMORY}] * 2)) == 8
    assert default_jobs(_Info([{"nthreads": 4, "memory_limit": 2 * SCAN_MEMORY}, {"nthreads": 2, "memory_limit": 0}])) == 4
    assert default_jobs(_Info([{"nthreads": 8, "memory_limit": SCAN_MEMORY // 2}])) == 1
