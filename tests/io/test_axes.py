"""``--axes`` names the stored axes in the user's order (NumPy order; MATLAB's for .mat, v7.3 included)
and subsumes ``--scan-lines`` and ``--depth-axis``, which keep their meaning."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from orpam_pipeline.errors import OrpamError, ScanError
from orpam_pipeline.io import ReadSpec, open_scan
from orpam_pipeline.io.axes import check_axes
from orpam_pipeline.io.reduce import Reduction
from orpam_pipeline.options import RunOptions

from .conftest import write_h5, write_mat73, write_npy


@pytest.fixture
def volume() -> np.ndarray:
    """A (T, Z, Y, X) uint16 A-line volume on a DC offset."""
    return (32768 + 400 * np.random.default_rng(5).normal(size=(3, 40, 6, 5))).astype(np.uint16)


def _maps(path, **spec):
    with open_scan(path, spec=ReadSpec(**spec)) as src:
        return src.read_maps(0, src.shape[0]), src.axes_used


def test_axes_equal_depth_axis_in_every_order(tmp_path, volume):
    (want, want_depth), used = _maps(write_npy(tmp_path / "v.npy", volume), depth_axis=1)
    assert used == "tzyx"
    matlab = np.transpose(volume, (1, 2, 3, 0))  # MATLAB (Z, Y, X, T)
    scipy.io.savemat(tmp_path / "v5.mat", {"raw": matlab})
    cases = {
        write_npy(tmp_path / "a.npy", volume): "tzyx",
        write_npy(tmp_path / "b.npy", np.transpose(volume, (2, 3, 1, 0))): "yxzt",
        write_h5(tmp_path / "c.h5", np.transpose(volume, (1, 0, 3, 2))): "ztxy",
        tmp_path / "v5.mat": "zyxt",
        write_mat73(tmp_path / "v73.mat", {"raw": matlab}): "zyxt",
    }
    for path, axes in cases.items():
        (got, depth), used = _maps(path, axes=axes)
        assert used == axes
        np.testing.assert_array_equal(got, want, err_msg=path.name)
        np.testing.assert_array_equal(depth, want_depth, err_msg=path.name)


def test_axes_equal_scan_lines_rows(tmp_path):
    stack = np.random.default_rng(0).normal(size=(4, 6, 7)).astype(np.float32)
    path = write_npy(tmp_path / "s.npy", stack)
    with open_scan(path, spec=ReadSpec(axes="txy")) as src:
        np.testing.assert_array_equal(src.read(0, 4), stack.transpose(0, 2, 1))
    with open_scan(path) as src:
        assert src.axes_used == "tyx" and src.axes is None
        assert "axes" not in src.provenance() and "map" not in src.provenance()


def test_matlab_default_axes_are_named(tmp_path):
    path = write_mat73(tmp_path / "m.mat", {"img": np.zeros((6, 5, 3))})
    with open_scan(path) as src:
        assert src.axes_used == "yxt" and src.shape == (3, 6, 5)


def test_a_wrong_count_names_the_file_and_the_users_shape(tmp_path, volume):
    path = write_mat73(tmp_path / "v.mat", {"raw": np.transpose(volume, (1, 2, 3, 0))})
    with pytest.raises(ScanError) as err:
        open_scan(path, spec=ReadSpec(axes="zyx"))
    text = str(err.value)
    assert "\n" not in text and str(path) in text
    assert "--axes zyx names 3 axes but the array has 4: shape (40, 6, 5, 3)" in text


@pytest.mark.parametrize(
    ("axes", "problem"),
    [("tyxx", "'x' named more than once"), ("tzy", "needs both y and x"), ("tqyx", "unknown letter"), ("", "no letters")],
)
def test_bad_letters_are_one_line(axes, problem):
    with pytest.raises(OrpamError, match=problem) as err:
        check_axes(axes)
    assert "\n" not in str(err.value)


def test_axes_refuse_the_older_spellings():
    with pytest.raises(OrpamError, match="--axes replaces --depth-axis"):
        RunOptions(axes="tzyx", depth_axis=1)
    with pytest.raises(OrpamError, match="--axes replaces --scan-lines"):
        RunOptions(axes="txy", scan_lines="rows")
    assert RunOptions(axes="TZYX").read_spec().axes == "tzyx"


def test_the_default_reduction_is_the_envelope(tmp_path, volume):
    path = write_npy(tmp_path / "v.npy", volume)
    (envelope, _), _ = _maps(path, depth_axis=1)
    (old, _), _ = _maps(path, depth_axis=1, reduction=Reduction("abs"))
    assert old.min() > 32768 > 10 * envelope.max()


def test_tiff_frames_follow_the_axes(tmp_path):
    from .conftest import write_tiff

    stack = np.random.default_rng(2).integers(0, 4000, size=(3, 8, 6)).astype(np.uint16)
    write_npy(tmp_path / "s.npy", stack)
    write_tiff(tmp_path / "s.tif", stack)
    for axes in ("txy", "ytx", "xty"):
        with open_scan(tmp_path / "s.npy", spec=ReadSpec(axes=axes)) as want, \
                open_scan(tmp_path / "s.tif", spec=ReadSpec(axes=axes)) as got:  # fmt: skip
            assert got.shape == want.shape
            np.testing.assert_array_equal(got.read(1, 3), want.read(1, 3))
