"""PCReg-Net training loop (paper §4.1): Adam + weight decay, cosine annealing, grad clipping, AMP.

Recipe: Adam (``lr`` 1e-3, ``weight_decay`` 1e-5; the paper's numbers were lost in extraction, these
are our documented choices), cosine annealing of the learning rate from ``lr`` to 0 over all
optimiser steps (``epochs * steps_per_epoch``), gradient-norm clipping at 1.0, batch size 8.

Mixed precision: on CUDA, ``torch.autocast`` with bf16 where the GPU supports it (no GradScaler
needed) else fp16 with a ``GradScaler``; on by default. On the CPU bf16 autocast is possible
(``precision="bf16"``) but off by default: on CPUs without native bf16 matrix units it is slower than
float32 and it changes the numerics. The loss is always computed in float32. On the CPU ``train``
turns on ``torch.set_flush_denormal(True)`` while it runs: denormal gradients and Adam moments
otherwise made steps about 15x slower in our measurements. It is switched back off when ``train``
returns (torch's default; there is no getter to restore a caller's own setting).

Reproducibility: torch, numpy and python RNGs are seeded from ``seed``; batches are a pure function
of ``(seed, epoch, step)`` (see ``train.data``), so resuming from ``last.pt`` reproduces the weights
of an uninterrupted run exactly (on the same device and thread count). Every checkpoint stores the
optimiser, scheduler and scaler states, epoch, global step, RNG states, the manifest hash, the train
config and the best metric; resuming with another manifest or another recipe is refused.

Outputs in ``out_dir``: ``metrics.jsonl`` (one JSON object per epoch), ``last.pt`` (every epoch) and
``best.pt`` (lowest validation loss; training loss when the manifest has no val scans).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.manifest import Manifest, load_manifest, manifest_hash
from orpam_pipeline.metrics import ncc_frames, psnr_frames, ssim_frames
from orpam_pipeline.models.architectures import DEFAULT_ARCH, get_architecture
from orpam_pipeline.store.files import atomic_write
from orpam_pipeline.train.config import RUNTIME_FIELDS, TrainConfig, upgrade_config
from orpam_pipeline.train.data import (
    PairScan,
    ScanPairs,
    TrainPairs,
    ValPair,
    val_pairs,
)
from orpam_pipeline.train.loss import LossWeights, model_loss

Progress = Callable[[dict[str, Any]], None]

LAST, BEST, METRICS = "last.pt", "best.pt", "metrics.jsonl"

@dataclass
class TrainResult:
    """What a training call did and where its outputs are."""

    out_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path
    epochs_completed: int
    global_step: int
    best_metric: float
    history: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = True


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OrpamError("device cuda requested but torch sees no CUDA device")
    return torch.device(name)


def resolve_amp(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = full float32)."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if precision == "fp16":
            return torch.float16
        if precision == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    if precision == "fp16":
        raise OrpamError("precision fp16 needs a CUDA device (use bf16 or fp32 on the CPU)")
    return torch.bfloat16 if precision == "bf16" else None


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """RNG states as plain tensors/lists (checkpoint-safe)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]),
                   "gauss_next": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def _pair_scans(manifest: Manifest, split: str) -> list[PairScan]:
    return [PairScan(s.name, s.resolved_path, s.resolved_truth) for s in manifest.split(split)]


def _nanmean(values: list[float] | np.ndarray) -> float | None:
    """Mean of the finite values, or None (JSON null) when there is none."""
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


