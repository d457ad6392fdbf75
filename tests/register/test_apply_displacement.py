"""Applying a stored displacement to other arrays of the acquisition (other wavelengths, volumes)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import zarr
from typer import Typer
from typer.testing import CliRunner

from orpam_pipeline.cli.commands.displacement import apply_displacement_command
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.register import get_method
from orpam_pipeline.register.apply_displacement import apply_displacement, apply_displacement_store
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.register.phase import resample_rows
from orpam_pipeline.store.layout import open_scan_store
from tests.conftest import make_store

RNG = np.random.default_rng(4)


def _field(t: int, y: int, xe: int) -> np.ndarray:
    return (RNG.random((t, y, xe)) * 6.0 - 3.0).astype(np.float32)


def test_field_warps_each_backward_column_and_keeps_forward_columns():
    frames = RNG.random((2, 12, 7)).astype(np.float32)
    disp = _field(2, 12, 3)
    out = apply_displacement(frames, disp)
    np.testing.assert_array_equal(out[..., 0::2], frames[..., 0::2])
    for j in range(3):
        col = frames[:, :, 2 * j + 1 : 2 * j + 2]
        expected = resample_rows(col, np.arange(12)[None, :] + disp[:, :, j].astype(np.float64))
        np.testing.assert_allclose(out[:, :, 2 * j + 1], expected[..., 0], atol=1e-6, rtol=0)
    back = apply_displacement(frames, _field(2, 12, 4), first_line="backward")
    np.testing.assert_array_equal(back[..., 1::2], frames[..., 1::2])


def test_profile_equals_the_broadcast_field():
    frames = RNG.random((3, 10, 8)).astype(np.float32)
    profile = _field(3, 10, 1)[..., 0]
    field = np.repeat(profile[..., None], 4, axis=-1)
    np.testing.assert_allclose(apply_displacement(frames, profile), apply_displacement(frames, field), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["profile", "field"])
def test_volume_equals_per_slice_warps(kind):
    volume = RNG.random((2, 4, 9, 6)).astype(np.float32)
    disp = _field(2, 9, 3) if kind == "field" else _field(2, 9, 1)[..., 0]
    out = apply_displacement(volume, disp)
    assert out.shape == volume.shape and out.dtype == np.float32
    for z in range(4):
        np.testing.assert_allclose(out[:, z], apply_displacement(volume[:, z], disp), atol=1e-6, rtol=0)


def test_shape_mismatch_is_one_line():
    with pytest.raises(OrpamError, match=r"array \(2, 9, 6\) and displacement \(2, 8, 3\)"):
        apply_displacement(np.zeros((2, 9, 6)), np.zeros((2, 8, 3)))
    with pytest.raises(OrpamError, match="backward columns"):
        apply_displacement(np.zeros((2, 9, 6)), np.zeros((2, 9, 4)))
    with pytest.raises(OrpamError, match="non-finite"):
        apply_displacement(np.zeros((1, 4, 4)), np.full((1, 4), np.nan))


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def phase_store(tmp_path_factory, small_sim):
    tmp = tmp_path_factory.mktemp("phase")
    frames = small_sim.frames[:4]
    store = make_store(tmp, frames, chunk_frames=3)
    register_store(store, get_method("phase"))
    return store, frames


def test_store_volume_and_wavelength_to_npy_and_zarr(tmp_path, phase_store):
    store, frames = phase_store
    disp = open_scan_store(store)["displacement"][:]
    other = (frames * 0.5 + 1.0).astype(np.float32)
    volume = np.stack([frames, 2 * frames], axis=1).astype(np.float32)
    src2, src4 = tmp_path / "other.npy", tmp_path / "volume.npy"
    np.save(src2, other)
    np.save(src4, volume)
    before = (_sha(src2), _sha(src4))

    apply_displacement_store(store, src2, tmp_path / "other_reg.npy")
    np.testing.assert_allclose(np.load(tmp_path / "other_reg.npy"), apply_displacement(other, disp), atol=1e-6, rtol=0)
    summary = apply_displacement_store(store, src4, tmp_path / "volume_reg.zarr")
    arr = zarr.open_array(tmp_path / "volume_reg.zarr", mode="r")
    assert arr.shape == volume.shape and arr.chunks[1:] == volume.shape[1:]
    np.testing.assert_allclose(arr[:], apply_displacement(volume, disp), atol=1e-6, rtol=0)
    assert arr.attrs["method"] == "phase" and summary["frames"] == 4
    assert (_sha(src2), _sha(src4)) == before

    with pytest.raises(OrpamError, match="already exists"):
        apply_displacement_store(store, src2, tmp_path / "other_reg.npy")
    with pytest.raises(OrpamError, match="must not be an input"):
        apply_displacement_store(store, src2, src2, overwrite=True)


def test_store_errors_are_one_line(tmp_path, phase_store, small_sim):
    store, frames = phase_store
    bad = tmp_path / "bad.npy"
    np.save(bad, frames[:, :-1])
    with pytest.raises(OrpamError) as info:
        apply_displacement_store(store, bad, tmp_path / "x.npy")
    msg = str(info.value)
    assert "\n" not in msg and str(bad) in msg and str(store) in msg
    assert str(tuple(frames[:, :-1].shape)) in msg and not (tmp_path / "x.npy").exists()

    plain = make_store(tmp_path / "none", small_sim.frames[:2], chunk_frames=1)
    with pytest.raises(OrpamError, match="holds no displacement"):
        apply_displacement_store(plain, bad, tmp_path / "y.npy")
    register_store(plain, get_method("none"))
    with pytest.raises(OrpamError, match="method none reports none"):
        apply_displacement_store(plain, bad, tmp_path / "y.npy")


def test_cli_command(tmp_path, phase_store):
    store, frames = phase_store
    src = tmp_path / "other.npy"
    np.save(src, frames)
    app = Typer()
    app.command("apply-displacement")(apply_displacement_command)
    runner = CliRunner()
    ok = runner.invoke(app, [str(store), str(src), str(tmp_path / "o.zarr")])
    assert ok.exit_code == 0, ok.output
    assert "wrote" in ok.output and (tmp_path / "o.zarr").is_dir()
    bad = runner.invoke(app, [str(store), str(src), str(tmp_path / "o.zarr")])
    assert bad.exit_code == 1


def test_rows_store_transposes_the_other_array_like_the_frames(tmp_path, small_sim):
    frames = small_sim.frames[:3, :40, :30]
    lab = np.ascontiguousarray(frames.transpose(0, 2, 1))
    store = make_store(tmp_path, lab, chunk_frames=2, scan_lines="rows")
    register_store(store, get_method("phase"))
    disp = open_scan_store(store)["displacement"][:]
    src = tmp_path / "lab_other.npy"
    np.save(src, 3.0 * lab)
    apply_displacement_store(store, src, tmp_path / "out.npy")
    expected = apply_displacement(3.0 * frames, disp).transpose(0, 2, 1)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-5, rtol=0)
