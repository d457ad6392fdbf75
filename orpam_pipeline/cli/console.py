"""Rich output for the command line: progress bars, summary tables and one-line errors."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from orpam_pipeline.errors import OrpamError, one_line

F = TypeVar("F", bound=Callable[..., Any])

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def friendly(fn: F) -> F:
    """Turn library errors into one line on stderr and exit status 1 (130 on Ctrl-C)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OrpamError as exc:
            err.print(f"[bold red]error:[/] {esc(exc)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # the last net: never a bare traceback
            text = one_line(exc, Path("orpam"))
            if "unexpected" in text:
                text += " (please report this; `orpam verify` checks stores for damage)"
            err.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def esc(value: Any) -> str:
    """Text from data (names, paths, error messages) made safe to print with rich markup around it."""
    from rich.markup import escape

    return escape(str(value))


def print_warnings(console: Console, warnings: Any) -> None:
    """The checks' warnings (``{code, message, stage}`` dicts), one indented line each."""
    for w in warnings or []:
        console.print(f"  [yellow]warning[/] {esc(w.get('code'))}: {esc(w.get('message'))}", highlight=False,
                      soft_wrap=True)  # fmt: skip


def deprecated(old: str, new: str) -> None:
    """Say on stderr that an option spelling is going away (old spellings stay for one release)."""
    err.print(f"[yellow]note:[/] {old} is deprecated and will be removed; use {new}", highlight=False)


def print_json(value: Any) -> None:
    """``value`` as JSON on stdout (NaN and infinities as null, paths as text)."""
    import json

    from orpam_pipeline.jsonsafe import json_safe

    print(json.dumps(json_safe(value), indent=1, allow_nan=False, default=str))


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


class StageProgress:
    """One bar per stage (ingest, measure, register, report) plus an optional bar over scans."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(f"  {stage}", total=max(total, 1))
        self.progress.update(self.tasks[stage], completed=done, total=max(total, 1))

    def reset(self) -> None:
        for task in self.tasks.values():
            self.progress.remove_task(task)
        self.tasks.clear()


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Progress]:
    """Progress bars on stderr; ``enabled=False`` (``--json``) draws nothing and prints nothing."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err if enabled else Console(quiet=True), transient=False,
                  disable=not enabled) as progress:  # fmt: skip
        yield progress


def report_table(report: dict[str, Any], title: str | None = None) -> Table:
    """Registered vs unregistered vs the odd-only reference (the report's metrics)."""
    table = Table(title=title or f"{report.get('scan')} — method {report.get('method')}, {report.get('frames')} frames")
    table.add_column("metric")
    table.add_column("registered", justify="right")
    table.add_column("unregistered", justify="right")
    table.add_column("odd-only reference", justify="right")
    for label, key in (("NCC even vs odd", "ncc_mean"), ("SSIM even vs odd", "ssim_mean")):
        table.add_row(label, fmt(report.get(key)), fmt(report.get(f"{key}_unregistered")), "")
    table.add_row("PSNR even vs odd (dB)", fmt(report.get("psnr_mean"), 2), fmt(report.get("psnr_mean_unregistered"), 2), "")
    table.add_row("TNCC", fmt(report.get("tncc_merged")), fmt(report.get("tncc_unregistered")), fmt(report.get("tncc_odd")))
    table.add_row("TNCG", fmt(report.get("tncg")), fmt(report.get("tncg_unregistered")), "0 by definition")
    disp = report.get("displacement_px")
    if disp:
        table.add_row("displacement (px)", f"{disp['mean']:.2f} [{disp['min']:.2f}, {disp['max']:.2f}]", "", "")
    return table
