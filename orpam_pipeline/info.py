"""What this installation can do: version, devices and registration methods."""

from __future__ import annotations

import platform
from typing import Any

from orpam_pipeline import __version__
from orpam_pipeline.register import METHODS, get_method
from orpam_pipeline.register.pcregnet import PCRegNetMethod, cpu_has_fast_bf16


def devices() -> list[dict[str, Any]]:
    """CPU (with its vector capability) and every CUDA device torch sees."""
    import torch

    found: list[dict[str, Any]] = [
        {
            "device": "cpu",
            "name": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "capability": torch.backends.cpu.get_cpu_capability(),
            "bf16": cpu_has_fast_bf16(),
        }
    ]
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        found.append(
            {"device": f"cuda:{i}", "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
             "bf16": torch.cuda.is_bf16_supported()}
        )  # fmt: skip
    return found


def method_info(name: str) -> dict[str, Any]:
    method = get_method(name)
    entry: dict[str, Any] = {"name": name, "kind": method.kind, "description": method.description,
                             "displacement": method.displacement, "parameters": 0}  # fmt: skip
    if isinstance(method, PCRegNetMethod):
        from orpam_pipeline.models.checkpoint import build_model, config_arch, load_checkpoint
        from orpam_pipeline.models.pcregnet import count_parameters

        path = method.settings.checkpoint
        entry["checkpoint"] = path
        entry["checkpoint_sha256"] = method.checkpoint_sha256()
        if entry["checkpoint_sha256"] is not None:
            config = load_checkpoint(path)["model_config"]
            entry["arch"] = config_arch(config)
            entry["parameters"] = count_parameters(build_model(config))
    return entry


def collect() -> dict[str, Any]:
    import torch

    return {
        "version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "devices": devices(),
        "methods": [method_info(name) for name in METHODS],
    }
