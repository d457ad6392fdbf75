"""Resume rules: strays of killed writers are cleaned, reruns say what they did, different parameters are refused."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.store.resume import state_root

runner = CliRunner()


def _invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_strays_are_cleaned_and_reruns_continue_skip_or_refuse(tmp_path, small_sim):
    src = tmp_path / "s.npy"
    np.save(src, small_sim.frames[:6])
    out = tmp_path / "out"
    res = _invoke("ingest", src, out, "--chunk-frames", 2)
    assert res.exit_code == 0 and "already complete" not in res.output
    store = out / "s" / "scan.zarr"
    strays = [
        out / "s" / ".scan.zarr.partial-999999",
        out / "s" / ".report.json.partial-999999",
        store / "frames" / "c" / "0" / "0" / ("0." + "ab" * 16 + ".partial"),
        state_root(store) / "register" / ".measure.npy.partial-999999",
    ]
    for stray in strays:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"left by a killed process")
    res = _invoke("ingest", src, out, "--chunk-frames", 2)
    assert res.exit_code == 0 and "already complete" in res.output, res.output
    assert not any(p.exists() for p in strays)

    res = _invoke("ingest", src, out, "--chunk-frames", 3)
    assert res.exit_code == 1 and "chunk_frames 2 -> 3" in " ".join(res.output.split())

    assert _invoke("register", out / "s", "--method", "phase").exit_code == 0
    res = _invoke("register", out / "s", "--method", "phase")
    assert res.exit_code == 0 and "already registered with phase" in res.output
    res = _invoke("register", out / "s", "--method", "none")
    assert res.exit_code == 1 and "method phase -> none" in res.output and "--overwrite" in res.output
    res = _invoke("register", out / "s", "--method", "none", "--overwrite")
    assert res.exit_code == 0 and "registered with none" in res.output

    res = _invoke("run", src, out, "--method", "none", "--chunk-frames", 2)
    assert res.exit_code == 0 and "(continued)" in res.output  # only the report was missing
    res = _invoke("run", src, out, "--method", "none", "--chunk-frames", 2)
    assert res.exit_code == 0 and "already complete, skipped" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.npy"]
