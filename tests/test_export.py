"""``orpam export``: every format round-trips the array and carries the physical metadata it knows."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.export import export_array, export_format
from orpam_pipeline.io import open_scan
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.simulate import SimulationParams, simulate


def _store(tmp: Path, physical: dict | None) -> Path:
    sim = simulate(SimulationParams.randomised(3, frames=6, height=32, width=24))
    src = tmp / "src"
    src.mkdir()
    np.save(src / "s.npy", sim.frames)
    outcome = run_batch(src, tmp / "out", RunOptions(method="phase", chunk_frames=4))[0]
    assert outcome.ok, outcome.error
    if physical is not None:
        zarr.open_group(outcome.store, mode="r+").attrs["physical"] = physical
    return Path(outcome.store)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A registered store (chunks of 4 frames, so 6 frames are two chunks) with pixel 2.5 µm, 0.5 s."""
    return _store(tmp_path_factory.mktemp("exp"), {"pixel_um": {"y": 2.5, "x": 2.5}, "frame_interval_s": 0.5})


def _merged(store: Path) -> np.ndarray:
    return zarr.open_group(store, mode="r")["merged/0"][:]


def _no_partials(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if ".partial" in p.name]


def test_format_from_suffix():
    assert export_format(Path("a.ome.tif")) == "ome-tiff"
    assert export_format(Path("A.OME.TIFF")) == "ome-tiff"
    assert export_format(Path("a.tif")) == "imagej-tiff"
    assert export_format(Path("a.mat")) == "mat-v7.3"
    assert export_format(Path("a.hdf5")) == "hdf5"
    assert export_format(Path("a.npy")) == "npy"
    with pytest.raises(OrpamError, match="cannot tell the format"):
        export_format(Path("a.png"))


def test_ome_tiff(store, tmp_path):
    out = tmp_path / "m.ome.tif"
    summary = export_array(store, out)
    assert summary["format"] == "ome-tiff" and summary["frames"] == 6
    with tifffile.TiffFile(out) as tif:
        np.testing.assert_array_equal(tif.asarray(), _merged(store))
        assert tif.series[0].axes == "TYX"
        ome = tif.ome_metadata
    assert 'PhysicalSizeX="2.5"' in ome and 'PhysicalSizeY="2.5"' in ome
    assert 'TimeIncrement="0.5"' in ome and 'TimeIncrementUnit="s"' in ome
    _no_partials(tmp_path)


def test_ome_tiff_leaves_out_unknown_sizes(tmp_path):
    bare = _store(tmp_path, None)
    out = tmp_path / "f.ome.tiff"
    export_array(bare, out, array="frames")
    with tifffile.TiffFile(out) as tif:
        np.testing.assert_array_equal(tif.asarray(), zarr.open_group(bare, mode="r")["frames/0"][:])
        ome = tif.ome_metadata
    assert "PhysicalSizeX" not in ome and "TimeIncrement" not in ome


def test_imagej_tiff(store, tmp_path):
    out = tmp_path / "m.tif"
    export_array(store, out)
    with tifffile.TiffFile(out) as tif:
        np.testing.assert_array_equal(tif.asarray(), _merged(store))
        ij = tif.imagej_metadata
        xres = tif.pages[0].tags["XResolution"].value
        yres = tif.pages[0].tags["YResolution"].value
    assert ij["frames"] == 6 and ij["finterval"] == 0.5 and ij["unit"] == "um"
    assert xres[0] / xres[1] == pytest.approx(0.4) and yres[0] / yres[1] == pytest.approx(0.4)


def test_hdf5(store, tmp_path):
    out = tmp_path / "m.h5"
    export_array(store, out, array="registered_even")
    with h5py.File(out, "r") as f:
        ds = f["registered_even"]
        np.testing.assert_array_equal(ds[:], zarr.open_group(store, mode="r")["registered_even/0"][:])
        assert ds.chunks[0] == 1
        assert ds.attrs["axes"] == "TYX" and ds.attrs["pixel_um_x"] == 2.5 and ds.attrs["frame_interval_s"] == 0.5
        assert json.loads(ds.attrs["conventions"])["fast_axis"] == "y"


def test_matlab(store, tmp_path):
    out = tmp_path / "m.mat"
    export_array(store, out)
    merged = _merged(store)
    assert out.read_bytes()[:10] == b"MATLAB 7.3"
    with h5py.File(out, "r") as f:
        ds = f["merged"]
        assert ds.attrs["MATLAB_class"] == b"single"
        assert ds.shape == (6, 24, 32)  # MATLAB sees 32 x 24 x 6 (Y x X x T)
        np.testing.assert_array_equal(np.transpose(ds[:]), np.moveaxis(merged, 0, -1))
    with open_scan(out) as scan:  # the package's own MATLAB reader gives back the same frames
        assert scan.shape == merged.shape
        np.testing.assert_array_equal(scan.read(0, scan.shape[0]), merged)


def test_npy_through_the_cli(store, tmp_path):
    out = tmp_path / "m.npy"
    res = CliRunner().invoke(app, ["export", str(store), str(out)])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(np.load(out), _merged(store))
    res = CliRunner().invoke(app, ["export", str(store.parent), str(out)])  # OUT/<scan> works as STORE too
    assert res.exit_code == 1 and "already exists" in res.output and "--overwrite" in res.output
    res = CliRunner().invoke(app, ["export", str(store), str(out), "--array", "frames", "--overwrite"])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(np.load(out), zarr.open_group(store, mode="r")["frames/0"][:])


