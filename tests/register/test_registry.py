"""A method added in one place reaches every command: run, info, evaluate, workflows and --set."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.geometry import odd_matched
from orpam_pipeline.register import METHODS, RegistrationMethod, get_method, register_method, unregister_method
from orpam_pipeline.register.registry import trained_architecture
from orpam_pipeline.settings import setting
from orpam_pipeline.workflow import load_workflow


@dataclass
class BlendSettings:
    weight: float = setting(0.5, "Share of the forward lines in the output.")
    clip: bool = setting(False, "Clip the output to the forward lines' range.")


class Blend(RegistrationMethod):
    """A toy: a weighted mean of the backward lines and the forward lines."""

    name = "toy-blend"
    kind = "baseline"
    description = "weighted mean of backward and forward lines (test toy)"
    settings_type = BlendSettings

    def apply(self, odd, even, plan_rows):
        fixed = odd_matched(odd, even.shape[-1])
        out = (1 - self.settings.weight) * even + self.settings.weight * fixed
        if self.settings.clip:
            out = np.clip(out, fixed.min(), fixed.max())
        return out.astype(np.float32), None


@pytest.fixture
def toy():
    register_method(Blend)
    try:
        yield Blend
    finally:
        unregister_method(Blend.name)
    assert Blend.name not in METHODS


def test_a_registered_method_runs_from_the_cli_with_typed_settings(toy, tmp_path, small_sim):
    np.save(tmp_path / "scan.npy", small_sim.frames[:4])
    res = CliRunner().invoke(app, ["run", str(tmp_path / "scan.npy"), str(tmp_path / "out"), "--method", "toy-blend",
                                   "--set", "weight=1", "--set", "clip=true", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["done"] == 1 and summary["scans"][0]["report"]["method"] == "toy-blend"
    # weight 1 copies the forward lines: the papers' NCC is exactly 1
    assert summary["scans"][0]["report"]["ncc_mean"] == pytest.approx(1.0)
    info = json.loads(CliRunner().invoke(app, ["info", "--json"]).stdout)
    entry = next(m for m in info["methods"] if m["name"] == "toy-blend")
    assert [s["name"] for s in entry["settings"]] == ["weight", "clip"]
    assert entry["settings"][0]["help"].startswith("Share of the forward lines")


def test_settings_are_checked_against_the_declaration(toy, tmp_path):
    assert get_method("toy-blend", weight=0.25).settings.weight == 0.25
    with pytest.raises(OrpamError, match="no setting 'wieght'.*settings: clip, weight"):
        from orpam_pipeline.register import parse_method_settings

        parse_method_settings("toy-blend", ["wieght=1"])
    res = CliRunner().invoke(app, ["run", str(tmp_path), str(tmp_path / "o"), "--method", "toy-blend", "--set", "weight=abc"])
    assert res.exit_code == 1 and "cannot read 'abc' as float" in res.output
    res = CliRunner().invoke(app, ["run", str(tmp_path), str(tmp_path / "o"), "--method", "phase", "--set", "weight=1"])
    assert res.exit_code == 1 and "has no setting 'weight'" in res.output
    res = CliRunner().invoke(app, ["run", str(tmp_path), str(tmp_path / "o"), "--method", "nope"])
    assert res.exit_code == 1 and "unknown method 'nope'" in res.output and "toy-blend" in res.output


def test_a_registered_method_is_known_to_workflows_and_training(toy, tmp_path):
    from pathlib import Path

    batch = Path(__file__).resolve().parents[2] / "workflows" / "batch.toml"
    wf = load_workflow(batch, ["method.name=toy-blend", "method.weight=0.75", f"output.dir={tmp_path}"])
    assert wf.config["method"] == {"name": "toy-blend", "weight": 0.75}
    with pytest.raises(OrpamError, match=r"unknown key\(s\) in \[method\]: checkpoint"):
        load_workflow(batch, ["method.name=toy-blend", "method.checkpoint=x.pt"])
    with pytest.raises(OrpamError, match="has no network to train"):
        trained_architecture("toy-blend")
    assert trained_architecture("pcregnet-flow") == "pcregnet-flow"


def test_a_name_cannot_be_taken_twice():
    class Impostor(Blend):
        name = "phase"

    with pytest.raises(OrpamError, match="already exists"):
        register_method(Impostor)
    with pytest.raises(OrpamError, match="built-in"):
        unregister_method("phase")
