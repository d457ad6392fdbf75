"""The command line end to end, through Typer's runner (no subprocess needed)."""

import json

import numpy as np
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_simulate_then_run_writes_the_spec_store_and_report(tmp_path):
    res = invoke("simulate", tmp_path / "sim", "--frames", 6, "--size", 64, 48, "--seed", 2, "--scans", 2)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sim" / "truth" / "sim-0003.zarr").is_dir()
    res = invoke("run", tmp_path / "sim" / "scans", tmp_path / "out", "--method", "phase")
    assert res.exit_code == 0, res.output
    for name in ("sim-0002", "sim-0003"):
        report = json.loads((tmp_path / "out" / name / "report.json").read_text())
        for key in ("frames", "method", "ncc_mean", "ssim_mean", "psnr_mean", "ncc_mean_unregistered",
                    "tncc_merged", "tncc_unregistered", "tncc_odd", "tncg", "tncg_unregistered", "per_frame"):
            assert key in report, key
        assert len(report["per_frame"]["ncc"]) == 6 and len(report["per_frame"]["pair_ncc_merged"]) == 5
        html = (tmp_path / "out" / name / "report.html").read_text()
        assert "<svg" in html and "data:image/png;base64" in html


def test_ingest_register_report_step_by_step(tmp_path, small_sim):
    np.save(tmp_path / "a.npy", small_sim.frames[:5])
    assert invoke("ingest", tmp_path / "a.npy", tmp_path / "out").exit_code == 0
    store = tmp_path / "out" / "a" / "scan.zarr"
    res = invoke("register", store, "--method", "phase", "--line-profile")
    assert res.exit_code == 1 and "--line-profile is not a setting of phase" in res.output and "Traceback" not in res.output
    res = invoke("register", store, "--method", "copy-odd")
    assert res.exit_code == 0, res.output
    res = invoke("report", store)
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "out" / "a" / "report.json").read_text())
    assert report["method"] == "copy-odd" and report["ncc_mean"] > 0.999999


def test_errors_are_one_line_without_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    res = invoke("run", tmp_path / "empty", tmp_path / "out")
    assert res.exit_code == 1
    assert "Traceback" not in res.output and "no scan files" in res.output
    res = invoke("register", tmp_path / "nope.zarr")
    assert res.exit_code == 1 and "not a scan store" in res.output


def test_batch_with_a_bad_file_exits_non_zero_but_finishes_the_rest(tmp_path, small_sim):
    src = tmp_path / "in"
    src.mkdir()
    np.save(src / "good.npy", small_sim.frames[:4])
    (src / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    res = invoke("run", src, tmp_path / "out", "--method", "none")
    assert res.exit_code == 1
    assert "broken.npy" in res.output and "1 of 2 scans done" in res.output
    assert (tmp_path / "out" / "good" / "report.html").exists()


def test_demo_runs_end_to_end(tmp_path):
    res = invoke("demo", tmp_path / "demo", "--frames", 8)
    assert res.exit_code == 0, res.output
    assert "report.html" in res.output
    assert (tmp_path / "demo" / "results" / "sim-0007" / "report.html").exists()


def test_manifest_train_and_run_with_the_trained_model(tmp_path):
    assert invoke("simulate", tmp_path / "sim", "--frames", 4, "--size", 48, 48, "--scans", 3).exit_code == 0
    manifest = tmp_path / "sim.toml"
    res = invoke("manifest", "create", tmp_path / "sim" / "scans", manifest, "--val-fraction", 0.34, "--test-fraction", 0)
    assert res.exit_code == 0, res.output
    assert invoke("manifest", "check", manifest).exit_code == 0
    res = invoke("train", manifest, tmp_path / "run", "--epochs", 1, "--steps-per-epoch", 2,
                 "--batch-size", 2, "--crop", 16, "--base-channels", 4, "--precision", "fp32")
    assert res.exit_code == 0, res.output
    model = tmp_path / "run" / "model.pt"
    assert model.exists() and (tmp_path / "run" / "metrics.jsonl").exists()
    res = invoke("run", tmp_path / "sim" / "scans", tmp_path / "out", "--method", "pcregnet",
                 "--checkpoint", model, "--device", "cpu")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "out" / "sim-0000" / "report.json").read_text())
    assert report["method"] == "pcregnet"
    res = invoke("info", "--json")
    assert res.exit_code == 0 and '"pcregnet"' in res.output
    res = invoke("train", manifest, tmp_path / "flow", "--method", "pcregnet-flow", "--epochs", 1,
                 "--steps-per-epoch", 1, "--batch-size", 2, "--crop", 16, "--base-channels", 4, "--precision", "fp32",
                 "--lambda-displacement", 1, "--shift", 2)
    assert res.exit_code == 0 and "val_disp_rms_px" in res.output, res.output
    # the spellings of the last release still work, with a note
    res = invoke("train", manifest, "--out", tmp_path / "flow2", "--arch", "pcregnet-flow", "--epochs", 1,
                 "--steps-per-epoch", 1, "--batch-size", 2, "--crop", 16, "--base-channels", 4, "--amp", "off",
                 "--init", tmp_path / "flow" / "model.pt", "--freeze-batchnorm")
    assert "--arch is deprecated" in res.output
    assert res.exit_code == 0, res.output
    res = invoke("run", tmp_path / "sim" / "scans", tmp_path / "out-flow", "--method", "pcregnet-flow",
                 "--checkpoint", tmp_path / "flow2" / "model.pt", "--device", "cpu", "--line-profile")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "out-flow" / "sim-0000" / "report.json").read_text())["method"] == "pcregnet-flow"
    res = invoke("train", manifest, tmp_path / "bad", "--init", model, "--method", "pcregnet-flow",
                 "--base-channels", 4, "--epochs", 1)
    assert res.exit_code == 1 and "init checkpoint's model config differs" in res.output


def test_manifest_check_reports_a_changed_file(tmp_path):
    assert invoke("simulate", tmp_path / "sim", "--frames", 2, "--size", 32, 32, "--scans", 2).exit_code == 0
    manifest = tmp_path / "m.toml"
    assert invoke("manifest", "create", tmp_path / "sim" / "scans", manifest, "--val-fraction", 0, "--test-fraction", 0).exit_code == 0
    scan = tmp_path / "sim" / "scans" / "sim-0001.npy"
    data = bytearray(scan.read_bytes())
    data[-1] ^= 0xFF
    scan.write_bytes(bytes(data))
    res = invoke("manifest", "check", manifest)
    assert res.exit_code == 1 and "sim-0001" in res.output


def test_run_with_the_shipped_pcregnet_checkpoint(tmp_path, small_sim):
    np.save(tmp_path / "scan.npy", small_sim.frames[:4])
    res = invoke("run", tmp_path / "scan.npy", tmp_path / "out", "--method", "pcregnet", "--device", "cpu")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "out" / "scan" / "report.json").read_text())
    assert report["method"] == "pcregnet" and report["frames"] == 4
    assert report["ncc_mean"] > report["ncc_mean_unregistered"]
    assert report["method_params"]["checkpoint_sha256"]
