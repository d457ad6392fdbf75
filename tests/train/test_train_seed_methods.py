"""``orpam train --method sasnet|sasnet-flow|atdt`` starts: two steps on tiny simulated data, then inference."""

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
