"""Damage a finished store in every way a disk can, then `orpam repair` recomputes exactly that part.

Each case: run a scan, keep its arrays and report numbers, damage the store, check that verify,
status and report say so in one line, repair, and check that everything is bit-identical again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.store.layout import array_path
from orpam_pipeline.store.status import verify_outputs

ARRAYS = ("frames", "registered_even", "merged", "displacement")
VOLATILE = ("created", "store")


def _chunk(store: Path, name: str, index: int, level: int = 0) -> Path:
    path = store / array_path(name, level)
    array = zarr.open_array(path, mode="r")
    return path / array.metadata.encode_chunk_key((index,) + (0,) * (array.ndim - 1))


def flip_byte(store: Path) -> str:
    path = _chunk(store, "registered_even", 1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return "registered_even/0 chunk 1"


def delete_chunk(store: Path) -> str:
    _chunk(store, "merged", 2).unlink()
    return "merged/0 chunk 2"


def zero_frames_chunk(store: Path) -> str:
    path = _chunk(store, "frames", 0)
    path.write_bytes(bytes(len(path.read_bytes())))
    return "frames/0 chunk 0"


def truncate_displacement(store: Path) -> str:
    path = _chunk(store, "displacement", 1)
    path.write_bytes(path.read_bytes()[:10])
    return "displacement chunk 1"


def break_metadata(store: Path) -> str:
    (store / "registered_even" / "0" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "arr')
    return "registered_even/0: metadata"


def break_image_metadata(store: Path) -> str:
    (store / "merged" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "gro')
    return "merged: metadata"


def flip_lower_level(store: Path) -> str:
    path = _chunk(store, "frames", 1, level=1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return "frames/1 chunk 1"


@pytest.fixture
def finished(tmp_path, small_sim):
    src = tmp_path / "src" / "scan.npy"
    src.parent.mkdir()
    np.save(src, small_sim.frames[:6])
    out = tmp_path / "out"
    [outcome] = run_batch(src, out, RunOptions(method="phase", chunk_frames=2, levels=1))
    assert outcome.ok, outcome.error
    store = outcome.store
    group = zarr.open_group(store, mode="r")
    arrays = {path: group[path][:] for name in ARRAYS for path in (array_path(name), array_path(name, 1))
              if path in group}  # fmt: skip
    report = json.loads((store.parent / "report.json").read_text())
    return out, store, arrays, report


@pytest.mark.parametrize("damage", [flip_byte, delete_chunk, zero_frames_chunk, truncate_displacement, break_metadata,
                                    break_image_metadata, flip_lower_level])  # fmt: skip
def test_repair_recomputes_the_damage_bit_for_bit(finished, damage):
    out, store, arrays, report = finished
    where = damage(store)
    found = verify_outputs(out)
    assert not found.ok and any(where.split(":")[0].replace(" chunk ", " chunk ") in p for p in found.problems), found.problems
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(store)])
    if "/1 " not in where:  # a report reads full resolution only; verify (above) covers the other levels
        assert res.exit_code == 1 and res.output.count("\n") == 1 and "orpam repair" in res.output, res.output
    res = runner.invoke(app, ["repair", str(out), "--json"])
    assert res.exit_code == 0, res.output
    [summary] = json.loads(res.stdout)
    assert summary["ok"] and summary["problems"]
    assert verify_outputs(out).ok
    group = zarr.open_group(store, mode="r")
    for name, before in arrays.items():
        np.testing.assert_array_equal(group[name][:], before, err_msg=name)
    after = json.loads((store.parent / "report.json").read_text())
    assert {k: v for k, v in after.items() if k not in VOLATILE} == {k: v for k, v in report.items() if k not in VOLATILE}


def test_only_the_damaged_chunks_are_recomputed(finished):
    out, store, _, _ = finished
    untouched = _chunk(store, "merged", 0).stat().st_mtime_ns
    flip_byte(store)
    [summary] = json.loads(CliRunner().invoke(app, ["repair", str(out), "--json"]).stdout)
    assert summary["chunks_recomputed"] == {"register": [1]}
    assert _chunk(store, "merged", 0).stat().st_mtime_ns == untouched


def test_damaged_metadata_is_not_called_complete_and_a_damaged_group_is_one_line(finished):
    out, store, _, _ = finished
    break_metadata(store)
    status = json.loads(CliRunner().invoke(app, ["status", str(out), "--json"]).stdout)[0]
    assert status["stages"]["register"]["state"] == "damaged" and "orpam repair" in status["problem"]
    (store / "zarr.json").write_text("{")
    for command in (["verify", str(out)], ["report", str(store)], ["repair", str(out)], ["status", str(out)]):
        res = CliRunner().invoke(app, command)
        assert "Traceback" not in res.output and (command[0] == "status" or res.exit_code == 1), res.output
    res = CliRunner().invoke(app, ["repair", str(out)])
    assert "group metadata (zarr.json) is damaged" in res.output and "--overwrite" in res.output


def test_an_intact_store_is_left_alone(finished):
    out, store, _, _ = finished
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}
    res = CliRunner().invoke(app, ["repair", str(out)])
    assert res.exit_code == 0 and "intact" in res.output
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()} == before
