"""Refusing work that cannot fit in memory before anything large is allocated."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
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


MALLOC_ARENAS = 2
"""glibc malloc arenas the command line allows (``M_ARENA_MAX``; its default is 8 per core)."""
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process, unless ``MALLOC_ARENA_MAX`` is set; whether it was capped.

    Every thread that allocates (dask's chunk threads, the ingest scorer, zarr's codec threads) gets an
    arena of its own by default, and freed chunk-sized blocks stay spread over them: the resident size of
    `orpam run --method phase` grew from 253 to about 300 MiB between 200 and 1,000 frames of 256²; with two
    arenas it is 189 and 200 MiB, at the same speed. Call it before threads start (the CLI does). A no-op
    off glibc.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, int(arenas)))
