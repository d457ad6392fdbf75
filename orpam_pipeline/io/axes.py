"""``--axes``: the user's names for the axes of a stored array, and the orientation they imply.

Letters, one per axis in the order the user sees the array (NumPy order for .npy/.npz/HDF5/TIFF and
headerless binary files, MATLAB order for .mat): ``t`` frame, ``y`` position along a scan line (fast
axis), ``x`` line index, ``z`` depth sample. ``y`` and ``x`` are required, each letter appears at most
once. The pipeline orientation is ``(t, y, x, z)`` with the absent letters left out.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import OrpamError, ScanError

LETTERS = "tyxz"
"""Every axis name, in pipeline order."""
REQUIRED = "yx"


def check_axes(axes: str) -> str:
    """``axes`` lower-cased when it is a valid name string; a one-line error naming the problem otherwise."""
    text = str(axes).strip().lower()
    bad = sorted({c for c in text if c not in LETTERS})
    if not text or bad:
        what = f"unknown letter(s) {', '.join(map(repr, bad))}" if bad else "no letters"
        raise OrpamError(f"--axes {axes!r}: {what}; use t (frame), y (along a line), x (line index), z (depth)")
    repeated = sorted({c for c in text if text.count(c) > 1})
    if repeated:
        raise OrpamError(f"--axes {axes!r}: {', '.join(map(repr, repeated))} named more than once")
    missing = [c for c in REQUIRED if c not in text]
    if missing:
        raise OrpamError(f"--axes {axes!r}: needs both y and x (missing {', '.join(missing)})")
    return text


def user_order(ndim: int, column_major: bool) -> tuple[int, ...]:
    """Stored axis of each axis the user sees (reversed when the file is column-major)."""
    return tuple(range(ndim))[::-1] if column_major else tuple(range(ndim))


def axes_perm(path: Path, axes: str, user_shape: tuple[int, ...], column_major: bool) -> tuple[int, ...]:
    """Stored axis of each pipeline axis ``(t, y, x, z)`` named in ``axes``, checked against the array."""
    axes = check_axes(axes)
    if len(axes) != len(user_shape):
        raise ScanError(
            path,
            f"--axes {axes} names {len(axes)} axes but the array has {len(user_shape)}: shape "
            f"{tuple(int(s) for s in user_shape)}",
        )
    stored = user_order(len(user_shape), column_major)
    return tuple(stored[axes.index(c)] for c in LETTERS if c in axes)


def pipeline_letters(ndim: int, frame_axis: int | None, depth: int | None) -> str:
    """Names of the pipeline axes as the frame plan reads them (depth where reduced, then t, y, x)."""
    letters = list("tyx" if ndim - (depth is not None) == 3 else "yx")
    if depth is not None:
        letters.insert(depth, "z")
    return "".join(letters)


def named_axes(letters: str, perm: tuple[int, ...], column_major: bool) -> str:
    """The pipeline axes' ``letters`` written in the user's order of the stored array."""
    stored = user_order(len(perm), column_major)
    by_stored = {perm[i]: c for i, c in enumerate(letters)}
    return "".join(by_stored[s] for s in stored)


def swap_lines(axes: str) -> str:
    """The names after ``--scan-lines rows`` transposed the frames: y and x trade places."""
    return axes.translate(str.maketrans("yx", "xy"))