def _metrics(pred: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
    """NCC, SSIM and PSNR per image, data range from the reference (docs/metrics.md)."""
    flat = ref.reshape(ref.shape[0], -1)
    rng = flat.max(axis=1) - flat.min(axis=1)
    return {"ncc": ncc_frames(pred, ref), "ssim": ssim_frames(pred, ref, rng), "psnr": psnr_frames(pred, ref, rng)}


def _groups(items: list[ValPair], size: int) -> list[list[ValPair]]:
    """Consecutive validation pairs of one shape, in batches of at most ``size``."""
    out: list[list[ValPair]] = []
    for item in items:
        if out and len(out[-1]) < size and out[-1][0].fixed.shape == item.fixed.shape:
            out[-1].append(item)
        else:
            out.append([item])
    return out


def evaluate(model: torch.nn.Module, items: list[ValPair], device: torch.device, amp: torch.dtype | None,
             weights: LossWeights, batch_size: int = 8) -> dict[str, Any]:
    """Validation loss and metrics of final vs fixed, and vs ``even_true`` where it is known.

    With known displacements, ``val_disp_rms_px`` is the RMS error of the predicted one (pixels).
    Also reports the trivial baselines on the same crops: the unregistered moving image
    (``*_unregistered``) and, against the truth, the fixed image copied into the even slot
    (``truth_*_copy_fixed``): a network that merely copies the fixed image scores well against the
    fixed image but no better than ``truth_ncc_copy_fixed`` against the truth.
    """
    model.eval()
    arch = getattr(getattr(model, "config", None), "arch", None)
    losses: list[float] = []
    preds: list[np.ndarray] = []
    disp_sq: list[float] = []
    with torch.no_grad():
        for group in _groups(items, batch_size):
            m = torch.from_numpy(np.stack([p.moving for p in group])[:, None]).to(device)
            f = torch.from_numpy(np.stack([p.fixed for p in group])[:, None]).to(device)
            known = all(p.displacement is not None for p in group)
            target = torch.from_numpy(np.stack([p.displacement for p in group])[:, None]).to(device) if known else None
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                outputs = model(m, f)
            loss, _ = model_loss(outputs, f, weights, target, arch)
            final = outputs[0]
            losses.extend([float(loss)] * len(group))
            preds.extend(final.float().cpu().numpy()[:, 0].astype(np.float64))
            if target is not None and len(outputs) == 3 and "displacement" in outputs[2]:
                err = outputs[2]["displacement"].float() - target
                disp_sq.extend((err**2).mean(dim=(1, 2, 3)).cpu().tolist())
    pred = np.stack(preds)
    moving = np.stack([p.moving for p in items]).astype(np.float64)
    fixed = np.stack([p.fixed for p in items]).astype(np.float64)
    out: dict[str, Any] = {"val_loss": _nanmean(losses)}
    for k, v in _metrics(pred, fixed).items():
        out[f"val_{k}"] = _nanmean(v)
    for k, v in _metrics(moving, fixed).items():
        out[f"val_{k}_unregistered"] = _nanmean(v)
    with_truth = [i for i, p in enumerate(items) if p.truth is not None]
    if with_truth:
        truth = np.stack([items[i].truth for i in with_truth]).astype(np.float64)  # type: ignore[misc]
        for label, images in (("", pred[with_truth]), ("_unregistered", moving[with_truth]),
                              ("_copy_fixed", fixed[with_truth])):
            scores = _metrics(images, truth)
            out[f"truth_ncc{label}"] = _nanmean(scores["ncc"])
            out[f"truth_psnr{label}"] = _nanmean(scores["psnr"])
        out["truth_pairs"] = len(with_truth)
    if disp_sq:
        out["val_disp_rms_px"] = math.sqrt(float(np.mean(disp_sq)))
    out["val_pairs"] = len(items)
    return out


def _build_model(model_config: Any) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model for a config object or dict (None = PCReg-Net defaults); returns it and its plain config.

    The architecture follows the config's type, or a dict's ``arch`` key (absent = ``pcregnet``).
    """
    from orpam_pipeline.models.checkpoint import build_model, config_from_dict
    from orpam_pipeline.models.pcregnet import PCRegNetConfig

    try:
        if model_config is None:
            cfg = PCRegNetConfig()
        elif isinstance(model_config, dict):
            cfg = config_from_dict(model_config)
        else:
            cfg = model_config
        return build_model(cfg), cfg.to_dict()
    except (TypeError, ValueError) as exc:
        raise OrpamError(f"model config: {exc}") from None


_TRAIN_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}


def _config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Names of run-defining TrainConfig fields that differ.

    A field missing from a checkpoint written before it existed counts as its default value.
    """
    keys = (set(saved) | set(current)) - RUNTIME_FIELDS
    return sorted(k for k in keys if saved.get(k, _TRAIN_DEFAULTS.get(k)) != current.get(k))


def _write_metrics(path: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite ``metrics.jsonl`` from the history (atomic), one JSON object per line."""
    atomic_write(path, "".join(json.dumps(h, allow_nan=False) + "\n" for h in history))


def _finite_or_none(record: dict[str, Any]) -> dict[str, Any]:
    """Replace non-finite floats by None so the record is valid JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def train(
    manifest_path: Path | str,
    out_dir: Path | str,
    config: TrainConfig | None = None,
    model_config: Any = None,
    resume: bool = False,
    progress: Progress | None = None,
    allow_outside_root: bool = False,
    stop_after: int | None = None,
) -> TrainResult:
    """Train PCReg-Net on the train split of a manifest, validating on its val split every epoch.

    ``model_config`` picks the architecture: a ``PCRegNetConfig`` (default) or ``PCRegNetFlowConfig``
    object, or a dict with an optional ``arch`` key (``pcregnet`` or ``pcregnet-flow``).

    ``resume=True`` continues from ``out_dir/last.pt`` (same manifest hash, model config and
    recipe; only device, num_workers and cache_frames may change). ``stop_after`` ends this call
    after that many epochs (for wall-time-limited jobs; resume later to continue). ``progress``
    receives ``{"event": "step", ...}`` and ``{"event": "epoch", ...}`` dicts.
    """
    config = config or TrainConfig()
    out = Path(out_dir)
    manifest = load_manifest(manifest_path, allow_outside_root=allow_outside_root)
    mhash = manifest_hash(manifest)
    train_scans = _pair_scans(manifest, "train")
    if not train_scans:
        raise OrpamError(f"{manifest_path}: no scan in the train split")
    last_path = out / LAST
    if not resume and last_path.exists():
        raise OrpamError(f"{out}: already holds a training run ({LAST}); pass resume or choose another folder")

    device = resolve_device(config.device)
    amp = resolve_amp(config.precision, device)
    flush = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        return _run(manifest, mhash, out, config, device, amp, model_config, resume, progress, stop_after)
    finally:
        if flush:
            torch.set_flush_denormal(False)


def _run(manifest: Manifest, mhash: str, out: Path, config: TrainConfig, device: torch.device,
         amp: torch.dtype | None, model_config: Any, resume: bool, progress: Progress | None,
         stop_after: int | None) -> TrainResult:
    """The body of :func:`train` once inputs are validated (see there)."""
    train_scans = _pair_scans(manifest, "train")
    last_path, best_path, metrics_path = out / LAST, out / BEST, out / METRICS
    weights = config.loss_weights()
    seed_everything(config.seed)
    model, model_cfg = _build_model(model_config)
    supervised = config.lambda_displacement > 0
    if supervised and not get_architecture(model_cfg.get("arch", DEFAULT_ARCH)).displacement:
        raise OrpamError(f"lambda_displacement needs a method whose network predicts a displacement, not "
                         f"{model_cfg.get('arch', DEFAULT_ARCH)}")  # fmt: skip
    init_sha = None
    if config.init and not resume:
        init_sha = _load_init(model, model_cfg, Path(config.init))
    model.to(device)

    common = dict(scan_lines=manifest.scan_lines, first_line=manifest.first_line, cache_frames=config.cache_frames)
    train_pairs = ScanPairs(train_scans, **common)  # type: ignore[arg-type]
    data = TrainPairs(train_pairs, config.crop, config.batch_size, config.steps_per_epoch, config.seed, config.augment,
                      displacement=supervised, shift=config.shift)
    val_scans = _pair_scans(manifest, "val")
    val_items: list[ValPair] = []
    if val_scans and config.val_pairs:
        vp = ScanPairs(val_scans, **common)  # type: ignore[arg-type]
        lacking = vp.without_displacement() if supervised else []
        val_items = val_pairs(vp, config.crop, config.val_pairs)
        vp.close()
        if lacking:
            raise OrpamError(f"{lacking[0]}: displacement supervision needs a truth displacement for every val scan too")

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * data.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)

    start_epoch, global_step = 0, 0
    best = math.inf
    history: list[dict[str, Any]] = []
    if resume:
        from orpam_pipeline.models import load_checkpoint

        ckpt = load_checkpoint(last_path)
        extra = ckpt["extra"]
        if extra.get("manifest_sha256") != mhash:
            raise OrpamError(f"{last_path}: was trained on another manifest (hash {str(extra.get('manifest_sha256'))[:12]}…, now {mhash[:12]}…); refusing to resume")
        if ckpt["model_config"] != model_cfg:
            raise OrpamError(f"{last_path}: model config differs from the checkpoint's; refusing to resume")
        diff = _config_differences(upgrade_config(extra.get("train_config", {})), config.to_dict())
        if diff:
            raise OrpamError(f"{last_path}: train config differs from the checkpoint's in {', '.join(diff)}; refusing to resume")
        model.load_state_dict(ckpt["model_state"])
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        scaler.load_state_dict(extra["scaler"])
        start_epoch, global_step = int(extra["epoch"]), int(extra["global_step"])
        best = float(extra["best_metric"])
        history = [dict(h) for h in extra.get("history", [])]
        init_sha = extra.get("init_sha256")
        set_rng_state(extra["rng"])
        _write_metrics(metrics_path, history)
    else:
        out.mkdir(parents=True, exist_ok=True)
        _write_metrics(metrics_path, history)

    end_epoch = config.epochs if stop_after is None else min(config.epochs, start_epoch + max(0, stop_after))
    for epoch in range(start_epoch, end_epoch):
        started = time.perf_counter()
        model.train()
        if config.freeze_batchnorm:
            _freeze_batchnorm(model)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        for step, batch in enumerate(_batches(data, epoch, config.num_workers, device)):
            moving, fixed, *target = (b.to(device, non_blocking=True) for b in batch)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                outputs = model(moving, fixed)
            loss, _ = model_loss(outputs, fixed, weights, target[0] if target else None, model_cfg.get("arch"))
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            global_step += 1
            loss_sum += loss.detach().double()
            if progress is not None:
                progress({"event": "step", "epoch": epoch + 1, "step": step + 1,
                          "steps": data.steps_per_epoch, "global_step": global_step, "loss": float(loss.detach())})
        train_loss = float(loss_sum) / data.steps_per_epoch
        record: dict[str, Any] = {"epoch": epoch + 1, "global_step": global_step, "lr": scheduler.get_last_lr()[0],
                                  "train_loss": train_loss}
        if val_items:
            record.update(evaluate(model, val_items, device, amp, weights, config.batch_size))
        record["seconds"] = time.perf_counter() - started
        record = _finite_or_none(record)
        metric = record.get("val_loss") if val_items else train_loss
        metric = math.inf if metric is None else float(metric)
        improved = metric < best
        if improved:
            best = metric
        record["best"] = improved
        history.append(record)
        extra = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": epoch + 1,
            "global_step": global_step,
            "rng": rng_state(),
            "manifest_sha256": mhash,
            "manifest_name": manifest.name,
            "init_sha256": init_sha,
            "train_config": config.to_dict(),
            "crop": list(data.crop),
            "normalisation": "models.normalise: fixed image p0.5..p99.5 per frame",
            "best_metric": best,
            "best_metric_name": "val_loss" if val_items else "train_loss",
            "history": history,
        }
        _save(last_path, model, model_cfg, extra)
        if improved:
            _save(best_path, model, model_cfg, extra)
        _write_metrics(metrics_path, history)
        if progress is not None:
            progress({"event": "epoch", **record})
    train_pairs.close()
    return TrainResult(
        out_dir=out, last_checkpoint=last_path, best_checkpoint=best_path, epochs_completed=end_epoch,
        global_step=global_step, best_metric=best, history=history, finished=end_epoch >= config.epochs,
    )


