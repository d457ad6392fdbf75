"""`orpam verify` finds a changed source and a corrupted chunk; `orpam status` shows partial progress."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.io import open_scan
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.store.ingest import ingest
from orpam_pipeline.store.resume import ChunkMarkers
from orpam_pipeline.store.status import collect_status, verify_outputs

runner = CliRunner()


def _invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_verify_detects_a_modified_source_and_a_corrupted_chunk(tmp_path, small_sim):
    src = tmp_path / "scans" / "s.npy"
    src.parent.mkdir()
    np.save(src, small_sim.frames[:6])
    out = tmp_path / "out"
    assert run_batch(src.parent, out, RunOptions(method="phase", chunk_frames=2))[0].ok
    res = _invoke("verify", out)
    assert res.exit_code == 0 and "ok: 1 stores, 1 source files, 12 chunks checked" in res.output, res.output

    chunk = out / "s" / "scan.zarr" / "merged" / "0" / "c" / "1" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x40
    chunk.write_bytes(bytes(data))
    raw = bytearray(src.read_bytes())
    raw[-1] ^= 0x01
    src.write_bytes(bytes(raw))

    result = verify_outputs(out)
    assert len(result.problems) == 2, result.problems
    assert any(f"source {src}" in p and "sha256" in p for p in result.problems)
    assert any("array merged/0 chunk 1 (frames 2-3): corrupted" in p and "checksum" in p for p in result.problems)
    assert all("\n" not in p for p in result.problems)
    res = _invoke("verify", out)
    assert res.exit_code == 1 and "2 problems" in res.output


def test_status_reports_partial_progress(tmp_path, small_sim):
    src = tmp_path / "s.npy"
    np.save(src, small_sim.frames[:10])

    def stop_after_three(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with open_scan(src) as source, pytest.raises(KeyboardInterrupt):
        ingest(source, tmp_path / "out", chunk_frames=1, progress=stop_after_three)
    done = ChunkMarkers(tmp_path / "out" / "s" / "scan.zarr", "ingest").count()
    assert 3 <= done < 10  # writes under way when it stopped finish too
    [scan] = collect_status(tmp_path / "out")
    assert scan["stages"]["ingest"] == {"state": "partial", "chunks_done": done, "chunks_total": 10}
    assert scan["stages"]["register"]["state"] == "absent" and scan["lock"] is None

    res = _invoke("status", tmp_path / "out", "--json")
    assert res.exit_code == 0 and json.loads(res.output)[0]["stages"]["ingest"]["chunks_done"] == done
    res = _invoke("status", tmp_path / "out")
    assert res.exit_code == 0 and f"partial {done}/10" in res.output
    res = _invoke("verify", tmp_path / "out")
    assert res.exit_code == 1 and f"stage ingest is incomplete ({done}/10 chunks)" in " ".join(res.output.split())

    with open_scan(src) as source:
        again = ingest(source, tmp_path / "out", chunk_frames=1)
    assert again.state == "resumed" and again.chunks_written == 10 - done
    res = _invoke("status", tmp_path / "out")
    assert "complete 10/10" in res.output
