"""Trainer: overfitting a tiny set, exact resume, checkpoints/metrics, refusals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.manifest import create_manifest, load_manifest, manifest_hash
from orpam_pipeline.models import load_checkpoint
from orpam_pipeline.simulate import SimulationParams, write_simulation
from orpam_pipeline.train import TrainConfig, train

SMALL = {"base_channels": 4}


def test_overfits_a_tiny_set(tmp_path: Path) -> None:
    write_simulation(tmp_path / "data", SimulationParams.randomised(21, frames=4, height=32, width=64))
    manifest = tmp_path / "m.toml"
    create_manifest(tmp_path / "data" / "scans", manifest, val_fraction=0.0, test_fraction=0.0, seed=0)
    losses: list[float] = []
    config = TrainConfig(epochs=1, batch_size=4, lr=3e-3, crop=32, steps_per_epoch=120, val_pairs=0,
                         augment=False, seed=1)
    started = time.perf_counter()
    result = train(manifest, tmp_path / "run", config, {"base_channels": 8},
                   progress=lambda e: losses.append(e["loss"]) if e["event"] == "step" else None)
    elapsed = time.perf_counter() - started
    assert len(losses) == 120 and result.global_step == 120
    late = sum(losses[-10:]) / 10
    assert late < losses[0] / 10, f"loss fell only from {losses[0]:.3f} to {late:.3f}"
    assert elapsed < 60


def test_resume_reproduces_an_uninterrupted_run(sim_manifest: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=2, lr=2e-3, crop=32, steps_per_epoch=3, val_pairs=4, seed=7)
    full = train(sim_manifest, tmp_path / "full", config, SMALL)
    assert full.finished and full.epochs_completed == 2 and full.global_step == 6
    part = train(sim_manifest, tmp_path / "part", config, SMALL, stop_after=1)
    assert not part.finished and part.epochs_completed == 1
    with pytest.raises(OrpamError, match="already holds a training run"):
        train(sim_manifest, tmp_path / "part", config, SMALL)
    resumed = train(sim_manifest, tmp_path / "part", config, SMALL, resume=True)
    assert resumed.finished and resumed.global_step == 6

    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "part" / "last.pt")
    assert a["model_state"].keys() == b["model_state"].keys()
    for key, value in a["model_state"].items():
        assert torch.equal(value, b["model_state"][key]), key
    for key in ("epoch", "global_step", "best_metric"):
        assert a["extra"][key] == b["extra"][key]

    lines = [json.loads(x) for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    full_lines = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    assert [x["val_loss"] for x in lines] == [x["val_loss"] for x in full_lines]
    for key in ("train_loss", "val_ncc", "val_ssim", "val_psnr", "truth_ncc", "truth_ncc_copy_fixed",
                "truth_ncc_unregistered", "val_ncc_unregistered", "lr"):
        assert key in lines[-1], key
    assert (tmp_path / "full" / "best.pt").exists()
    extra = a["extra"]
    assert extra["manifest_sha256"] == manifest_hash(load_manifest(sim_manifest))
    assert extra["train_config"]["seed"] == 7 and set(extra["rng"]) >= {"torch", "numpy", "python"}
    assert "state" in extra["optimizer"] and "last_epoch" in extra["scheduler"]


def test_resume_refuses_another_manifest_or_recipe(sim_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m" / "sim.toml"
    create_manifest(sim_dir / "scans", manifest, val_fraction=0.34, test_fraction=0.0, seed=0)
    config = TrainConfig(epochs=2, batch_size=2, crop=32, steps_per_epoch=1, val_pairs=2)
    train(manifest, tmp_path / "run", config, SMALL, stop_after=1)
    with pytest.raises(OrpamError, match="train config differs .* lr"):
        train(manifest, tmp_path / "run", TrainConfig(**{**config.to_dict(), "lr": 0.5}), SMALL, resume=True)
    with pytest.raises(OrpamError, match="model config differs"):
        train(manifest, tmp_path / "run", config, {"base_channels": 6}, resume=True)
    text = manifest.read_text()
    manifest.write_text(text.replace('split = "val"', 'split = "test"', 1))
    with pytest.raises(OrpamError, match="another manifest") as err:
        train(manifest, tmp_path / "run", config, SMALL, resume=True)
    assert "\n" not in str(err.value)


FLOW_SMALL = {"arch": "pcregnet-flow", "base_channels": 4}


def test_displacement_supervision_and_init(sim_manifest: Path, tmp_path: Path) -> None:
    """Supervised flow training logs the displacement error; --init starts from a checkpoint's weights.

    With frozen batch norm and a negligible learning rate every tensor, running statistics included,
    stays at the init checkpoint's value.
    """
    config = TrainConfig(epochs=1, batch_size=2, crop=32, steps_per_epoch=2, val_pairs=4, lambda_displacement=1.0)
    first = train(sim_manifest, tmp_path / "a", config, FLOW_SMALL)
    record = first.history[-1]
    assert record["val_disp_rms_px"] > 0
    start = load_checkpoint(first.last_checkpoint)
    frozen = TrainConfig(**{**config.to_dict(), "lr": 1e-12, "init": str(first.last_checkpoint),
                            "freeze_batchnorm": True})
    second = train(sim_manifest, tmp_path / "b", frozen, FLOW_SMALL)
    after = load_checkpoint(second.last_checkpoint)
    assert any("running_mean" in key for key in start["model_state"])
    for key, value in start["model_state"].items():
        torch.testing.assert_close(after["model_state"][key], value, rtol=0, atol=1e-6, msg=key)
    moving = train(sim_manifest, tmp_path / "c", TrainConfig(**{**frozen.to_dict(), "freeze_batchnorm": False}),
                   FLOW_SMALL)
    stats = load_checkpoint(moving.last_checkpoint)["model_state"]
    assert any(not torch.equal(stats[k], v) for k, v in start["model_state"].items() if "running_mean" in k)
    assert second.history[0]["val_disp_rms_px"] == pytest.approx(record["val_disp_rms_px"], abs=0.05)
    from orpam_pipeline.io.hashing import sha256_file

    assert after["extra"]["init_sha256"] == sha256_file(first.last_checkpoint)


def test_displacement_supervision_refusals(sim_manifest: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=2, crop=32, steps_per_epoch=1, val_pairs=2, lambda_displacement=1.0)
    with pytest.raises(OrpamError, match="needs a method whose network predicts a displacement"):
        train(sim_manifest, tmp_path / "a", config, SMALL)
    plain = train(sim_manifest, tmp_path / "b", TrainConfig(epochs=1, batch_size=2, crop=32, steps_per_epoch=1,
                                                             val_pairs=2), SMALL)
    with pytest.raises(OrpamError, match="init checkpoint's model config differs in arch"):
        train(sim_manifest, tmp_path / "c", TrainConfig(**{**config.to_dict(), "init": str(plain.last_checkpoint)}),
              FLOW_SMALL)
    with pytest.raises(OrpamError, match="lambda_displacement must not be negative"):
        TrainConfig(lambda_displacement=-1.0)