def _batches(data: TrainPairs, epoch: int, num_workers: int, device: torch.device) -> Any:
    """Batches of one epoch, in the main process or through a DataLoader with worker processes."""
    if num_workers == 0:
        return (data.batch(epoch, step) for step in range(data.steps_per_epoch))
    data.set_epoch(epoch)
    return torch.utils.data.DataLoader(
        data, batch_size=data.batch_size, shuffle=False, num_workers=num_workers, pin_memory=device.type == "cuda",
        drop_last=False,
    )


def _freeze_batchnorm(model: torch.nn.Module) -> None:
    """Put every batch-norm layer in evaluation mode (running statistics, no updates)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def _load_init(model: torch.nn.Module, model_cfg: dict[str, Any], path: Path) -> str:
    """Load a checkpoint's weights into ``model`` for fine-tuning; returns the file's sha256.

    The checkpoint must hold the same architecture and model config (anything else would load
    partially or into the wrong layers).
    """
    from orpam_pipeline.io.hashing import sha256_file
    from orpam_pipeline.models import load_checkpoint

    ckpt = load_checkpoint(path)
    if ckpt["model_config"] != model_cfg:
        changed = sorted(k for k in set(ckpt["model_config"]) | set(model_cfg)
                         if ckpt["model_config"].get(k) != model_cfg.get(k))
        raise OrpamError(f"{path}: init checkpoint's model config differs in {', '.join(changed)}")
    model.load_state_dict(ckpt["model_state"])
    return sha256_file(path)


def _save(path: Path, model: torch.nn.Module, model_cfg: dict[str, Any], extra: dict[str, Any]) -> None:
    """Checkpoint through the code-free writer (atomic)."""
    from orpam_pipeline.models import save_checkpoint

    save_checkpoint(path, model_config=model_cfg, model_state=model.state_dict(), extra=extra)
