"""Stores are OME-Zarr 0.5: validated by ome-zarr-models, read by ome-zarr, napari-ome-zarr and xarray."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from ome_zarr_models.v05.image import Image
from skimage.measure import block_reduce
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.store.layout import LAYOUT_ATTR, STORE_NAME
from orpam_pipeline.store.ngff import default_levels, halve, level_shape
from orpam_pipeline.store.to_xarray import open_dataset, open_image

IMAGES = ("frames", "registered_even", "merged")


def _run(tmp_path, frames: np.ndarray, *args: str) -> zarr.Group:
    src = tmp_path / "src" / "s.npy"
    src.parent.mkdir(parents=True, exist_ok=True)
    np.save(src, frames)
    res = CliRunner().invoke(app, ["run", str(src), str(tmp_path / "out"), *args])
    assert res.exit_code == 0, res.output
    return zarr.open_group(tmp_path / "out" / "s" / STORE_NAME, mode="r")


@pytest.fixture(scope="module")
def physical_store(tmp_path_factory, small_sim) -> zarr.Group:
    """The issue's case: ``--pixel-size 2.5 --frame-interval 0.5``, with one lower level."""
    return _run(tmp_path_factory.mktemp("ngff"), small_sim.frames[:6], "--pixel-size", "2.5", "--frame-interval", "0.5",
                "--levels", "1")  # fmt: skip


def _napari_layer(path: str) -> tuple:
    from napari_ome_zarr._reader import napari_get_reader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = napari_get_reader(path)
        assert reader is not None, f"napari-ome-zarr does not read {path}"
        [layer] = reader(path)
    return layer


def test_every_image_validates_as_ome_zarr_0_5(physical_store):
    root = physical_store.store.root
    for name in IMAGES:
        image = Image.from_zarr(zarr.open_group(root / name, mode="r"))
        [multiscale] = image.attributes.ome.multiscales
        assert [a.name for a in multiscale.axes] == ["t", "y", "x"]
        assert [d.path for d in multiscale.datasets] == ["0", "1"]


def test_ome_zarr_reader_gives_axes_units_and_scale(physical_store):
    root = physical_store.store.root
    [node] = list(Reader(parse_url(str(root / "merged")))())
    assert [d.shape for d in node.data] == [(6, 128, 96), (6, 64, 48)]
    axes = node.metadata["axes"]
    assert [(a["name"], a["type"], a.get("unit")) for a in axes] == [
        ("t", "time", "second"), ("y", "space", "micrometer"), ("x", "space", "micrometer")]  # fmt: skip
    assert node.metadata["coordinateTransformations"][0] == [{"type": "scale", "scale": [0.5, 2.5, 2.5]}]
    np.testing.assert_array_equal(np.asarray(node.data[0]), physical_store["merged/0"][:])


def test_napari_reader_places_merged_and_the_backward_columns(physical_store):
    root = physical_store.store.root
    data, kwargs, kind = _napari_layer(str(root / "merged"))
    assert kind == "image" and [d.shape for d in data] == [(6, 128, 96), (6, 64, 48)]
    assert list(kwargs["scale"]) == [0.5, 2.5, 2.5]
    assert tuple(kwargs["axis_labels"]) == ("t", "y", "x")
    data, kwargs, _ = _napari_layer(str(root / "registered_even"))
    assert list(kwargs["scale"]) == [0.5, 2.5, 5.0]  # every other line: twice the line pitch
    [node] = list(Reader(parse_url(str(root / "registered_even")))())
    translation = node.metadata["coordinateTransformations"][0][1]  # napari-ome-zarr reads only the scale
    assert translation == {"type": "translation", "translation": [0.0, 0.0, 2.5]}  # backward lines at odd columns


def test_xarray_opens_each_single_level_image_and_the_displacement(tmp_path, small_sim):
    group = _run(tmp_path, small_sim.frames[:4])
    root = str(group.store.root)
    for name in IMAGES:
        ds = xr.open_zarr(root, group=name, consolidated=False)
        assert ds["0"].dims == ("t", "y", "x")
        np.testing.assert_array_equal(ds["0"].values, group[f"{name}/0"][:])
    top = xr.open_zarr(root, consolidated=False)
    assert list(top.data_vars) == ["displacement"] and top["displacement"].dims == ("t", "y")
    image = Image.from_zarr(zarr.open_group(group.store.root / "merged", mode="r"))
    axes = image.attributes.ome.multiscales[0].axes
    assert all(a.unit is None for a in axes)  # nothing known: no invented micrometres


