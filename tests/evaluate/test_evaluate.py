"""The evaluation exposes copying, ranks methods by ground truth, and works without truth."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from orpam_pipeline.evaluate import EvaluateOptions, evaluate, rank_agreement, write_outputs
from orpam_pipeline.evaluate.leak import LEAK_THRESHOLD
from tests.evaluate.conftest import FRAMES, SEEDS


def _per_scan(result: dict, method: str, key: str) -> list[float]:
    return [s["methods"][method][key] for s in result["scans"]]


def test_every_scan_and_method_ran_with_truth(classical):
    assert len(classical["scans"]) == len(SEEDS)
    for scan in classical["scans"]:
        assert scan["ok"] and scan["truth"] and scan["frames"] == FRAMES
        assert all(m["ok"] for m in scan["methods"].values())


def test_copy_odd_has_perfect_paper_metrics_and_fails_the_leak_check(classical):
    s = classical["summary"]["copy-odd"]
    assert s["ncc_odd"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert s["tncg"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert not s["leak_passed"]
    assert min(_per_scan(classical, "copy-odd", "leak_excess")) > 0.6
    assert min(_per_scan(classical, "copy-odd", "leak_score")) == pytest.approx(1.0, abs=1e-6)


def test_none_and_phase_pass_the_leak_check(classical):
    assert classical["summary"]["none"]["leak_passed"]
    assert classical["summary"]["phase"]["leak_passed"]
    assert max(abs(v) for v in _per_scan(classical, "none", "leak_excess")) < 1e-6
    assert max(_per_scan(classical, "phase", "leak_excess")) < LEAK_THRESHOLD


def test_ground_truth_ranks_phase_above_copy_odd_and_none(classical):
    for scan in classical["scans"]:
        m = scan["methods"]
        assert m["phase"]["ncc_truth"] > m["copy-odd"]["ncc_truth"]
        assert m["phase"]["ncc_truth"] > m["none"]["ncc_truth"]
        assert m["phase"]["psnr_truth"] > m["none"]["psnr_truth"]
        assert m["phase"]["disp_rms_px"] < 0.5
        assert m["none"]["disp_rms_px"] is None


def test_artefact_score_orders_every_pair_of_methods_like_ground_truth(classical):
    """Pairwise order (not just Spearman): every method pair, on each of the three scans."""
    for scan in classical["scans"]:
        agreement = scan["artefact_vs_truth"]
        assert agreement["methods"] == ["none", "copy-odd", "phase"]
        assert agreement["pairwise"] == 1.0, scan["name"]
        assert agreement["spearman"] == pytest.approx(1.0)


def test_timing_and_provenance_are_recorded(classical):
    assert classical["machine"]["cpu_count"] >= 1
    assert classical["thresholds"]["leak_excess"] == LEAK_THRESHOLD
    for name in ("none", "copy-odd", "phase"):
        assert classical["summary"][name]["ms_per_frame"]["overall"] > 0


def test_rank_agreement_counts_pairs():
    a = rank_agreement({"a": 0.1, "b": 1.0, "c": 5.0}, {"a": 0.99, "b": 0.9, "c": 0.95})
    assert a["pairwise"] == pytest.approx(2 / 3)
    assert rank_agreement({"a": 0.1}, {"a": 0.9})["spearman"] is None


def test_scans_without_truth_still_evaluate(sim_root, tmp_path):
    lab = tmp_path / "lab"
    lab.mkdir()
    shutil.copy(sim_root / "scans" / f"sim-{SEEDS[0]:04d}.npy", lab / "plain.npy")
    result = evaluate(lab, tmp_path / "out", EvaluateOptions(methods=("none", "phase"), leak_frames=4, max_frames=6))
    scan = result["scans"][0]
    assert scan["ok"] and scan["truth"] is None and scan["frames"] == 6
    for m in scan["methods"].values():
        assert m["ncc_truth"] is None and m["psnr_truth"] is None and m["disp_rms_px"] is None
        assert np.isfinite(m["artefact"]) and np.isfinite(m["ncc_odd"])
    assert result["summary"]["phase"]["ncc_truth"]["mean"] is None
    assert result["summary"]["phase"]["artefact"]["mean"] < result["summary"]["none"]["artefact"]["mean"]
    paths = write_outputs(result, tmp_path / "out")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| phase |" in paths["md"].read_text()
