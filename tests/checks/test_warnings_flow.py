"""Where warnings go (terminal, report.json, report.html, --json) and what --strict does with them;
the registration checks on registered stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from orpam_pipeline.checks import Finding, record_warnings
from orpam_pipeline.checks.registration import limit_finding, no_better_finding
from orpam_pipeline.checks.run import CHECKED_ATTR, store_warnings, update_checks
from orpam_pipeline.cli.main import app
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.register import RegistrationMethod, get_method, register_method, unregister_method
from orpam_pipeline.register.engine import register
from orpam_pipeline.report.scan_report import write_report
from orpam_pipeline.simulate import SimulationParams, simulate


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> Path:
    """``good.npy`` (correct) and ``rows.npy`` (the same scan stored with lines as rows)."""
    root = tmp_path_factory.mktemp("warn") / "scans"
    root.mkdir()
    frames = simulate(SimulationParams.randomised(41, frames=6, height=96, width=64)).frames
    np.save(root / "good.npy", frames)
    np.save(root / "rows.npy", frames.transpose(0, 2, 1))
    return root


def test_warnings_reach_the_terminal_report_json_html_and_json_output(tmp_path, scans):
    res = CliRunner().invoke(app, ["run", str(scans), str(tmp_path / "out")], terminal_width=300)
    assert res.exit_code == 0, res.output
    assert "warning lines-are-rows: " in res.output and "--scan-lines rows" in res.output
    assert res.output.count("warning ") == 1
    report = json.loads((tmp_path / "out" / "rows" / "report.json").read_text())
    [w] = report["warnings"]
    assert set(w) == {"code", "message", "stage"} and w["code"] == "lines-are-rows" and w["stage"] == "frames"
    assert json.loads((tmp_path / "out" / "good" / "report.json").read_text())["warnings"] == []
    html = (tmp_path / "out" / "rows" / "report.html").read_text()
    assert html.index('id="warnings"') < html.index("<h2>Summary</h2>") and "lines-are-rows" in html
    assert 'id="warnings"' not in (tmp_path / "out" / "good" / "report.html").read_text()
    res = CliRunner().invoke(app, ["run", str(scans), str(tmp_path / "out"), "--json"])
    by_name = {s["name"]: s for s in json.loads(res.output)["scans"]}
    assert [w["code"] for w in by_name["rows"]["warnings"]] == ["lines-are-rows"] and by_name["good"]["warnings"] == []
    assert by_name["rows"]["status"] == "skipped"


def test_strict_fails_scans_with_warnings_and_keeps_their_report(tmp_path, scans):
    res = CliRunner().invoke(app, ["run", str(scans), str(tmp_path / "out"), "--strict"], terminal_width=300)
    assert res.exit_code == 1
    assert "failed" in res.output and "--strict: 1 warning (lines-are-rows)" in res.output
    assert (tmp_path / "out" / "rows" / "report.json").is_file()
    outcomes = {o.name: o for o in run_batch(scans, tmp_path / "out", RunOptions(strict=True))}
    assert outcomes["good"].ok and not outcomes["rows"].ok and outcomes["rows"].status == "failed"
    assert outcomes["rows"].warnings[0]["code"] == "lines-are-rows"
    fixed = run_batch(scans / "rows.npy", tmp_path / "fixed", RunOptions(strict=True, scan_lines="rows"))
    assert fixed[0].ok and fixed[0].warnings == []


def test_strict_is_an_option_of_workflows(tmp_path, scans):
    wf = tmp_path / "batch.toml"
    wf.write_text(f'[workflow]\nkind = "batch"\n[inputs]\nscans = ["{scans}"]\n[output]\ndir = "{tmp_path / "o"}"\n'
                  "[options]\nstrict = true\n")  # fmt: skip
    res = CliRunner().invoke(app, ["workflow", "run", str(wf)], terminal_width=300)
    assert res.exit_code == 1 and "lines-are-rows" in res.output


def test_ingest_checks_the_frames_and_prints_warnings(tmp_path, scans):
    res = CliRunner().invoke(app, ["ingest", str(scans / "rows.npy"), str(tmp_path / "out")], terminal_width=300)
    assert res.exit_code == 0 and "warning lines-are-rows" in res.output
    assert [w.code for w in store_warnings(tmp_path / "out" / "rows")] == ["lines-are-rows"]


def test_checks_run_once_per_result_and_keep_ingest_warnings(tmp_path, scans):
    [first] = run_batch(scans / "good.npy", tmp_path / "out", RunOptions(method="phase"))
    group = zarr.open_group(first.store, mode="r+")
    checked = dict(group.attrs[CHECKED_ATTR])
    assert set(checked) == {"frames", "registration"}
    record_warnings(group, "ingest", [Finding("axes-unnamed", "name the axes with --axes", "ingest")])
    assert [w.code for w in update_checks(first.store)] == ["axes-unnamed"]
    assert dict(zarr.open_group(first.store, mode="r").attrs[CHECKED_ATTR]) == checked
    register(first.store, get_method("none"), overwrite=True)
    report = write_report(first.store)[0]
    assert [w["code"] for w in report["warnings"]] == ["axes-unnamed"]
    assert dict(zarr.open_group(first.store, mode="r").attrs[CHECKED_ATTR])["registration"] != checked["registration"]


def test_a_displacement_at_the_search_limit_is_caught(tmp_path):
    params = SimulationParams.randomised(42, frames=6, height=96, width=64, disp_offset=9.0, disp_slope=0.0,
                                         disp_sine_amp=0.0, margin=20)  # fmt: skip
    np.save(tmp_path / "big.npy", simulate(params).frames)
    [narrow] = run_batch(tmp_path / "big.npy", tmp_path / "a", RunOptions(settings={"max_shift": 4.0}))
    found = {w["code"]: w["message"] for w in narrow.warnings}
    assert "displacement-at-limit" in found and "--set max_shift=8" in found["displacement-at-limit"]
    [wide] = run_batch(tmp_path / "big.npy", tmp_path / "b", RunOptions())
    assert wide.warnings == []


def test_limit_and_no_better_rules():
    assert limit_finding("phase", {"max_shift": 16.0}, 15.4) is None
    assert limit_finding("phase", {"max_shift": 16.0}, 15.6).code == "displacement-at-limit"
    assert limit_finding("pcregnet-flow", {}, 40.0) is None
    assert limit_finding("phase", {"max_shift": 16.0}, None) is None
    worse = {"unregistered": 100.0, "registered": 95.0, "baseline": 10.0}
    assert no_better_finding("phase", worse, 50.0).code == "registration-no-better"
    assert no_better_finding("copy-odd", worse, 50.0).code == "registration-no-better"
    assert no_better_finding("none", worse, 50.0) is None
    assert no_better_finding("phase", {**worse, "registered": 80.0}, 50.0) is None
    assert no_better_finding("phase", {**worse, "baseline": 60.0}, 50.0) is None, "nothing above the no-artefact level"


class Worsen(RegistrationMethod):
    """A method that moves the backward lines the wrong way (test toy)."""

    name = "toy-worsen"
    kind = "baseline"
    description = "backward lines rolled by 3 rows (test toy)"

    def apply(self, odd, even, plan_rows):
        return np.roll(np.asarray(even, dtype=np.float32), 3, axis=-2), None


def test_registration_that_does_not_help_is_caught_for_any_method_but_none(tmp_path):
    frames = simulate(SimulationParams.randomised(43, frames=6, height=96, width=64, disp_offset=2.0)).frames
    np.save(tmp_path / "s.npy", frames)
    register_method(Worsen)
    try:
        [worse] = run_batch(tmp_path / "s.npy", tmp_path / "a", RunOptions(method="toy-worsen"))
    finally:
        unregister_method(Worsen.name)
    [finding] = worse.warnings
    assert finding["code"] == "registration-no-better" and finding["stage"] == "registration"
    assert "toy-worsen did not lower" in finding["message"] and "--method" in finding["message"]
    [none] = run_batch(tmp_path / "s.npy", tmp_path / "b", RunOptions(method="none"))
    assert none.warnings == []
