"""The ``orpam`` command line: one Typer app; each command lives in ``cli/commands/``.

Commands only parse arguments, call the library and print (rich). Heavy libraries (zarr, dask,
torch) are imported inside the commands that need them, so ``orpam --help`` starts quickly and
only commands that run a network import torch.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer

from orpam_pipeline import __version__
from orpam_pipeline.cli.commands import data, evaluate, pipeline, store, train, workflow
from orpam_pipeline.cli.commands.displacement import apply_displacement_command
from orpam_pipeline.cli.commands.export import export
from orpam_pipeline.cli.console import out

app = typer.Typer(
    name="orpam",
    help="Register, re-interleave and quality-check bidirectional OR-PAM scans.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"orpam_pipeline {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    """Bidirectional OR-PAM registration pipeline."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)
    if threading.current_thread() is threading.main_thread():
        from orpam_pipeline.memory import limit_malloc_arenas

        limit_malloc_arenas()


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM ends the command like Ctrl-C: locks are released and finished chunks stay marked."""
    raise KeyboardInterrupt


app.command()(data.simulate)
app.command()(data.inspect)
app.command()(data.ingest)
app.command()(pipeline.register)
app.command()(pipeline.report)
app.command()(pipeline.run)
app.command()(pipeline.demo)
app.command()(evaluate.evaluate)
app.command()(store.status)
app.command()(store.verify)
app.command()(store.repair)
app.command()(store.unlock)
app.add_typer(data.manifest_app, name="manifest")
app.command()(train.train)
app.command()(store.info)
app.command("apply-displacement")(apply_displacement_command)
app.command()(export)
app.add_typer(workflow.workflow_app, name="workflow")
