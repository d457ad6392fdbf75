"""Headerless binary files (``.dat``, ``.bin``, ``.raw``): the user says dtype, shape and memory order.

Nothing in the file says what it holds, so ``--dtype`` and ``--shape`` (in the user's axis order,
the order ``--axes`` names) are required, and the file size must be exactly dtype x shape. ``--order F``
reads column-major files as MATLAB's ``fwrite`` writes them: the shape is then MATLAB's, and without
``--axes`` the MATLAB rule applies (last axis = frames). A column-major file is a C-ordered array of
the reversed shape, so it is stored that way (like MATLAB v7.3 seen through h5py). Reads go through
a memory map opened per block and dropped after it (``MemmapBackend``), so resident memory stays
flat over a long scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OrpamError, ScanError
from ._base import Layout, MemmapBackend, check_dtype, file_size, nbytes_of, one_line
from .hdf5 import matlab_perm

ORDERS = ("C", "F")


def parse_shape(text: str | tuple[int, ...] | list[int] | None) -> tuple[int, ...] | None:
    """``"384,2000,2000"`` (or a list) as a tuple of positive ints; None stays None."""
    if text is None:
        return None
    parts = list(text) if isinstance(text, (tuple, list)) else str(text).split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise OrpamError(f"--shape {text!r}: expected a comma list of sizes, e.g. 384,2000,2000") from None
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise OrpamError(f"--shape {text!r}: need at least two sizes, each at least 1")
    return shape


def parse_dtype(text: str | None) -> np.dtype | None:
    """``"uint16"``, ``"<f4"``, ... as a numeric dtype; None stays None."""
    if text is None:
        return None
    try:
        dtype = np.dtype(str(text))
    except TypeError:
        raise OrpamError(f"--dtype {text!r} is not a NumPy type name (e.g. uint16, int16, float32, >u2)") from None
    if dtype.kind not in "iuf" or dtype.names is not None:
        raise OrpamError(f"--dtype {text!r}: need an integer or real floating type")
    return dtype


@dataclass(frozen=True)
class RawLayout:
    """What a headerless binary file holds, as the user says: dtype, shape (user's order), memory order."""

    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    order: str = "C"

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise OrpamError(f"--order must be C or F, not {self.order!r}")
        parse_dtype(self.dtype)

    def params(self) -> dict[str, Any]:
        return {"order": self.order}


def inspect_binary(path: Path, variable: str | None = None, raw: RawLayout | None = None) -> Layout:
    """The layout the user gave, checked against the file size."""
    size = file_size(path)
    if variable is not None:
        raise ScanError(path, f"a headerless binary file holds one array; variable {variable!r} does not apply")
    if raw is None or raw.dtype is None:
        raise ScanError(path, "a headerless binary file says nothing about its contents: pass --dtype (e.g. --dtype "
                              "uint16) and --shape (e.g. --shape 384,2000,2000, in the order of --axes)")  # fmt: skip
    if raw.shape is None:
        raise ScanError(path, "a headerless binary file needs --shape (comma list in the order of --axes, e.g. 384,2000,2000)")
    dtype = check_dtype(path, parse_dtype(raw.dtype))
    need = nbytes_of(raw.shape, dtype)
    if need != size:
        shape = ",".join(str(s) for s in raw.shape)
        raise ScanError(path, f"file holds {size} bytes but --dtype {dtype} x --shape {shape} is {need} bytes")
    column_major = raw.order == "F"
    stored = tuple(raw.shape[::-1]) if column_major else tuple(raw.shape)
    perm = matlab_perm(len(stored), column_major=True) if column_major else tuple(range(len(stored)))
    return Layout(path, "binary", None, dtype, stored, perm, column_major=column_major)


def open_binary(layout: Layout) -> MemmapBackend:
    """A backend over the file; nothing is mapped until a block is read."""
    try:
        with open(layout.path, "rb"):
            pass
    except OSError as exc:
        raise ScanError(layout.path, f"cannot open: {exc.strerror or one_line(exc)}") from None
    return MemmapBackend(layout.path, layout.source_shape, layout.source_dtype, layout.perm)

