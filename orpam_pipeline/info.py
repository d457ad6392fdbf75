"""What this installation can do: version, devices and registration methods."""

from __future__ import annotations

import platform
from typing import Any

from orpam_pipeline import __version__
from orpam_pipeline.register import METHODS, get_method


def devices() -> list[dict[str, Any]]:
    """CPU (with its vector capability) and every CUDA device torch sees."""
    import torch

    from orpam_pipeline.register.pcregnet import cpu_has_fast_bf16

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


def collect() -> dict[str, Any]:
    """Version, Python and torch, devices, and every registered method's declaration."""
    import torch

    return {
        "version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "devices": devices(),
        "methods": [get_method(name).describe() for name in METHODS],
    }
