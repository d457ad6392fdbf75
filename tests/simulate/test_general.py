"""The general training distribution: seed ranges, profile limits, truth, picture scenes, CLI and speed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.evaluate.benchmark import BENCHMARK_SCANS
from orpam_pipeline.geometry import split
from orpam_pipeline.register.apply_displacement import apply_displacement
from orpam_pipeline.simulate import SimulationParams, displacement_field, simulate, write_simulation
from orpam_pipeline.simulate import general
from orpam_pipeline.simulate.general import (
    GAIN_RANGE,
    GAMMA_RANGE,
    MAX_DISPLACEMENT,
    OFFSET_RANGE,
    PROFILE_KINDS,
    TRAIN_SEEDS,
    general_kind,
    general_params,
)
from orpam_pipeline.simulate.images import IMAGE_NAMES, load_image, render_image_scene
from orpam_pipeline.simulate.sequence import steepness

SEEDS = range(TRAIN_SEEDS.start, TRAIN_SEEDS.start + 40)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_training_and_benchmark_seeds_do_not_overlap() -> None:
    bench = {scan.seed for scan in BENCHMARK_SCANS}
    assert bench and not bench & set(TRAIN_SEEDS)
    assert max(bench) < TRAIN_SEEDS.start or min(bench) >= TRAIN_SEEDS.stop
    assert general.benchmark_seeds() == bench


def test_generator_refuses_benchmark_and_outside_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in (BENCHMARK_SCANS[0].seed, TRAIN_SEEDS.start - 1, TRAIN_SEEDS.stop, 0):
        with pytest.raises(OrpamError):
            general_params(seed, frames=2, height=32, width=32)
    monkeypatch.setattr(general, "TRAIN_SEEDS", range(0, 30000))  # even a wrong range keeps them out
    with pytest.raises(OrpamError, match="held-out benchmark"):
        general_params(BENCHMARK_SCANS[-1].seed, frames=2, height=32, width=32)


@pytest.mark.parametrize("kind", PROFILE_KINDS)
def test_every_kind_stays_within_8_px_and_monotone(kind: str) -> None:
    for height in (16, 64, 256):
        for seed in SEEDS[:15]:
            p = general_params(seed, frames=24, height=height, width=16, kind=kind)
            d = displacement_field(p)
            assert np.abs(d).max() <= MAX_DISPLACEMENT
            assert steepness(p) < 0.5
            rows = np.arange(height, dtype=np.float64)
            moved = rows[None, :, None] + (d if d.ndim == 3 else d[..., None])
            assert (np.diff(moved, axis=1) > 0).all()
            along = np.ptp(d, axis=1)
            if kind == "constant":
                assert along.max() < 1e-9
            if kind == "varying" and height == 256:
                slopes = d[:, -1] - d[:, 0] if d.ndim == 2 else d[:, -1, 0] - d[:, 0, 0]
                assert np.ptp(slopes) > 1e-3  # the slope changes over the frames
    assert all(general_params(s, frames=4, height=64, width=16, kind="piecewise").disp_knots for s in SEEDS[:5])


def test_kinds_sizes_and_steep_profiles_all_occur() -> None:
    seeds = range(TRAIN_SEEDS.start, TRAIN_SEEDS.start + 200)
    assert {general_kind(s) for s in seeds} == set(PROFILE_KINDS)
    peaks, changes = [], []
    for s in seeds:
        d = displacement_field(general_params(s, frames=8, height=256, width=16))
        peaks.append(np.abs(d).max())
        changes.append(np.ptp(d, axis=1).max())
    assert min(peaks) < 1.0 and max(peaks) > 7.0
    assert max(changes) > 10.0  # steep: more than 10 px change along the line


def test_appearance_noise_scene_and_jitter_are_wider_than_the_benchmark() -> None:
    ps = [general_params(s, frames=4, height=64, width=64) for s in range(TRAIN_SEEDS.start, TRAIN_SEEDS.start + 200)]
    for name, (lo, hi) in (("gain", GAIN_RANGE), ("gamma", GAMMA_RANGE), ("offset", OFFSET_RANGE)):
        values = np.array([getattr(p, name) for p in ps])
        assert lo <= values.min() and values.max() <= hi
        bench = [getattr(scan.params(frames=2, size=32), name) for scan in BENCHMARK_SCANS]
        assert values.min() < min(bench) and values.max() > max(bench), name
    default = SimulationParams()
    noise = np.array([p.even_shot_noise / default.even_shot_noise for p in ps])
    assert (noise == 0).any() and noise.max() > 3.0
    assert any(p.jittered for p in ps) and not all(p.jittered for p in ps)
    sources = {p.scene_source for p in ps}
    assert "vessels" in sources and len(sources) > 5
    p = ps[0]
    assert SimulationParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p


@pytest.mark.parametrize(
    ("kind", "image", "seed"),
    [("constant", "vessels", 20001), ("linear", "coins", 20002), ("cosine", "retina", 20003),
     ("piecewise", "vessels", 20004), ("varying", "brick", 20005), ("linear", "vessels", 20010)],
)  # fmt: skip
def test_truth_displacement_undoes_what_was_rendered(kind: str, image: str, seed: int) -> None:
    extra = {"jitter_blocks": 3, "jitter_min": 0.5, "jitter_max": 1.5} if seed == 20010 else {}
    p = general_params(seed, frames=3, height=96, width=64, kind=kind, image=image, **extra).ideal()
    sim = simulate(p)
    assert p.jittered or not extra
    np.testing.assert_allclose(sim.displacement, displacement_field(p), atol=1e-4)
    crop = int(np.ceil(np.abs(sim.displacement).max())) + 4
    registered = split(apply_displacement(sim.frames, sim.displacement))[1][:, crop:-crop]
    truth = sim.even_true[:, crop:-crop]
    good = _ncc(registered, truth)
    assert good > 0.98, good
    if np.abs(sim.displacement).max() > 1.0:
        raw = _ncc(split(sim.frames)[1][:, crop:-crop], truth)
        wrong = _ncc(split(apply_displacement(sim.frames, -sim.displacement))[1][:, crop:-crop], truth)
        assert good > raw and good > wrong, (good, raw, wrong)


@pytest.mark.parametrize("name", ["retina", "coins", "text", "brick"])
def test_picture_scene_is_sparse_bright_ridges_and_deterministic(name: str) -> None:
    a = render_image_scene(name, 64, 64, np.random.default_rng(3), margin=8)
    b = render_image_scene(name, 64, 64, np.random.default_rng(3), margin=8)
    c = render_image_scene(name, 64, 64, np.random.default_rng(4), margin=8)
    assert a.base.shape == a.pulsed.shape == (80, 80) and a.base.dtype == np.float32
    assert a.base.tobytes() == b.base.tobytes() and a.pulsed.tobytes() == b.pulsed.tobytes()
    assert not np.array_equal(a.base, c.base)
    assert np.median(a.base) < 0.12 and (a.base > 0.3).mean() < 0.25  # mostly dark
    assert np.percentile(a.base, 99.9) == pytest.approx(0.9, rel=1e-3)  # bright ridges exist
    assert a.pulsed.sum() >= a.base.sum()  # pulsation widens the ridges


def test_picture_scenes_render_in_sequences_deterministically() -> None:
    p = SimulationParams(frames=3, height=48, width=48, seed=20007, scene_source="image:moon")
    x, y = simulate(p), simulate(p)
    assert x.frames.tobytes() == y.frames.tobytes() and x.scene.tobytes() == y.scene.tobytes()
    assert np.ptp(x.scene.mean(axis=(1, 2))) > 0  # flicker and drift still act on picture scenes
    assert set(IMAGE_NAMES) >= {"retina", "camera", "coins", "brick", "moon", "text", "page"}


def test_bad_sources_and_knots_are_refused() -> None:
    with pytest.raises(OrpamError, match="scene_source"):
        SimulationParams(scene_source="image:nothing")
    with pytest.raises(OrpamError, match="disp_knots"):
        SimulationParams(disp_knots=((0.5, 1.0), (0.2, 0.0)))
    with pytest.raises(OrpamError, match="disp_wave_period"):
        SimulationParams(disp_wave_period=0.0)


def test_picture_scene_without_scikit_image_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    load_image.cache_clear()
    for module in ("skimage", "skimage.data", "skimage.filters"):
        monkeypatch.setitem(sys.modules, module, None)
    try:
        with pytest.raises(OrpamError, match=r"orpam-pipeline\[train\]"):
            render_image_scene("coins", 32, 32, np.random.default_rng(0))
    finally:
        load_image.cache_clear()


def test_cli_writes_n_general_scans_and_a_manifest_that_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    out, manifest = tmp_path / "gen", tmp_path / "gen.toml"
    result = runner.invoke(app, ["simulate", str(out), "--general", "--count", "3", "--frames", "3",
                                 "--size", "32", "32", "--manifest", str(manifest)])  # fmt: skip
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (out / "scans").iterdir())
    assert names == [f"sim-{s}.npy" for s in range(TRAIN_SEEDS.start, TRAIN_SEEDS.start + 3)]
    seed = zarr.open_group(out / "truth" / "sim-20001.zarr", mode="r").attrs["params"]["seed"]
    assert seed == 20001
    checked = runner.invoke(app, ["manifest", "check", str(manifest)])
    assert checked.exit_code == 0, checked.output
    refused = runner.invoke(app, ["simulate", str(tmp_path / "x"), "--general", "--seed", str(BENCHMARK_SCANS[0].seed)])
    assert refused.exit_code != 0 and "benchmark" in refused.output
    assert not (tmp_path / "x").exists()
    jitter = runner.invoke(app, ["simulate", str(tmp_path / "y"), "--general", "--jitter-blocks", "3"])
    assert jitter.exit_code != 0 and "--jitter-blocks" in jitter.output


def test_a_few_frame_general_scan_is_fast(tmp_path: Path) -> None:
    write_simulation(tmp_path / "warm", general_params(20020, frames=2, height=32, width=32, image="camera"))
    for seed, image in ((20021, None), (20022, "retina"), (20023, "vessels")):
        start = time.perf_counter()
        write_simulation(tmp_path, general_params(seed, frames=4, height=64, width=64, image=image))
        assert time.perf_counter() - start < 2.0
