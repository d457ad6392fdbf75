"""The frame checks on arrays: each warning fires on the setting it names and not on correct data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import zarr

from orpam_pipeline.checks.frames import dtype_max, frame_findings, sample_indices, sampled_frames
from orpam_pipeline.checks.measures import centre_crop, comb_energy, line_match, top_count

COLUMNS = {"scan_lines": "columns", "first_line": "forward"}


def codes(findings) -> list[str]:
    return [f.code for f in findings]


@pytest.fixture(scope="module")
def frames(small_sim) -> np.ndarray:
    return np.asarray(small_sim.frames[:6])


def reversed_backward(frames: np.ndarray, first_line: str = "forward") -> np.ndarray:
    out = frames.copy()
    p = 1 if first_line == "forward" else 0
    out[:, :, p::2] = out[:, ::-1, p::2]
    return out


def test_correct_frames_give_no_warning(frames):
    assert frame_findings(frames, COLUMNS, "float32") == []


def test_lines_as_rows_are_caught_and_the_message_names_the_option(frames):
    [finding] = frame_findings(frames.transpose(0, 2, 1), COLUMNS, "float32")
    assert finding.code == "lines-are-rows" and finding.stage == "frames"
    assert "--scan-lines rows" in finding.message and "--axes" in finding.message
    [wrong_rows] = frame_findings(frames.transpose(0, 2, 1), {**COLUMNS, "scan_lines": "rows"})
    assert wrong_rows.code == "lines-are-rows" and "without --scan-lines rows" in wrong_rows.message


@pytest.mark.parametrize("first_line", ["forward", "backward"])
def test_reversed_backward_lines_are_caught(frames, first_line):
    conventions = {**COLUMNS, "first_line": first_line}
    data = reversed_backward(frames, first_line)
    [finding] = frame_findings(data, conventions)
    assert finding.code == "backward-reversed" and "rerun with --reverse-backward" in finding.message
    [again] = frame_findings(data, {**conventions, "reverse_backward": True})
    assert "rerun without it" in again.message
    stored, flipped = line_match(data[0], first_line)
    assert flipped > stored + 0.25


def test_a_flat_top_is_saturation(frames):
    clipped = np.minimum(frames, np.quantile(frames, 0.97))
    [finding] = frame_findings(clipped, COLUMNS, "float32")
    assert finding.code == "saturated" and "flat top" in finding.message
    assert 2.0 < float(finding.message.split("%")[0]) < 4.0


def test_values_at_the_integer_maximum_are_saturation(frames):
    scaled = np.clip(frames / np.quantile(frames, 0.95), 0, None) * 3000
    as_u16 = np.minimum(scaled, 65535).astype(np.uint16).astype(np.float32)
    assert frame_findings(as_u16, COLUMNS, "uint16") == []
    hot = np.minimum(scaled * 30, 65535).astype(np.uint16).astype(np.float32)
    [finding] = frame_findings(hot, COLUMNS, "uint16")
    assert finding.code == "saturated" and "maximum of the source dtype" in finding.message
    assert dtype_max("uint16") == 65535.0 and dtype_max("float32") is None and dtype_max(None) is None


def test_a_single_maximum_or_a_constant_frame_is_not_a_flat_top():
    rng = np.random.default_rng(0)
    assert top_count(rng.random((32, 32)))[0] == 0
    assert top_count(np.full((32, 32), 7.0))[0] == 0
    assert top_count(np.full((32, 32), 255.0), dtype_max=255.0)[0] == 1024


def test_non_finite_values_are_reported(frames):
    bad = frames.copy()
    bad[0, :8] = np.nan
    assert "non-finite" in codes(frame_findings(bad, COLUMNS))


def test_tiny_constant_and_huge_frames_raise_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert frame_findings(np.zeros((2, 4, 2), np.float32), COLUMNS) == []
        assert frame_findings(np.full((3, 32, 16), 2.0**63, np.float32), COLUMNS, "uint64") == []
        assert np.isnan(comb_energy(np.ones((4, 6))))
    assert frame_findings([], COLUMNS) == []


def test_the_crop_keeps_column_parity_and_bounds_the_size():
    frame = np.tile(np.arange(3001.0), (2000, 1))
    crop = centre_crop(frame)
    assert crop.shape == (1024, 1024) and crop[0, 0] % 2 == 0


def test_sampled_frames_are_spread_and_bounded():
    assert sample_indices(1) == [0]
    assert sample_indices(5) == [0, 1, 2, 3, 4]
    picks = sample_indices(1000)
    assert len(picks) == 16 and picks[0] == 0 and picks[-1] == 999


def test_sampled_frames_are_the_frames_and_each_chunk_is_read_once(tmp_path):
    data = np.random.default_rng(1).random((11, 6, 5), dtype=np.float32)
    array = zarr.create_array(tmp_path / "a.zarr", shape=data.shape, chunks=(4, 6, 5), dtype=np.float32)
    array[...] = data
    reads: list[object] = []

    class Counting:
        chunks = array.chunks

        def __getitem__(self, key):
            reads.append(key)
            return array[key]

    indices = sample_indices(11, count=6)
    got = list(sampled_frames(Counting(), indices))
    assert [np.array_equal(g, data[i]) for g, i in zip(got, indices)] == [True] * len(indices)
    assert len(reads) == len({i // 4 for i in indices})
