"""The input formats, declared once in :data:`FORMATS`, and reading one file through them.

A format is a header-only ``inspect`` that yields a :class:`Layout` and an ``open`` that turns the
layout into a :class:`Backend`. Adding a format means one module in ``io/`` and one line in
``FORMATS``; :func:`register_format` adds one at run time (plugins, tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ScanError
from ._base import Backend, FileScanSource, FramePlan, Layout, check_frame_memory, one_line, plan_frames, shape_str
from .axes import axes_perm, named_axes, pipeline_letters
from .binary import RawLayout, inspect_binary, open_binary
from .hdf5 import inspect_hdf5, open_hdf5
from .matlab import inspect_mat, open_mat
from .numpy_files import inspect_npy, inspect_npz, open_npy, open_npz
from .spec import ReadSpec
from .tiff import inspect_tiff, open_tiff


@dataclass(frozen=True)
class Format:
    """One input format: the file suffixes it claims, its header reader and its opener.

    ``readers`` are the ``Layout.reader`` values ``inspect`` yields (provenance records them); a
    layout is opened by the format that lists its reader. ``raw_layout``: the file has no header, so
    ``inspect`` takes the user's :class:`RawLayout` (``--dtype``, ``--shape``, ``--order``) as a third argument.
    """

    name: str
    suffixes: tuple[str, ...]
    inspect: Callable[..., Layout]
    open: Callable[[Layout], Backend]
    readers: tuple[str, ...]
    raw_layout: bool = False

    def __post_init__(self) -> None:
        if not self.suffixes or any(not s.startswith(".") or s != s.lower() for s in self.suffixes):
            raise ValueError(f"format {self.name!r}: suffixes must be lower-case and start with '.', got {self.suffixes}")
        if not self.readers:
            raise ValueError(f"format {self.name!r}: needs at least one reader name")


FORMATS: tuple[Format, ...] = (
    Format("npy", (".npy",), inspect_npy, open_npy, ("npy",)),
    Format("npz", (".npz",), inspect_npz, open_npz, ("npz",)),
    Format("tiff", (".tif", ".tiff"), inspect_tiff, open_tiff, ("tiff",)),
    Format("hdf5", (".h5", ".hdf5"), inspect_hdf5, open_hdf5, ("hdf5",)),
    Format("mat", (".mat",), inspect_mat, open_mat, ("mat-v4", "mat-v5", "mat-v7.3")),
    Format("binary", (".dat", ".bin", ".raw"), inspect_binary, open_binary, ("binary",), raw_layout=True),
)
"""The built-in formats, in the order their suffixes are listed in messages."""

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(s for fmt in FORMATS for s in fmt.suffixes)
"""Suffixes of the built-in formats; :func:`supported_suffixes` adds the registered ones."""

_registered: list[Format] = []


def formats() -> tuple[Format, ...]:
    """The built-in formats followed by those registered at run time."""
    return FORMATS + tuple(_registered)


def _check_clash(fmt: Format, others: tuple[Format, ...]) -> None:
    """Refuse a format sharing a name, suffix or reader with one of ``others``."""
    for other in others:
        for what, mine, theirs in (
            ("name", {fmt.name}, {other.name}),
            ("suffix", set(fmt.suffixes), set(other.suffixes)),
            ("reader", set(fmt.readers), set(other.readers)),
        ):
            if mine & theirs:
                taken = ", ".join(sorted(mine & theirs))
                raise ValueError(f"format {fmt.name!r}: {what} {taken} already belongs to format {other.name!r}")


def _check_formats(fmts: tuple[Format, ...]) -> None:
    for i, fmt in enumerate(fmts):
        _check_clash(fmt, fmts[:i])


_check_formats(FORMATS)


def register_format(fmt: Format) -> None:
    """Read files with ``fmt`` from now on; its name, suffixes and readers must all be new."""
    _check_clash(fmt, formats())
    _registered.append(fmt)


def unregister_format(name: str) -> None:
    """Forget a format added by :func:`register_format`; built-in formats cannot be removed."""
    for i, fmt in enumerate(_registered):
        if fmt.name == name:
            del _registered[i]
            return
    raise KeyError(f"no registered format {name!r}")


def supported_suffixes() -> tuple[str, ...]:
    """Every suffix some format claims, built-in ones first."""
    return tuple(s for fmt in formats() for s in fmt.suffixes)


def format_of(path: Path) -> Format | None:
    """The format claiming the suffix of ``path`` (case-insensitive), or None."""
    suffix = Path(path).suffix.lower()
    return next((fmt for fmt in formats() if suffix in fmt.suffixes), None)


def is_supported(path: Path) -> bool:
    """Whether the suffix (case-insensitive) names a format we read."""
    return format_of(path) is not None


def unsupported_error(path: Path) -> ScanError:
    """The error for a file whose suffix no format claims, listing the supported ones."""
    supported = ", ".join(supported_suffixes())
    return ScanError(path, f"unsupported file type {path.suffix or '(no suffix)'!r} (supported: {supported})")


def inspect_file(path: Path, variable: str | None = None, raw: RawLayout | None = None) -> Layout:
    """Header-only look at one file: which array, its dtype, stored shape and orientation.

    ``raw`` (dtype, shape and order the user gave) is what formats without a header read instead.
    """
    path = Path(path)
    fmt = format_of(path)
    if fmt is None:
        raise unsupported_error(path)
    try:
        return fmt.inspect(path, variable, raw) if fmt.raw_layout else fmt.inspect(path, variable)
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(path, f"cannot read header: {type(exc).__name__}: {one_line(exc)}") from None


def _opener(layout: Layout) -> Callable[[Layout], Backend]:
    """The ``open`` of the format listing ``layout.reader``."""
    fmt = next((f for f in formats() if layout.reader in f.readers), None)
    if fmt is None:
        raise ScanError(layout.path, f"no format declares reader {layout.reader!r}")
    return fmt.open


def plan_file(path: Path, spec: ReadSpec) -> tuple[Layout, FramePlan, str]:
    """A file's layout oriented as ``spec`` says, how frames are read from it, and its axes' names.

    With ``--axes`` the stored axes are put in pipeline order ``(t, y, x, z)``; otherwise the reader's
    orientation applies (``--depth-axis`` counting its axes), as in earlier releases.
    """
    layout = inspect_file(path, spec.variable, spec.raw)
    if spec.axes is not None:
        perm = axes_perm(path, spec.axes, layout.user_shape, layout.column_major)
        layout = replace(layout, perm=perm)
        plan = plan_frames(path, layout.pipeline_shape, len(perm) - 1 if "z" in spec.axes else None)
        letters = "".join(c for c in "tyxz" if c in spec.axes)
    else:
        plan = plan_frames(path, layout.pipeline_shape, spec.depth_axis)
        letters = pipeline_letters(len(layout.perm), plan.frame_axis, plan.depth)
    if plan.depth is not None:
        problem = spec.reduction.check(layout.pipeline_shape[plan.depth])
        if problem is not None:
            raise ScanError(path, f"{problem} (shape {shape_str(layout.user_shape)})")
    return layout, plan, named_axes(letters, layout.perm, layout.column_major)


def open_file(
    path: Path,
    name: str | None = None,
    variable: str | None = None,
    depth_axis: int | None = None,
    verify: bool = True,
    spec: ReadSpec | None = None,
) -> FileScanSource:
    """Open one file as a scan; ``verify`` proves it readable by decoding its first and last frames.

    ``spec`` says how to read it (default: ``variable`` and ``depth_axis`` alone); with ``spec.positions``
    the file is a point scan (``pointscan.py``).
    """
    path = Path(path)
    spec = spec or ReadSpec(variable=variable, depth_axis=depth_axis)
    if spec.positions is not None:
        from .pointscan import open_point_scan

        return open_point_scan(path, name or path.stem, spec, verify)
    layout, plan, axes_used = plan_file(path, spec)
    check_frame_memory(path, layout, plan)
    try:
        backend = _opener(layout)(layout)
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(path, f"cannot open: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    source = FileScanSource(
        name or path.stem, layout, plan, backend, spec.depth_axis, axes=spec.axes, axes_used=axes_used,
        reduction=spec.reduction, order=spec.raw.order if layout.reader == "binary" and spec.raw else None,
    )  # fmt: skip
    if not verify:
        return source
    try:
        source.verify()
    except BaseException:
        source.close()
        raise
    return source
