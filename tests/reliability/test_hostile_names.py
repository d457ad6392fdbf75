"""Hostile scan names: nothing is written outside OUT, names become safe folders, clashes are resolved."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.errors import StoreError
from orpam_pipeline.io import discover_scans, open_scan
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.store.ingest import ingest
from orpam_pipeline.store.names import MAX_NAME, inside, safe_scan_name, scan_folder

FRAMES = np.random.default_rng(0).random((3, 32, 16), dtype=np.float32)


def _save(folder: Path, name: bytes | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = os.path.join(os.fsencode(folder), os.fsencode(name))
    with open(path, "wb") as fh:
        np.save(fh, FRAMES)
    return Path(os.fsdecode(path))


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name, expected", [
    ("..", "_.."), (".", "_."), ("-rf", "_-rf"), ("a/b", "a_b"), ("x\ny", "x_y"), ("", "scan"),
    ("bad\udcffname", "bad_name"), ("C:\\evil", "C__evil"), ("sim-0001", "sim-0001"), ("Maus 3 (left)", "Maus 3 (left)"),
])  # fmt: skip
def test_safe_scan_name(name, expected):
    assert safe_scan_name(name) == expected
    assert safe_scan_name(expected) == expected


def test_long_names_stay_distinct_and_bounded():
    a, b = safe_scan_name("L" * 300), safe_scan_name("L" * 299 + "M")
    assert len(a) == len(b) == MAX_NAME and a != b


@pytest.mark.parametrize("stem", ["..", ".", "-rf", "a" * 240])
def test_a_hostile_file_name_writes_only_under_out(tmp_path, stem):
    src = _save(tmp_path / "src", f"{stem}.npy")
    out = tmp_path / "box" / "out"
    before = _tree(tmp_path)
    outcomes = run_batch(src, out, RunOptions(method="none"))
    assert [o.ok for o in outcomes] == [True], outcomes[0].error
    written = _tree(tmp_path) - before
    assert written and all(w == "box" or w.startswith(str(Path("box") / "out")) for w in written), sorted(written)
    assert outcomes[0].store.parent.parent == out.resolve() and outcomes[0].renamed_from == stem
    again = run_batch(src, out, RunOptions(method="copy-odd", overwrite=True))
    assert again[0].ok and _tree(tmp_path) - before == written


def test_names_that_differ_only_in_case_get_distinct_folders(tmp_path):
    for name in ("Scan.npy", "scan.npy", "SCAN.npy"):
        _save(tmp_path / "src", name)
    entries = discover_scans(tmp_path / "src")
    folded = [e.name.casefold() for e in entries]
    assert len(set(folded)) == 3
    assert [e.name for e in entries] == [e.name for e in discover_scans(tmp_path / "src")]  # deterministic
    outcomes = run_batch(tmp_path / "src", tmp_path / "out", RunOptions(method="none"))
    assert all(o.ok for o in outcomes) and len({o.store for o in outcomes}) == 3


def test_non_utf8_file_names_run_and_keep_their_bytes(tmp_path):
    src = _save(tmp_path / "src", b"raw\xffscan.npy")
    res = CliRunner().invoke(app, ["run", str(tmp_path / "src"), str(tmp_path / "out"), "--method", "none", "--json"])
    assert res.exit_code == 0, res.output
    scan = json.loads(res.stdout)["scans"][0]
    assert scan["name"] == "raw_scan" and scan["ok"]
    import zarr

    files = zarr.open_group(tmp_path / "out" / "raw_scan" / "scan.zarr", mode="r").attrs["source"]["files"]
    assert bytes.fromhex(files[0]["path_bytes_hex"]) == os.fsencode(src.resolve())
    assert "raw" in (tmp_path / "out" / "raw_scan" / "report.html").read_text(encoding="utf-8")


def test_the_guard_refuses_unsafe_names_and_escaping_links(tmp_path):
    with pytest.raises(StoreError, match="unsafe scan name"):
        scan_folder(tmp_path, "..")
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "planted").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StoreError, match="outside the output folder"):
        scan_folder(tmp_path / "out", "planted")
    with pytest.raises(StoreError, match="outside the output folder"):
        inside(tmp_path / "out", tmp_path / "out" / ".." / "x")
    src = _save(tmp_path / "src", "planted.npy")
    with open_scan(src) as source, pytest.raises(StoreError, match="outside the output folder"):
        ingest(source, tmp_path / "out")
    assert not any((tmp_path / "elsewhere").iterdir())
