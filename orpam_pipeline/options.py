"""The options that ``run``, ``ingest``, ``register``, ``evaluate`` and workflows share, declared once.

Each field carries its help; the CLI's option definitions (``cli/options.py``) and the workflow
schema read names and help from here, so a new option is one field here plus its flag there.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.register.registry import DEFAULT_METHOD
from orpam_pipeline.settings import setting

SCAN_LINES = ("columns", "rows")
FIRST_LINES = ("forward", "backward")


@dataclass
class ScanOptions:
    """How source files are read into a store."""

    variable: str | None = setting(None, "Variable (.mat/.npz) or dataset path (.h5) holding the frames.")
    scan_lines: str = setting("columns", "Whether each fast-axis line is a column (default) or a row.")
    first_line: str = setting("forward", "Direction of the first line (column 0).")
    chunk_frames: int | None = setting(None, "Frames per zarr chunk (default: about 8 MiB per chunk).")
    depth_axis: int | None = setting(None, "Reduce raw A-line volumes to a MAP along this axis.")
    reverse_backward: bool = setting(False, "Backward lines are stored in scan order (reversed along the line): flip them along Y on ingest.")

    def __post_init__(self) -> None:
        if self.scan_lines not in SCAN_LINES:
            raise OrpamError(f"scan_lines must be one of {', '.join(SCAN_LINES)}, not {self.scan_lines!r}")
        if self.first_line not in FIRST_LINES:
            raise OrpamError(f"first_line must be one of {', '.join(FIRST_LINES)}, not {self.first_line!r}")
        if self.chunk_frames is not None and int(self.chunk_frames) < 1:
            raise OrpamError(f"chunk_frames must be at least 1, not {self.chunk_frames}")

    def scan_fields(self) -> dict[str, Any]:
        """The :class:`ScanOptions` part as keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(ScanOptions)}


@dataclass
class RunOptions(ScanOptions):
    """Everything a batch run needs: how to read scans, which method with which settings, overwrite."""

    method: str = setting(DEFAULT_METHOD, "Registration method (see `orpam info`).")
    settings: dict[str, Any] = setting(default_factory=dict, help="Settings of the method (`--set key=value`).")
    overwrite: bool = setting(False, "Replace stores made with other parameters (same ones are continued or skipped).")
    wait_for_locks: bool = setting(False, "Wait for scans another live orpam process is writing instead of skipping them as busy.")
    strict: bool = setting(False, "Count a scan with any warning (docs/warnings.md) as failed (exit status 1), for batch use.")


@dataclass
class ComputeOptions:
    """Where chunk tasks run: local threads (default), a local cluster, or a running cluster."""

    scheduler: str | None = setting(None, "Run the chunk tasks on a running dask.distributed cluster (e.g. tcp://host:8786).")
    workers: int | None = setting(None, "Run the chunk tasks on a local dask cluster of N worker processes.")
    threads_per_worker: int | None = setting(None, "Threads of each local worker (default: the cores shared out).")


def option_help(cls: type, name: str) -> str:
    """The help text declared for field ``name`` of an options dataclass."""
    for f in fields(cls):
        if f.name == name:
            return str(f.metadata.get("help", ""))
    raise KeyError(name)
