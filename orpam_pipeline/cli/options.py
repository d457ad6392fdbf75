"""Option definitions that several commands share, each written once.

Names and help come from the library's declarations (``orpam_pipeline.options``, method settings),
so ``run``, ``register``, ``ingest``, ``evaluate`` and ``train`` spell the same idea the same way.
Values that need checking (device, precision, ``--set``) are checked in the command by the library,
which answers with one line naming the allowed values.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.options import ComputeOptions, RunOptions, ScanOptions, option_help
from orpam_pipeline.register import METHODS
from orpam_pipeline.settings import DEVICES, PRECISIONS, check_device, check_precision


class ScanLinesOpt(str, Enum):
    columns = "columns"
    rows = "rows"


class FirstLineOpt(str, Enum):
    forward = "forward"
    backward = "backward"


def _flag(name: str, help: str, *aliases: str, hidden: bool = False) -> Any:
    return typer.Option(name, *aliases, help=help, hidden=hidden)


SRC = Annotated[Path, typer.Argument(metavar="SRC", help="A scan file or a directory tree of scans.")]
Variable = Annotated[str | None, typer.Option("--variable", "-v", help=option_help(ScanOptions, "variable"))]
ScanLines = Annotated[ScanLinesOpt, typer.Option("--scan-lines", help=option_help(ScanOptions, "scan_lines"))]
FirstLine = Annotated[FirstLineOpt, typer.Option("--first-line", help=option_help(ScanOptions, "first_line"))]
ChunkFrames = Annotated[int | None, typer.Option("--chunk-frames", min=1, help=option_help(ScanOptions, "chunk_frames"))]
DepthAxis = Annotated[int | None, typer.Option("--depth-axis", help=option_help(ScanOptions, "depth_axis"))]
Overwrite = Annotated[bool, _flag("--overwrite", option_help(RunOptions, "overwrite"))]
WaitForLocks = Annotated[bool, _flag("--wait-for-locks", option_help(RunOptions, "wait_for_locks"))]
ReverseBackward = Annotated[bool, _flag("--reverse-backward", option_help(ScanOptions, "reverse_backward"))]
Strict = Annotated[bool, _flag("--strict", option_help(RunOptions, "strict"))]

Method = Annotated[
    str, typer.Option("--method", "-m", metavar="METHOD", help=f"Registration method: {', '.join(METHODS)}.")
]
Settings = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE",
                 help="A setting of the method (repeatable); `orpam info` lists each method's settings."),
]  # fmt: skip
Checkpoint = Annotated[Path | None, typer.Option("--checkpoint", help="Network methods: checkpoint file (default: the shipped one).")]
Device = Annotated[str | None, typer.Option("--device", metavar="|".join(DEVICES), help="Network methods: where the network runs.")]
Precision = Annotated[str | None, typer.Option("--precision", metavar="|".join(PRECISIONS), help="Network methods: numeric precision.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", min=1, help="Network methods: frames per batch.")]
LineProfile = Annotated[bool, _flag("--line-profile", "pcregnet-flow: one displacement profile per row (the field's median along the lines).")]

Scheduler = Annotated[str | None, typer.Option("--scheduler", help=option_help(ComputeOptions, "scheduler"))]
Workers = Annotated[int | None, typer.Option("--workers", min=1, help=option_help(ComputeOptions, "workers"))]
AsJson = Annotated[bool, _flag("--json", "Print the result as JSON on stdout (progress bars are left out).")]


def method_settings(
    names: list[str] | tuple[str, ...],
    pairs: list[str] | None,
    checkpoint: Path | None = None,
    device: str | None = None,
    precision: str | None = None,
    batch_size: int | None = None,
    line_profile: bool = False,
) -> dict[str, Any]:
    """The settings the user gave, typed and checked against what the methods ``names`` declare.

    A key must be declared by at least one of the methods (evaluate hands each method only its own).
    """
    from orpam_pipeline.register import method_class, parse_method_settings

    if device is not None:
        check_device(device)
    if precision is not None:
        check_precision(precision)
    given: dict[str, Any] = {"checkpoint": None if checkpoint is None else str(checkpoint), "device": device,
                             "precision": precision, "batch_size": batch_size,
                             "line_profile": True if line_profile else None}  # fmt: skip
    settings = {k: v for k, v in given.items() if v is not None}
    for pair in pairs or []:
        errors, parsed = [], None
        for name in names:
            try:
                parsed = parse_method_settings(name, [pair])
                break
            except OrpamError as exc:
                errors.append(str(exc))
        if parsed is None:
            raise OrpamError(errors[0] if len(names) == 1 else f"--set {pair!r}: no chosen method has that setting")
        settings.update(parsed)
    for key in settings:
        if not any(_declares(method_class(n), key) for n in names):
            flag = "--" + key.replace("_", "-")
            raise OrpamError(f"{flag} is not a setting of {', '.join(names)}")
    return settings


def _declares(cls: Any, key: str) -> bool:
    from dataclasses import fields

    return cls.settings_type is not None and key in {f.name for f in fields(cls.settings_type)}


def run_options(method: str, settings: dict[str, Any], variable: str | None, scan_lines: ScanLinesOpt,
                first_line: FirstLineOpt, chunk_frames: int | None, depth_axis: int | None,
                overwrite: bool, wait_for_locks: bool = False, *, reverse_backward: bool = False,
                strict: bool = False) -> RunOptions:  # fmt: skip
    """The library's options from the shared CLI options."""
    return RunOptions(variable=variable, scan_lines=scan_lines.value, first_line=first_line.value,
                      chunk_frames=chunk_frames, depth_axis=depth_axis, method=method, settings=settings,
                      overwrite=overwrite, wait_for_locks=wait_for_locks, reverse_backward=reverse_backward,
                      strict=strict)  # fmt: skip


def computing(scheduler: str | None, workers: int | None) -> Any:
    """The compute context for ``--scheduler``/``--workers`` (local threads when neither is given)."""
    from orpam_pipeline.scheduling import compute_context

    return compute_context(scheduler=scheduler, workers=workers)


def split_methods(values: list[str] | None) -> list[str]:
    """Repeatable ``--method`` values, each of which may be a comma list, in order without repeats."""
    out: list[str] = []
    for value in values or []:
        for name in (v.strip() for v in value.split(",")):
            if name and name not in out:
                out.append(name)
    return out