def test_bad_array_lists_the_arrays(store, tmp_path):
    res = CliRunner().invoke(app, ["export", str(store), str(tmp_path / "x.npy"), "--array", "nope"])
    assert res.exit_code == 1
    assert "nope" in res.output and "merged" in res.output and "frames" in res.output
    assert "Traceback" not in res.output
    assert list(tmp_path.iterdir()) == []


def test_out_inside_the_store_refused(store):
    with pytest.raises(OrpamError, match="inside the store"):
        export_array(store, store / "merged.npy")
    assert not (store / "merged.npy").exists()


def test_failure_leaves_no_file(store, tmp_path, monkeypatch):
    import orpam_pipeline.export as export_mod

    def broken_blocks(array, chunk, progress):
        yield 0, 4, np.asarray(array[0:4], dtype=np.float32)
        raise OSError("disk full")

    monkeypatch.setattr(export_mod, "_blocks", broken_blocks)
    for name in ("m.npy", "m.h5", "m.mat", "m.ome.tif", "m.tif"):
        with pytest.raises(OSError, match="disk full"):
            export_array(store, tmp_path / name)
    assert list(tmp_path.iterdir()) == []
    # an existing OUT survives a failed --overwrite untouched
    keep = tmp_path / "keep.npy"
    keep.write_bytes(b"old")
    with pytest.raises(OSError):
        export_array(store, keep, overwrite=True)
    assert keep.read_bytes() == b"old" and list(tmp_path.iterdir()) == [keep]


def test_rows_store_keeps_pipeline_orientation_and_says_so(tmp_path):
    sim = simulate(SimulationParams.randomised(3, frames=4, height=24, width=32))
    (tmp_path / "src").mkdir()
    np.save(tmp_path / "src" / "s.npy", np.swapaxes(sim.frames, -1, -2))
    outcome = run_batch(tmp_path / "src", tmp_path / "out", RunOptions(method="phase", scan_lines="rows"))[0]
    assert outcome.ok, outcome.error
    export_array(outcome.store, tmp_path / "m.h5", array="frames")
    with h5py.File(tmp_path / "m.h5", "r") as f:
        np.testing.assert_array_equal(f["frames"][:], sim.frames.astype(np.float32))  # (T, Y, X), Y along lines
        assert bool(f["frames"].attrs["transposed_on_ingest"]) is True
    export_array(outcome.store, tmp_path / "m.ome.tif", array="frames")
    with tifffile.TiffFile(tmp_path / "m.ome.tif") as tif:
        assert "transposed on ingest" in tif.ome_metadata


@pytest.fixture(scope="module")
def volume_store(tmp_path_factory) -> Path:
    """A store with the depth-resolved ``volume`` (T, Z, Y, X) of a raw A-line simulation."""
    root = tmp_path_factory.mktemp("vol")
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", str(root / "sim"), "--raw", "--frames", "3", "--size", "32", "24",
                              "--depth-samples", "40", "--seed", "8"])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["run", str(root / "sim" / "scans"), str(root / "out"), "--axes", "tzyx", "--keep-volume",
                              "--pixel-size", "2.5", "--frame-interval", "0.5"])  # fmt: skip
    assert res.exit_code == 0, res.output
    return root / "out" / "sim-0008" / "scan.zarr"


def test_four_dimensional_volume_in_every_format(volume_store, tmp_path):
    volume = zarr.open_group(volume_store, mode="r")["volume/0"][:]
    t, z, y, x = volume.shape
    export_array(volume_store, tmp_path / "v.ome.tif", array="volume")
    with tifffile.TiffFile(tmp_path / "v.ome.tif") as tif:
        series = tif.series[0]
        assert series.axes == "TZYX" and series.shape == volume.shape
        np.testing.assert_array_equal(series.asarray(), volume)
        assert 'PhysicalSizeX="2.5"' in tif.ome_metadata and 'TimeIncrement="0.5"' in tif.ome_metadata
    export_array(volume_store, tmp_path / "v.mat", array="volume")
    with h5py.File(tmp_path / "v.mat", "r") as f:
        assert f["volume"].shape == (t, z, x, y)  # MATLAB sees Y x X x Z x T
        np.testing.assert_array_equal(np.transpose(f["volume"][:]), np.transpose(volume, (2, 3, 1, 0)))
    export_array(volume_store, tmp_path / "v.h5", array="volume")
    with h5py.File(tmp_path / "v.h5", "r") as f:
        np.testing.assert_array_equal(f["volume"][:], volume)
        assert f["volume"].attrs["axes"] == "TZYX"
    export_array(volume_store, tmp_path / "v.npy", array="volume")
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), volume)


def test_bigtiff_above_the_classic_limit(store, tmp_path, monkeypatch):
    """Above the classic TIFF's 4 GiB the OME-TIFF is BigTIFF (the limit lowered here: same code path)."""
    import orpam_pipeline.export as export

    export_array(store, tmp_path / "classic.ome.tif")
    monkeypatch.setattr(export, "TIFF_CLASSIC_LIMIT", 1024)
    export_array(store, tmp_path / "big.ome.tif")
    for name, big in (("classic", False), ("big", True)):
        with tifffile.TiffFile(tmp_path / f"{name}.ome.tif") as tif:
            assert tif.is_bigtiff is big
            np.testing.assert_array_equal(tif.asarray(), _merged(store))
