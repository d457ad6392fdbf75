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


def test_a_report_without_a_first_pass_does_not_import_scipy_ndimage(tmp_path, small_sim) -> None:
    """Importing ``scipy.ndimage`` takes a quarter of a CPU-second; the report's checks and the truth lookup do not
    need it (``evaluate.artefact.smooth_along_y``), so `orpam run --method none` never pays for it."""
    import numpy as np

    np.save(tmp_path / "scan.npy", small_sim.frames[:4])
    code = ("import sys\nfrom orpam_pipeline.options import RunOptions\nfrom orpam_pipeline.pipeline import run_batch\n"
            f"o = run_batch({str(tmp_path / 'scan.npy')!r}, {str(tmp_path / 'out')!r}, RunOptions(method='none', "
            "figures='none'))[0]\nassert o.ok, o.error\nprint('scipy.ndimage' in sys.modules)")  # fmt: skip
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
