"""The `orpam evaluate` command, the held-out benchmark set, and PCReg-Net inside the evaluation."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.evaluate import BENCHMARK_SCANS, EvaluateOptions, ensure_benchmark, evaluate
from orpam_pipeline.simulate import SimulationParams

TRAINING_SEEDS = range(100, 112)


def test_cli_writes_json_md_and_png(sim_root, tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        app, ["evaluate", str(sim_root / "scans" / "sim-0000.npy"), str(out), "--method", "none,copy-odd",
              "--max-frames", "6", "--leak-frames", "4"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "FAIL" in result.stdout
    data = json.loads((out / "evaluation.json").read_text())
    assert data["methods"] == ["none", "copy-odd"] and data["max_frames"] == 6
    assert data["summary"]["copy-odd"]["leak_passed"] is False
    assert data["scans"][0]["truth"].endswith("sim-0000.zarr")
    assert {"package_version", "created", "machine", "thresholds"} <= set(data)
    assert "**FAIL**" in (out / "evaluation.md").read_text()
    assert (out / "evaluation.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "copy-odd" / "sim-0000" / "report.html").is_file()


def test_cli_refuses_unknown_methods_and_bad_usage(sim_root, tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["evaluate", str(sim_root / "scans"), str(tmp_path / "o"), "--method", "nope"])
    assert bad.exit_code == 1 and "unknown method" in bad.output
    both = runner.invoke(app, ["evaluate", str(sim_root / "scans"), str(tmp_path / "o"), "--benchmark"])
    assert both.exit_code == 1
    missing = runner.invoke(app, ["evaluate", str(sim_root / "scans"), str(tmp_path / "o"), "--method", "pcregnet",
                                  "--checkpoint", str(tmp_path / "none.pt")])  # fmt: skip
    assert missing.exit_code == 1 and "not found" in missing.output


def test_pcregnet_is_evaluated_like_any_method(sim_root, tmp_path, tiny_checkpoint):
    options = EvaluateOptions(methods=("pcregnet",), max_frames=4, leak_frames=4,
                              settings={"checkpoint": str(tiny_checkpoint), "device": "cpu"})  # fmt: skip
    result = evaluate(sim_root / "scans" / "sim-0002.npy", tmp_path, options)
    m = result["scans"][0]["methods"]["pcregnet"]
    assert m["ok"], m.get("error")
    assert m["ncc_truth"] is not None and m["disp_rms_px"] is None
    assert set(m["leak"]["inputs"]) == {"far", "noise"}
    assert m["params"]["checkpoint_sha256"]


def test_benchmark_is_held_out_varied_and_reused(tmp_path):
    seeds = [s.seed for s in BENCHMARK_SCANS]
    assert len(set(seeds)) == len(seeds) >= 6 and min(seeds) >= 5000
    assert not set(seeds) & set(TRAINING_SEEDS)
    default_root = SimulationParams().scene.root_radius
    assert any(s.params(frames=1, size=64).scene.root_radius < 0.5 * default_root for s in BENCHMARK_SCANS)
    assert any(s.params(frames=1, size=64).scene.root_radius > 1.8 * default_root for s in BENCHMARK_SCANS)
    first = ensure_benchmark(tmp_path, frames=2, size=64)
    assert [s["status"] for s in first["scans"]] == ["generated"] * len(BENCHMARK_SCANS)
    second = ensure_benchmark(tmp_path, frames=2, size=64)
    assert [s["status"] for s in second["scans"]] == ["reused"] * len(BENCHMARK_SCANS)
    victim = tmp_path / second["scans"][0]["scan"]
    victim.write_bytes(victim.read_bytes()[:-4] + b"\0\0\0\1")
    third = ensure_benchmark(tmp_path, frames=2, size=64)
    assert [s["status"] for s in third["scans"]][:2] == ["generated", "reused"]
    assert third["scans"][0]["scan_sha256"] == first["scans"][0]["scan_sha256"]
