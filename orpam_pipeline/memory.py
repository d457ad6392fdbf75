"""Refusing work that cannot fit in memory before anything large is allocated."""

from __future__ import annotations

from pathlib import Path

import psutil

from orpam_pipeline.errors import ScanError

MEMORY_FACTOR = 8
"""Working copies a block goes through (raw read, float32, split halves, method buffers, outputs)."""


def available_memory() -> int:
    """Bytes of memory the system can give this process now."""
    return int(psutil.virtual_memory().available)


def check_memory(path: Path, nbytes: int, what: str, factor: int = MEMORY_FACTOR) -> None:
    """Raise a one-line ``ScanError`` when ``factor`` copies of ``nbytes`` exceed the available memory."""
    need = int(nbytes) * int(factor)
    have = available_memory()
    if need > have:
        raise ScanError(
            path,
            f"{what} needs {nbytes / 2**20:.1f} MiB (about {need / 2**20:.0f} MiB while processing) but only "
            f"{have / 2**20:.0f} MiB of memory is available; use a smaller --chunk-frames or a machine with more memory",
        )