def test_lower_levels_are_block_means_and_chunking_does_not_change_them(tmp_path, small_sim):
    frames = small_sim.frames[:5]
    stores = [_run(tmp_path / str(c), frames, "--levels", "2", "--chunk-frames", str(c)) for c in (1, 5)]
    for name in IMAGES:
        full = stores[0][f"{name}/0"][:]
        np.testing.assert_allclose(stores[0][f"{name}/1"][:], block_reduce(full, (1, 2, 2), np.mean), rtol=1e-6)
        for level in (0, 1, 2):
            np.testing.assert_array_equal(stores[0][f"{name}/{level}"][:], stores[1][f"{name}/{level}"][:])


def test_odd_sizes_repeat_the_edge_and_default_levels_start_above_2048():
    block = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    half = halve(block)
    assert half.shape == (2, 3, 2) == level_shape(block.shape, ("t", "y", "x"), 1)
    padded = np.pad(block, ((0, 0), (0, 1), (0, 1)), mode="edge")
    np.testing.assert_array_equal(half, block_reduce(padded, (1, 2, 2), np.mean))
    assert default_levels(2048, 2048) == 0 and default_levels(4096, 4096) == 2 and default_levels(3000, 100) == 2


def test_xarray_helper_gives_physical_coordinates_at_every_level(physical_store):
    root = physical_store.store.root
    merged = open_image(root, "merged")
    np.testing.assert_array_equal(merged.values, physical_store["merged/0"][:])
    np.testing.assert_allclose(merged["x"].values, 2.5 * np.arange(96))
    np.testing.assert_allclose(merged["t"].values, 0.5 * np.arange(6))
    assert merged["y"].attrs["units"] == "micrometer" and merged["t"].attrs["units"] == "second"
    coarse = open_image(root, "merged", level=1)
    np.testing.assert_allclose(coarse["y"].values, 1.25 + 5.0 * np.arange(64))
    ds = open_dataset(root)
    assert ds["registered_even"].dims == ("t", "y", "x_even") and ds["displacement"].dims == ("t", "y")
    np.testing.assert_allclose(ds["x_even"].values, merged["x"].values[1::2])
    np.testing.assert_array_equal(ds["merged"].sel(x=ds["x_even"]).values, ds["registered_even"].values)


def test_a_store_of_the_flat_layout_is_refused_until_overwritten(tmp_path, small_sim):
    group = _run(tmp_path, small_sim.frames[:4])
    writable = zarr.open_group(group.store.root, mode="r+")
    del writable.attrs[LAYOUT_ATTR]
    runner = CliRunner()
    for args in (["report", str(group.store.root)], ["run", str(tmp_path / "src" / "s.npy"), str(tmp_path / "out")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 1 and "store layout 1" in res.output and "--overwrite" in res.output, res.output
        assert "Traceback" not in res.output
    res = runner.invoke(app, ["run", str(tmp_path / "src" / "s.npy"), str(tmp_path / "out"), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert zarr.open_group(group.store.root, mode="r").attrs[LAYOUT_ATTR] == 2


def test_depth_map_and_volumes_are_images_with_a_depth_axis(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", str(tmp_path / "sim"), "--raw", "--frames", "3", "--size", "48", "32",
                              "--depth-samples", "48", "--seed", "8"])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["run", str(tmp_path / "sim" / "scans"), str(tmp_path / "out"), "--axes", "tzyx",
                              "--keep-volume", "--sampling-rate", "100", "--speed-of-sound", "1500",
                              "--depth-range", "8:40", "--pixel-size", "3"])  # fmt: skip
    assert res.exit_code == 0, res.output
    root = tmp_path / "out" / "sim-0008" / STORE_NAME
    for name, axes in (("depth_map", ["t", "y", "x"]), ("volume", ["t", "z", "y", "x"]),
                       ("volume_registered", ["t", "z", "y", "x"])):  # fmt: skip
        [multiscale] = Image.from_zarr(zarr.open_group(root / name, mode="r")).attributes.ome.multiscales
        assert [a.name for a in multiscale.axes] == axes
    [node] = list(Reader(parse_url(str(root / "volume")))())
    scale, shift = node.metadata["coordinateTransformations"][0]
    assert scale["scale"] == [1.0, 15.0, 3.0, 3.0]  # 1500 m/s / 100 MHz = 15 µm per sample; no frame interval
    assert shift["translation"] == [0.0, 8 * 15.0, 0.0, 0.0]  # the kept window starts at sample 8
    assert [a.get("unit") for a in node.metadata["axes"]] == [None, "micrometer", "micrometer", "micrometer"]
