"""matplotlib is imported only when a figure is drawn: not by the package, the report or evaluate modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_report_and_evaluate_modules_does_not_import_matplotlib() -> None:
    code = ("import sys, orpam_pipeline, orpam_pipeline.report.scan_report, orpam_pipeline.report.html, "
            "orpam_pipeline.evaluate, orpam_pipeline.cli.main; print('matplotlib' in sys.modules)")  # fmt: skip
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
