"""Each shipped workflow file runs on a small simulated dataset and records itself in its outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import zarr
from typer.testing import CliRunner

from orpam_pipeline import __version__
from orpam_pipeline.cli.main import app
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.manifest import create_manifest
from orpam_pipeline.simulate import SimulationParams, write_simulation
from orpam_pipeline.workflow import load_workflow, parse_override

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    """Two 8-frame 48x48 scans with truth, and a manifest over them (one train, one val)."""
    root = tmp_path_factory.mktemp("wf-sim")
    for seed in (21, 22):
        write_simulation(root, SimulationParams.randomised(seed, frames=8, height=48, width=48))
    create_manifest(root / "scans", root / "m.toml", val_fraction=0.5, test_fraction=0.0, seed=0, name="wf")
    return root


def run(file: str, *overrides: str) -> None:
    args = ["workflow", "run", str(WORKFLOWS / file)]
    for o in overrides:
        args += ["--set", o]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output


def check_record(path: Path, kind: str, output: Path) -> dict:
    record = json.loads(path.read_text())
    assert record["package_version"] == __version__
    assert record["resolved"]["workflow"]["kind"] == kind
    assert record["resolved"]["output"]["dir"] == str(output)
    assert len(record["sha256"]) == 64 and record["overrides"]
    return record


def test_batch_workflow(sim, tmp_path):
    out = tmp_path / "batch"
    run("batch.toml", f"inputs.scans={sim / 'scans'}", f"output.dir={out}", "options.chunk_frames=4")
    record = check_record(out / "workflow.json", "batch", out)
    assert [s["ok"] for s in record["outputs"]["scans"]] == [True, True]
    group = zarr.open_group(out / "sim-0021" / "scan.zarr", mode="r")
    assert group.attrs["workflow"]["resolved"] == record["resolved"]
    assert group.attrs["workflow"]["package_version"] == __version__
    assert (out / "sim-0022" / "report.html").is_file()


def test_temporal_report_workflow(sim, tmp_path):
    out = tmp_path / "temporal"
    run("temporal-report.toml", f"inputs.scans={sim / 'scans'}", f"output.dir={out}")
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["scan"] for r in rows] == ["sim-0021", "sim-0022", "mean"]
    assert all(0.5 < float(r["tncc_merged"]) <= 1 for r in rows) and rows[0]["tncg"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["workflow"]["resolved"]["summary"]["metrics"][0] == "tncc_merged"
    check_record(out / "workflow.json", "temporal-report", out)
    again = tmp_path / "again"
    run("temporal-report.toml", "inputs.scans=[]", f"inputs.stores=[\"{out / 'sim-0021'}\"]", f"output.dir={again}")
    assert [r["scan"] for r in csv.DictReader((again / "summary.csv").open())] == ["sim-0021", "mean"]


def test_train_workflow(sim, tmp_path):
    out = tmp_path / "train"
    run("train.toml", f"inputs.manifest={sim / 'm.toml'}", f"output.dir={out}", "train.epochs=1",
        "train.steps_per_epoch=1", "train.batch_size=2", "train.crop=16", "train.val_pairs=2",
        "train.base_channels=4", "train.device=cpu")  # fmt: skip
    record = check_record(out / "workflow.json", "train", out)
    assert record["resolved"]["train"]["epochs"] == 1
    assert record["outputs"]["train"]["epochs_completed"] == 1
    assert (out / "model.pt").is_file() and (out / "metrics.jsonl").read_text().strip()


def test_paths_are_relative_to_the_file_and_overrides_to_the_cwd(tmp_path, monkeypatch):
    wf = load_workflow(WORKFLOWS / "batch.toml")
    assert wf.config["inputs"]["scans"] == [str(WORKFLOWS.parent / "data" / "sim" / "scans")]
    monkeypatch.chdir(tmp_path)
    wf = load_workflow(WORKFLOWS / "batch.toml", ["output.dir=out", "compute.workers=3"])
    assert wf.config["output"]["dir"] == str(tmp_path / "out") and wf.config["compute"]["workers"] == 3
    assert parse_override("inputs.scans=[\"a\", \"b\"]") == (["inputs", "scans"], ["a", "b"])
    wf = load_workflow(WORKFLOWS / "train.toml", ["train.init=ckpt/model.pt"])
    assert wf.config["train"]["init"] == str(tmp_path / "ckpt" / "model.pt")


def test_train_init_in_the_file_is_relative_to_the_file(tmp_path):
    text = (WORKFLOWS / "train.toml").read_text().replace("\n[train]", '\n[train]\ninit = "../runs/a/model.pt"', 1)
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "train.toml").write_text(text)
    wf = load_workflow(tmp_path / "wf" / "train.toml")
    assert wf.config["train"]["init"] == str(tmp_path / "runs" / "a" / "model.pt")


def test_unknown_keys_and_bad_overrides_are_one_line_errors():
    with pytest.raises(OrpamError, match=r"unknown key\(s\) in \[method\]: nmae"):
        load_workflow(WORKFLOWS / "batch.toml", ["method.nmae=phase"])
    with pytest.raises(OrpamError, match="section.key=value"):
        load_workflow(WORKFLOWS / "batch.toml", ["output=/tmp/x"])
    with pytest.raises(OrpamError, match="mode must be"):
        load_workflow(WORKFLOWS / "train.toml", ["compute.mode=cloud"])
    with pytest.raises(OrpamError, match=r"unknown key\(s\) in \[compute\]: address2"):
        load_workflow(WORKFLOWS / "batch.toml", ["compute.address2=tcp://x:1"])
    with pytest.raises(OrpamError, match="has no setting|unknown key"):
        load_workflow(WORKFLOWS / "batch.toml", ["method.name=phase", "method.checkpoint=x.pt"])


def _prepare_command(file: Path) -> list[str]:
    """The arguments of the ``orpam`` command that a shipped workflow's header says to run first."""
    for line in file.read_text().splitlines():
        if line.startswith("# Prepare"):
            return line.split("orpam ", 1)[1].split()
    raise AssertionError(f"{file.name} has no '# Prepare' line in its header")


@pytest.mark.slow
def test_each_shipped_workflow_runs_on_a_fresh_checkout_following_its_header(tmp_path, monkeypatch):
    """Copy what a fresh clone has, run each header's prepare command there, then the workflow itself."""
    import shutil

    for folder in ("workflows", "data_manifests"):
        shutil.copytree(WORKFLOWS.parent / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    prepared: set[tuple[str, ...]] = set()
    cheap_training = ["train.epochs=1", "train.steps_per_epoch=1", "train.batch_size=2", "train.crop=32",
                      "train.val_pairs=2", "train.base_channels=4", "train.device=cpu"]  # fmt: skip
    for file in sorted((tmp_path / "workflows").glob("*.toml")):
        command = tuple(_prepare_command(file))
        if command not in prepared:
            res = CliRunner().invoke(app, list(command), catch_exceptions=False)
            assert res.exit_code == 0, res.output
            prepared.add(command)
        overrides = cheap_training if load_workflow(file).kind == "train" else []
        args = ["workflow", "run", str(file.relative_to(tmp_path))] + [a for o in overrides for a in ("--set", o)]
        res = CliRunner().invoke(app, args, catch_exceptions=False)
        assert res.exit_code == 0, f"{file.name}: {res.output}"
        record = json.loads((Path(load_workflow(file).output) / "workflow.json").read_text())
        assert record["finished"]
