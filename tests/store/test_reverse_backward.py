"""``--reverse-backward``: backward lines stored in scan order are flipped along Y on ingest, recorded in
provenance and fingerprint, kept by repair, and their absence is warned about."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.errors import StoreError
from orpam_pipeline.io import open_scan
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.store.ingest import flip_backward, ingest
from orpam_pipeline.store.layout import get_array
from orpam_pipeline.store.status import verify_outputs

ARRAYS = ("frames", "registered_even", "merged", "displacement")


def as_scan_order(frames: np.ndarray, first_line: str = "forward") -> np.ndarray:
    """What an acquisition storing backward lines in scan order writes."""
    out = frames.copy()
    p = 1 if first_line == "forward" else 0
    out[:, :, p::2] = out[:, ::-1, p::2]
    return out


@pytest.mark.parametrize("first_line", ["forward", "backward"])
def test_flip_backward_flips_only_the_backward_columns(first_line):
    frames = np.random.default_rng(0).random((2, 8, 7), dtype=np.float32)
    flipped = flip_backward(frames, first_line)
    np.testing.assert_array_equal(flipped, as_scan_order(frames, first_line))
    np.testing.assert_array_equal(flip_backward(flipped, first_line), frames)


def test_ingest_flips_after_the_rows_transposition_and_records_it(tmp_path, small_sim):
    frames = small_sim.frames[:4]
    src = tmp_path / "rows.npy"
    np.save(src, as_scan_order(frames).transpose(0, 2, 1))
    with open_scan(src) as source:
        store = ingest(source, tmp_path / "out", scan_lines="rows", reverse_backward=True).store
    group = zarr.open_group(store, mode="r")
    np.testing.assert_array_equal(group["frames/0"][:], frames)
    assert group.attrs["conventions"]["reverse_backward"] is True
    assert group.attrs["stages"]["ingest"]["params"]["reverse_backward"] is True
    with open_scan(src) as source:
        with pytest.raises(StoreError, match="reverse_backward"):
            ingest(source, tmp_path / "out", scan_lines="rows")


def test_without_the_flag_the_fingerprint_is_unchanged(tmp_path, small_sim):
    src = tmp_path / "s.npy"
    np.save(src, small_sim.frames[:3])
    with open_scan(src) as source:
        store = ingest(source, tmp_path / "out").store
    group = zarr.open_group(store, mode="r")
    assert "reverse_backward" not in group.attrs["stages"]["ingest"]["params"]
    assert group.attrs["conventions"]["reverse_backward"] is False


@pytest.fixture
def reversed_scan(tmp_path, small_sim):
    """The simulated scan as acquired (``plain.npy``) and as stored in scan order (``scan-order/s.npy``)."""
    frames = np.asarray(small_sim.frames[:6])
    (tmp_path / "plain").mkdir()
    (tmp_path / "scan-order").mkdir()
    np.save(tmp_path / "plain" / "s.npy", frames)
    np.save(tmp_path / "scan-order" / "s.npy", as_scan_order(frames))
    return tmp_path


def test_a_reversed_scan_is_warned_about_and_the_flag_gives_the_plain_result(reversed_scan):
    root = reversed_scan
    [plain] = run_batch(root / "plain" / "s.npy", root / "a", RunOptions(method="phase", chunk_frames=2))
    [missing] = run_batch(root / "scan-order" / "s.npy", root / "b", RunOptions(method="phase"))
    assert "backward-reversed" in [w["code"] for w in missing.warnings]
    assert "--reverse-backward" in missing.warnings[0]["message"]
    res = CliRunner().invoke(app, ["run", str(root / "scan-order" / "s.npy"), str(root / "c"), "--reverse-backward",
                                   "--chunk-frames", "2", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    [scan] = json.loads(res.stdout)["scans"]
    assert scan["warnings"] == []
    got, want = zarr.open_group(scan["store"], mode="r"), zarr.open_group(plain.store, mode="r")
    for name in ARRAYS:
        np.testing.assert_array_equal(get_array(got, name)[:], get_array(want, name)[:], err_msg=name)
    res = CliRunner().invoke(app, ["ingest", str(root / "plain" / "s.npy"), str(root / "d"), "--reverse-backward"],
                             terminal_width=300)  # fmt: skip
    assert res.exit_code == 0 and "warning backward-reversed" in res.output and "rerun without it" in res.output


def test_repair_re_reads_with_the_flip(reversed_scan):
    root = reversed_scan
    [outcome] = run_batch(root / "scan-order" / "s.npy", root / "out", RunOptions(chunk_frames=2, reverse_backward=True))
    frames = zarr.open_group(outcome.store, mode="r")["frames/0"][:]
    chunk = outcome.store / "frames" / "0" / "c" / "0" / "0" / "0"
    chunk.write_bytes(bytes(len(chunk.read_bytes())))
    res = CliRunner().invoke(app, ["repair", str(root / "out"), "--json"])
    assert res.exit_code == 0, res.output
    assert verify_outputs(root / "out").ok
    np.testing.assert_array_equal(zarr.open_group(outcome.store, mode="r")["frames/0"][:], frames)


def test_apply_displacement_flips_the_other_channel_like_the_store(reversed_scan):
    from orpam_pipeline.register.apply_displacement import apply_displacement_store

    root = reversed_scan
    [plain] = run_batch(root / "plain" / "s.npy", root / "a", RunOptions(method="phase"))
    [flagged] = run_batch(root / "scan-order" / "s.npy", root / "b", RunOptions(method="phase", reverse_backward=True))
    apply_displacement_store(plain.store, root / "plain" / "s.npy", root / "plain-out.npy")
    info = apply_displacement_store(flagged.store, root / "scan-order" / "s.npy", root / "flagged-out.npy")
    np.testing.assert_array_equal(np.load(root / "flagged-out.npy"), np.load(root / "plain-out.npy"))
    assert info["frames"] == 6
