"""``--figures all|png|none``: what a report draws, what its page embeds and lists, and that another choice
on a rerun redraws the report (and tidies the files the new choice does not write)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the test extra: pip install -e '.[test]'")
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "report.schema.json").read_text(encoding="utf-8"))


def _scan(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(2)
    np.save(src / "s.npy", rng.random((6, 40, 32), dtype=np.float32))
    return src


def _run(src: Path, out: Path, figures: str):
    [outcome] = run_batch(src, out, RunOptions(method="phase", figures=figures))
    assert outcome.ok, outcome.error
    folder = outcome.store.parent
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    files = sorted(p.name for p in (folder / "figures").iterdir()) if (folder / "figures").is_dir() else []
    return outcome, report, (folder / "report.html").read_text(encoding="utf-8"), files


def _written(out: Path) -> tuple[int, int]:
    """Which report.json is on disk: every write replaces the file by a new one (its inode and time change),
    so this tells a rewrite from a kept file even within one second, the resolution of ``created``."""
    [path] = out.glob("*/report.json")
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def test_each_choice_draws_what_it_says_and_a_rerun_with_another_redraws(tmp_path):
    src, out = _scan(tmp_path), tmp_path / "out"
    outcome, first, html, files = _run(src, out, "all")
    report = first
    assert report["figures_drawn"] == "all" and set(report["figures"]) >= {"frames", "crop", "metrics_per_frame"}
    assert files == sorted(f"{n}.{ext}" for n in report["figures"] for ext in ("png", "svg"))
    assert "<svg" in html
    before = _written(out)

    outcome, report, html, files = _run(src, out, "png")
    assert report["figures_drawn"] == "png" and _written(out) != before
    assert all(set(entry) == {"png", "caption"} for entry in report["figures"].values())
    assert files == sorted(f"{n}.png" for n in report["figures"])  # the SVGs of the first report are gone
    assert "<svg" not in html and html.count('src="data:image/png;base64,') == len(report["figures"])
    assert ".svg</code>" not in html

    outcome, report, html, files = _run(src, out, "none")
    assert report["figures_drawn"] == "none" and report["figures"] == {} and files == []
    assert "<figure" not in html and "--figures none" in html
    assert _numbers(report) == _numbers(first)  # every number is there, the same
    before = _written(out)
    again = _run(src, out, "none")[1]  # same choice: the report is kept, not drawn again
    assert again == report and _written(out) == before


def _numbers(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("created", "figures", "figures_drawn", "warnings")}


def test_a_bad_choice_is_refused_in_one_line(tmp_path):
    with pytest.raises(OrpamError, match="--figures must be one of all, png, none"):
        RunOptions(figures="svg")
    result = CliRunner().invoke(app, ["run", str(_scan(tmp_path)), str(tmp_path / "out"), "--figures", "svg"])
    assert result.exit_code == 2 and "svg" in result.output


def test_orpam_report_draws_the_figures_a_run_left_out(tmp_path):
    src, out = _scan(tmp_path), tmp_path / "out"
    outcome, report, _, files = _run(src, out, "none")
    assert files == []
    result = CliRunner().invoke(app, ["report", str(outcome.store), "--json"])
    assert result.exit_code == 0, result.output
    drawn = json.loads((outcome.store.parent / "report.json").read_text(encoding="utf-8"))
    assert drawn["figures_drawn"] == "all" and (outcome.store.parent / "figures" / "frames.svg").is_file()
    assert {k: v for k, v in drawn.items() if k not in ("created", "figures", "figures_drawn", "store")} == {
        k: v for k, v in report.items() if k not in ("created", "figures", "figures_drawn", "store")}
