"""Code-free checkpoints: only tensors and plain containers are written or read back.

Loading uses ``torch.load(..., weights_only=True)``, so a file carrying pickled
objects is refused before any of its code can run.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from ..errors import OrpamError
from ..io import sha256_file
from .architectures import ARCHITECTURES, DEFAULT_ARCH

FORMAT = "orpam-pcregnet"
VERSION = 1

__all__ = ["FORMAT", "VERSION", "build_model", "config_arch", "config_from_dict", "export_model",
           "load_checkpoint", "load_model", "save_checkpoint", "sha256_file"]

_SCALARS = (int, float, str, bool, type(None))


def _plain(value: Any, where: str) -> Any:
    """Return ``value`` as plain containers (dict/list/tuple) of CPU tensors and scalars.

    Anything else raises ValueError naming the offending location, so a checkpoint can
    never depend on importing project code to be read.
    """
    if type(value) in _SCALARS:
        return value
    if type(value) in (torch.Tensor, torch.nn.Parameter):
        return value.detach().cpu()
    if type(value) in (dict, OrderedDict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if type(key) not in (str, int):
                raise ValueError(f"{where}: key {key!r} is a {type(key).__name__}, not str or int")
            out[key] = _plain(item, f"{where}[{key!r}]")
        return out
    if type(value) in (list, tuple):
        items = [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if type(value) is list else tuple(items)
    raise ValueError(
        f"{where} is a {type(value).__name__}; checkpoints hold only tensors and plain containers"
    )


def save_checkpoint(
    path: str | Path,
    *,
    model_config: dict[str, Any],
    model_state: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (temporary file in the same folder, then ``os.replace``).

    Raises ValueError if any value is not a tensor, int, float, str, bool, None or a
    dict/list/tuple of those.
    """
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": _plain(model_config, "model_config"),
        "model_state": _plain(model_state, "model_state"),
        "extra": _plain(extra or {}, "extra"),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_unsafe_content(err: Exception) -> bool:
    """Whether a load error is torch's weights-only unpickler refusing a pickled global.

    Any class, function or callable (``__reduce__``) in a pickle is referenced through a
    GLOBAL opcode, which the weights-only unpickler names in its message.
    """
    return isinstance(err, pickle.UnpicklingError) and (
        "GLOBAL" in str(err) or "Unsupported global" in str(err)
    )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, never executing pickled code.

    Returns the dict with keys ``format``, ``version``, ``model_config``, ``model_state``
    and ``extra``. Raises OrpamError (one line, naming the file) when the file is missing,
    corrupt, holds non-plain objects, or is not an orpam checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise OrpamError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        if _is_unsafe_content(err):
            raise OrpamError(
                f"{path}: checkpoint contains objects that are not plain tensors/containers "
                "and will not be loaded"
            ) from None
        raise OrpamError(
            f"{path}: checkpoint is corrupt, truncated or not a torch checkpoint "
            f"({type(err).__name__})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise OrpamError(f"{path}: not an orpam PCReg-Net checkpoint")
    if data.get("version") != VERSION:
        raise OrpamError(f"{path}: unsupported checkpoint version {data.get('version')!r}")
    for key in ("model_config", "model_state", "extra"):
        if not isinstance(data.get(key), dict):
            raise OrpamError(f"{path}: checkpoint lacks a {key!r} dict")
    return data


def config_arch(config: dict[str, Any]) -> str:
    """The architecture a stored model config describes (``pcregnet`` when it names none)."""
    return str(config.get("arch", DEFAULT_ARCH))


def config_from_dict(config: dict[str, Any]) -> Any:
    """The config object of the architecture named by ``config["arch"]`` (ValueError when unknown)."""
    arch = config_arch(config)
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})")
    cls = ARCHITECTURES[arch].config_class()
    values = dict(config) if arch != DEFAULT_ARCH else {k: v for k, v in config.items() if k != "arch"}
    return cls.from_dict(values)


def build_model(config: Any) -> torch.nn.Module:
    """A fresh model for a config object or a stored config dict of any known architecture."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    for arch in ARCHITECTURES.values():
        if type(config) is arch.config_class():
            return arch.model_class()(config)
    raise ValueError(f"not a model config: {type(config).__name__}")


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build the model (any architecture in ``models.architectures``) from a checkpoint's config and weights, in eval mode.

    Returns ``(model, checkpoint)`` where ``checkpoint`` is :func:`load_checkpoint`'s dict.
    """
    data = load_checkpoint(path)
    arch = config_arch(data["model_config"])
    try:
        model = build_model(data["model_config"])
        model.load_state_dict(data["model_state"], strict=True)
    except (ValueError, TypeError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OrpamError(f"{Path(path)}: checkpoint does not match {arch} ({first})") from None
    return model.to(device).eval(), data


EXPORT_KEYS = ("epoch", "global_step", "manifest_sha256", "manifest_name", "train_config", "crop",
               "normalisation", "best_metric", "best_metric_name", "history", "init_sha256")


def export_model(src: str | Path, dst: str | Path, half: bool = False) -> Path:
    """Write an inference-only copy of a training checkpoint: weights, config and provenance.

    Optimizer, scheduler and RNG states are dropped (they are only needed to resume training),
    which roughly thirds the file and keeps what a user needs to know where the model came from.
    ``half`` stores floating-point weights as float16 (half the file again); :func:`load_model`
    loads them into the float32 model, so inference is unchanged apart from the rounded weights.
    """
    ckpt = load_checkpoint(src)
    extra = {k: v for k, v in (ckpt.get("extra") or {}).items() if k in EXPORT_KEYS}
    extra["exported_from_sha256"] = sha256_file(Path(src))
    state = ckpt["model_state"]
    if half:
        state = {k: v.half() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in state.items()}
        extra["weights_dtype"] = "float16"
    save_checkpoint(dst, model_config=ckpt["model_config"], model_state=state, extra=extra)
    return Path(dst)
