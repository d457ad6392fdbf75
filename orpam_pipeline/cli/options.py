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

from orpam_pipeline.cli.groups import Group
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.options import ComputeOptions, RunOptions, ScanOptions, option_help
from orpam_pipeline.register import METHODS
from orpam_pipeline.report.rendered import FIGURE_MODES
from orpam_pipeline.settings import DEVICES, PRECISIONS, check_device, check_precision


class ScanLinesOpt(str, Enum):
    columns = "columns"
    rows = "rows"


class FirstLineOpt(str, Enum):
    forward = "forward"
    backward = "backward"


class MapMethodOpt(str, Enum):
    envelope = "envelope"
    abs = "abs"
    peak_to_peak = "peak-to-peak"


class BaselineOpt(str, Enum):
    median = "median"
    mean = "mean"
    none = "none"


class OrderOpt(str, Enum):
    C = "C"
    F = "F"


FiguresOpt = Enum("FiguresOpt", {mode: mode for mode in FIGURE_MODES}, type=str)  # type: ignore[misc]


def _flag(name: str, help: str, *aliases: str, hidden: bool = False) -> Any:
    return typer.Option(name, *aliases, help=help, hidden=hidden)


SRC = Annotated[Path, typer.Argument(metavar="SRC", help="A scan file or a directory tree of scans.")]
Variable = Annotated[str | None, typer.Option("--variable", "-v", help=option_help(ScanOptions, "variable"))]
ScanLines = Annotated[ScanLinesOpt, typer.Option("--scan-lines", help=option_help(ScanOptions, "scan_lines"))]
FirstLine = Annotated[FirstLineOpt, typer.Option("--first-line", help=option_help(ScanOptions, "first_line"))]
ChunkFrames = Annotated[int | None, typer.Option("--chunk-frames", min=1, help=option_help(ScanOptions, "chunk_frames"))]
DepthAxis = Annotated[int | None, typer.Option("--depth-axis", help=option_help(ScanOptions, "depth_axis"))]


def _scan(name: str, field: str, metavar: str | None = None) -> Any:
    return typer.Option(name, metavar=metavar, help=option_help(ScanOptions, field))


Axes = Annotated[str | None, _scan("--axes", "axes", "<letters>")]
Positions = Annotated[str | None, _scan("--positions", "positions", "<NAME>")]
MapMethod = Annotated[MapMethodOpt, _scan("--map-method", "map_method")]
Baseline = Annotated[BaselineOpt | None, _scan("--baseline", "baseline")]
BaselineWindow = Annotated[str | None, _scan("--baseline-window", "baseline_window", "<A:B>")]
Band = Annotated[str | None, _scan("--band", "band", "<LOW:HIGH>")]
SamplingRate = Annotated[float | None, _scan("--sampling-rate", "sampling_rate", "<MHz>")]
SpeedOfSound = Annotated[float | None, _scan("--speed-of-sound", "speed_of_sound", "<m/s>")]
DepthRange = Annotated[str | None, _scan("--depth-range", "depth_range", "<A:B>")]
Dtype = Annotated[str | None, _scan("--dtype", "dtype", "<type>")]
Shape = Annotated[str | None, _scan("--shape", "shape", "<N,N,...>")]
Order = Annotated[OrderOpt, _scan("--order", "order")]
Overwrite = Annotated[bool, _flag("--overwrite", option_help(RunOptions, "overwrite"))]
WaitForLocks = Annotated[bool, _flag("--wait-for-locks", option_help(RunOptions, "wait_for_locks"))]
ReverseBackward = Annotated[bool, _flag("--reverse-backward", option_help(ScanOptions, "reverse_backward"))]
KeepVolume = Annotated[bool, _flag("--keep-volume", option_help(ScanOptions, "keep_volume"))]
PixelSize = Annotated[str | None, _scan("--pixel-size", "pixel_size", "<µm or Y,X>")]
FrameInterval = Annotated[float | None, _scan("--frame-interval", "frame_interval", "<s>")]
Levels = Annotated[int | None, _scan("--levels", "levels", "<N>")]
Strict = Annotated[bool, _flag("--strict", option_help(RunOptions, "strict"))]
Figures = Annotated[FiguresOpt, typer.Option("--figures", help=option_help(RunOptions, "figures"))]

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
Jobs = Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="With --workers/--scheduler: scans in flight at once (default: one per worker thread, fewer where worker memory holds less than 512 MiB per scan).")]
StorageOption = Annotated[list[str] | None, typer.Option("--storage-option", "-S", metavar="KEY=VALUE", help="For s3:// and other URLs: an fsspec option, e.g. client_kwargs.endpoint_url=http://host:9000 (repeatable; credentials also come from AWS_* and ~/.aws).")]
CacheDir = Annotated[Path | None, typer.Option("--cache-dir", help="For URLs: where scans in flight are staged (default: $ORPAM_CACHE_DIR or ~/.cache/orpam).")]
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


SCAN = Group.of(
    variable=(Variable, None), positions=(Positions, None), scan_lines=(ScanLines, ScanLinesOpt.columns),
    first_line=(FirstLine, FirstLineOpt.forward), chunk_frames=(ChunkFrames, None), axes=(Axes, None),
    depth_axis=(DepthAxis, None),
    map_method=(MapMethod, MapMethodOpt.envelope), baseline=(Baseline, None), baseline_window=(BaselineWindow, None),
    band=(Band, None), sampling_rate=(SamplingRate, None), speed_of_sound=(SpeedOfSound, None),
    depth_range=(DepthRange, None), dtype=(Dtype, None), shape=(Shape, None), order=(Order, OrderOpt.C),
    reverse_backward=(ReverseBackward, False), keep_volume=(KeepVolume, False), pixel_size=(PixelSize, None),
    frame_interval=(FrameInterval, None), levels=(Levels, None),
)  # fmt: skip
"""How source files are read: every :class:`ScanOptions` field, for run, ingest and evaluate."""

NETWORK = Group.of(
    settings=(Settings, None), checkpoint=(Checkpoint, None), device=(Device, None), precision=(Precision, None),
    batch_size=(BatchSize, None), line_profile=(LineProfile, False),
)  # fmt: skip
"""A method's settings: ``--set`` and the flags of the settings most used."""

COMPUTE = Group.of(scheduler=(Scheduler, None), workers=(Workers, None))
"""Where chunk tasks run."""


def scan_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The :data:`SCAN` group's values as :class:`ScanOptions` fields (choices as their text)."""
    return {k: v.value if isinstance(v, Enum) else v for k, v in values.items()}


def network_settings(names: list[str] | tuple[str, ...], values: dict[str, Any]) -> dict[str, Any]:
    """The :data:`NETWORK` group's values as method settings, checked against the methods ``names``."""
    return method_settings(names, values["settings"], values["checkpoint"], values["device"], values["precision"],
                           values["batch_size"], values["line_profile"])  # fmt: skip


def computing(values: dict[str, Any]) -> Any:
    """The compute context for the :data:`COMPUTE` group (local threads when neither is given)."""
    from orpam_pipeline.scheduling import compute_context

    return compute_context(scheduler=values["scheduler"], workers=values["workers"])


def split_methods(values: list[str] | None) -> list[str]:
    """Repeatable ``--method`` values, each of which may be a comma list, in order without repeats."""
    out: list[str] = []
    for value in values or []:
        for name in (v.strip() for v in value.split(",")):
            if name and name not in out:
                out.append(name)
    return out
