"""``orpam train --method sasnet|sasnet-flow|atdt|eoir`` starts: a few steps on tiny simulated data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.models.checkpoint import load_checkpoint


@pytest.mark.parametrize("method", ["sasnet", "sasnet-flow", "atdt"])
def test_two_steps_through_the_cli(sim_manifest: Path, tmp_path: Path, method: str) -> None:
    out = tmp_path / method
    args = ["train", str(sim_manifest), str(out), "--method", method, "--epochs", "1", "--steps-per-epoch", "2",
            "--batch-size", "2", "--crop", "16", "--base-channels", "4", "--precision", "fp32", "--device", "cpu"]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert load_checkpoint(out / "last.pt")["model_config"]["arch"] == method
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert record["global_step"] == 2 and record["val_loss"] is not None
    assert ("val_disp_rms_px" in record) == (method != "sasnet")


def test_eoir_trains_supervised_and_resumes_through_the_cli(sim_manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "eoir"
    args = ["train", str(sim_manifest), str(out), "--method", "eoir", "--steps-per-epoch", "2", "--batch-size", "2",
            "--crop", "32", "--precision", "fp32", "--device", "cpu", "--lambda-displacement", "1"]
    res = CliRunner().invoke(app, [*args, "--epochs", "2"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, [*args, "--epochs", "2", "--resume"], catch_exceptions=False)
    assert res.exit_code == 0, res.output  # a finished run resumed: nothing left to do
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["global_step"] for r in records] == [2, 4] and all("val_disp_rms_px" in r for r in records)
    assert load_checkpoint(out / "last.pt")["model_config"]["arch"] == "eoir"
    res = CliRunner().invoke(app, [*args, "--epochs", "1", "--base-channels", "8", "--resume"])
    assert res.exit_code == 1 and "--base-channels does not apply to eoir" in res.output
