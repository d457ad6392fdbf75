"""``orpam train``: train the network of a learned method on a dataset manifest."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from orpam_pipeline.cli.console import deprecated, fmt, friendly, out, progress_bars
from orpam_pipeline.cli.options import Device, Method, Precision
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.register.registry import trained_architecture
from orpam_pipeline.settings import check_device, check_precision

_AMP_TO_PRECISION = {"off": "fp32", "auto": "auto", "bf16": "bf16", "fp16": "fp16"}


@friendly
def train(
    manifest: Annotated[Path, typer.Argument(metavar="MANIFEST", help="Dataset manifest (.toml).")],
    out_dir: Annotated[Path | None, typer.Argument(metavar="OUT", help="Folder for checkpoints, metrics.jsonl and model.pt.")] = None,
    method: Method = "pcregnet",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 100,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    steps_per_epoch: Annotated[int | None, typer.Option("--steps-per-epoch", min=1, help="Default: one pass over all train frames.")] = None,
    crop: Annotated[int, typer.Option("--crop", min=16, help="Square training crop (pixels of the half-width pair image).")] = 128,
    lr: Annotated[float, typer.Option("--lr")] = 1e-3,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 1e-5,
    lambda_coarse: Annotated[float, typer.Option("--lambda-coarse", help="Weight of the coarse-output loss.")] = 0.5,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Device = None,
    precision: Precision = None,
    base_channels: Annotated[int | None, typer.Option("--base-channels", min=4, help="Network width (pcregnet and pcregnet-flow; paper: 32).")] = None,
    lambda_smooth: Annotated[float, typer.Option("--lambda-smooth", help="pcregnet-flow: displacement smoothness weight.")] = 0.1,
    lambda_intensity: Annotated[float, typer.Option("--lambda-intensity", help="pcregnet-flow: gain/offset smoothness weight.")] = 0.1,
    lambda_displacement: Annotated[float, typer.Option("--lambda-displacement", help="pcregnet-flow: weight of the supervised displacement error; needs truth stores with a displacement (simulated data). 0 = self-supervised.")] = 0.0,
    init: Annotated[Path | None, typer.Option("--init", help="Start from this checkpoint's weights (same architecture) instead of random ones.")] = None,
    shift: Annotated[int, typer.Option("--shift", min=0, help="Augment with random integer shifts of the moving crop along Y of up to this many rows.")] = 0,
    freeze_batchnorm: Annotated[bool, typer.Option("--freeze-batchnorm", help="Keep batch-norm statistics fixed (recommended with --init).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last.pt.")] = False,
    out_old: Annotated[Path | None, typer.Option("--out", "-o", hidden=True)] = None,
    arch_old: Annotated[str | None, typer.Option("--arch", hidden=True)] = None,
    amp_old: Annotated[str | None, typer.Option("--amp", hidden=True)] = None,
) -> None:
    """Train a learned method's network on a manifest's train split, validating every epoch (with ground truth when present)."""
    if out_old is not None:
        deprecated("--out", "a positional OUT")
        out_dir = out_dir or out_old
    if arch_old is not None:
        deprecated("--arch", "--method")
        method = arch_old
    if amp_old is not None:
        deprecated("--amp", "--precision (off is fp32)")
        if amp_old not in _AMP_TO_PRECISION:
            raise OrpamError(f"--amp must be one of {', '.join(_AMP_TO_PRECISION)}, not {amp_old!r}")
        precision = precision or _AMP_TO_PRECISION[amp_old]
    if out_dir is None:
        raise OrpamError("usage: orpam train MANIFEST OUT [options]")
    from orpam_pipeline.models.architectures import get_architecture
    from orpam_pipeline.train.trainer import TrainConfig
    from orpam_pipeline.train.trainer import train as run_training

    arch = get_architecture(trained_architecture(method))
    widths = {"base_channels": base_channels} if base_channels is not None else {}
    if widths and "base_channels" not in {f.name for f in fields(arch.config_class())}:
        raise OrpamError(f"--base-channels does not apply to {method}")
    model_config = arch.config_class()(**widths)
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, steps_per_epoch=steps_per_epoch, crop=crop, lr=lr,
        weight_decay=weight_decay, lambda_coarse=lambda_coarse, seed=seed, device=check_device(device or "auto"),
        precision=check_precision(precision or "auto"), lambda_smooth=lambda_smooth, lambda_intensity=lambda_intensity,
        lambda_displacement=lambda_displacement, init=None if init is None else str(init),
        freeze_batchnorm=freeze_batchnorm, shift=shift,
    )  # fmt: skip
    with progress_bars() as bars:
        epoch_task = bars.add_task("epochs", total=epochs)
        step_task = bars.add_task("  steps", total=None)

        def on_progress(event: dict[str, Any]) -> None:
            if event["event"] == "step":
                bars.update(step_task, completed=event["step"], total=event["steps"],
                            description=f"  epoch {event['epoch']} loss {event['loss']:.4f}")  # fmt: skip
            else:
                bars.update(epoch_task, completed=event["epoch"])
                parts = [f"epoch {event['epoch']}", f"train loss {fmt(event.get('train_loss'))}"]
                for key in ("val_loss", "val_ncc", "truth_ncc", "truth_ncc_copy_fixed", "val_disp_rms_px"):
                    if key in event:
                        parts.append(f"{key} {fmt(event[key])}")
                bars.console.print(", ".join(parts), highlight=False)

        result = run_training(manifest, out_dir, config, model_config, resume=resume, progress=on_progress)
    from orpam_pipeline.models.checkpoint import export_model

    model_path = export_model(result.best_checkpoint, Path(out_dir) / "model.pt")
    out.print(
        f"best checkpoint: {result.best_checkpoint}\nlast checkpoint: {result.last_checkpoint}\n"
        f"inference model: {model_path}  (use: orpam run SRC OUT --method {method} --checkpoint {model_path})",
        highlight=False,
    )
