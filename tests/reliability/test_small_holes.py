"""The smaller holes of the second red-team round, each a test that failed before."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch


def test_a_constant_uint64_scan_near_two_to_the_63_raises_no_overflow_warning(tmp_path):
    np.save(tmp_path / "c.npy", np.full((3, 32, 16), 2**63 + 5, dtype=np.uint64))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        [outcome] = run_batch(tmp_path / "c.npy", tmp_path / "out", RunOptions(method="phase"))
    assert outcome.ok, outcome.error


def test_a_scan_that_fails_validation_leaves_no_empty_folder(tmp_path):
    np.save(tmp_path / "tiny.npy", np.zeros((2, 2, 2), np.float32))
    np.save(tmp_path / "good.npy", np.random.default_rng(0).random((2, 16, 8), dtype=np.float32))
    outcomes = {o.name: o for o in run_batch(tmp_path, tmp_path / "out", RunOptions(method="none"))}
    assert not outcomes["tiny"].ok and outcomes["good"].ok
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good"]
    res = CliRunner().invoke(app, ["ingest", str(tmp_path / "tiny.npy"), str(tmp_path / "out2")])
    assert res.exit_code == 1 and not (tmp_path / "out2").exists()


def test_a_read_only_output_folder_says_what_to_do(tmp_path, monkeypatch):
    """As root the kernel ignores folder permissions, so the refusal a read-only mount gives is injected."""
    np.save(tmp_path / "s.npy", np.zeros((2, 16, 8), np.float32))
    out = tmp_path / "out"
    real_mkdir = Path.mkdir

    def read_only_mkdir(self, *args, **kwargs):
        if self.is_relative_to(out):
            raise OSError(30, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only_mkdir)
    [outcome] = run_batch(tmp_path / "s.npy", out, RunOptions(method="none"))
    assert not outcome.ok and "cannot write there (Read-only file system)" in outcome.error
    assert "choose an output folder you can write to" in outcome.error


def test_permission_errors_are_one_line_saying_what_to_do():
    from orpam_pipeline.errors import one_line

    err = PermissionError(13, "Permission denied", "/data/out/scan")
    assert one_line(err, Path("x")) == ("/data/out/scan: cannot write there (Permission denied); choose an output "
                                        "folder you can write to, or fix its permissions")  # fmt: skip
    ro = OSError(30, "Read-only file system", "/mnt/ro/scan")
    assert "cannot write there (Read-only file system)" in one_line(ro, Path("x"))


def test_messages_keep_their_brackets(tmp_path):
    wf = tmp_path / "w.toml"
    wf.write_text('[workflow]\nkind = "batch"\ncommand = "x"\n[inputs]\nscans = ["a"]\n[output]\ndir = "o"\n')
    res = CliRunner().invoke(app, ["workflow", "run", str(wf)])
    assert res.exit_code == 1 and "unknown key(s) in [workflow]: command" in res.output
