"""Only commands that run a network import torch; the same idea has the same option name everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(script: str) -> set[str]:
    """The heavy modules loaded by a fresh interpreter after ``script`` ran."""
    code = textwrap.dedent(script) + textwrap.dedent("""
        import sys
        print(" ".join(m for m in ("torch", "zarr", "dask", "scipy", "matplotlib") if m in sys.modules))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    return set(res.stdout.split("\n")[-2].split())


def _call(*args: str) -> str:
    return f"""
from orpam_pipeline.cli.main import app
try:
    app({list(args)!r}, standalone_mode=False)
except SystemExit:
    pass
"""


def test_help_imports_no_heavy_library():
    assert _modules_after(_call("--help")) == set()
    assert _modules_after(_call("run", "--help")) == set()


def test_pipeline_commands_without_a_network_never_import_torch(tmp_path):
    np.save(tmp_path / "s.npy", np.random.default_rng(0).random((4, 64, 32), dtype=np.float32))
    out = tmp_path / "out"
    script = "\n".join([
        _call("run", str(tmp_path / "s.npy"), str(out), "--method", "phase"),
        _call("status", str(out)),
        _call("verify", str(out)),
        _call("report", str(out / "s")),
        _call("run", str(tmp_path / "s.npy"), str(tmp_path / "out2"), "--method", "none", "--json"),
    ])  # fmt: skip
    loaded = _modules_after(script)
    assert "torch" not in loaded and "zarr" in loaded
    assert (out / "s" / "report.html").is_file()


def test_classical_runs_on_a_simulated_scan_with_truth_never_import_torch(tmp_path):
    """`none`, `copy-odd` and `phase` with a ground truth beside the scan (the report scores it)."""
    sim = tmp_path / "sim"
    script = "\n".join([
        _call("simulate", str(sim), "--frames", "4", "--size", "64", "48"),
        *[_call("run", str(sim / "scans"), str(tmp_path / m), "--method", m) for m in ("none", "copy-odd", "phase")],
    ])  # fmt: skip
    loaded = _modules_after(script)
    assert "torch" not in loaded and "zarr" in loaded
    for method in ("none", "copy-odd", "phase"):
        report = json.loads(next((tmp_path / method).glob("*/report.json")).read_text())
        assert report["method"] == method and report["truth"]["ncc_truth"] is not None


@pytest.mark.parametrize("command", [["run", "a", "b"], ["evaluate", "a", "b"], ["register", "a"], ["train", "m", "o"]])
def test_a_bad_device_or_precision_is_one_line_naming_the_allowed_values(command):
    runner = CliRunner()
    res = runner.invoke(app, [*command, "--device", "gpu"])
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    assert "device must be one of auto, cpu, cuda, cuda:N, not 'gpu'" in res.output
    res = runner.invoke(app, [*command, "--precision", "half"])
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    assert "precision must be one of auto, fp32, bf16, fp16, not 'half'" in res.output


def test_the_same_idea_has_the_same_name_in_run_evaluate_and_train():
    runner = CliRunner()
    helps = {c: runner.invoke(app, [c, "--help"], terminal_width=200).output for c in ("run", "evaluate", "train", "register")}
    for text in helps.values():
        for option in ("--method", "--device", "--precision"):
            assert option in text
        assert "<bool>" not in text
    for command in ("run", "evaluate", "register"):
        assert "--set KEY=VALUE" in helps[command]
    for old in ("--methods", "--arch", "--amp", "--out ", "--frames"):
        assert old not in helps["evaluate"] + helps["train"]
    assert "Usage: orpam train [OPTIONS] {MANIFEST} [OUT]" in helps["train"]
    assert "Usage: orpam run [OPTIONS] {SRC} {OUT}" in helps["run"]
