"""``orpam workflow run``: the batch, temporal-report and train jobs declared in TOML files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from orpam_pipeline.cli.commands.pipeline import batch_hooks
from orpam_pipeline.cli.console import esc, err, fmt, friendly, out, progress_bars

workflow_app = typer.Typer(help="Run declarative workflows (workflows/README.md).", no_args_is_help=True)


@workflow_app.command("run")
@friendly
def workflow_run(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Workflow file (.toml); its relative paths are relative to it.")],
    overrides: Annotated[list[str] | None, typer.Option("--set", metavar="SECTION.KEY=VALUE", help="Override a setting (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved workflow as JSON and stop.")] = False,
) -> None:
    """Run a batch, temporal-report or train workflow; records it in OUT/workflow.json and in every store."""
    import json

    from orpam_pipeline.workflow import WorkflowHooks, load_workflow, run_workflow

    wf = load_workflow(file, overrides or [])
    for note in wf.notes:
        err.print(f"[yellow]note:[/] {esc(note)}", highlight=False, soft_wrap=True)
    if dry_run:
        print(json.dumps(wf.record(), indent=1))
        return
    started = time.perf_counter()
    with progress_bars() as bars:
        on_start, stages, on_done = batch_hooks(bars, visible=wf.kind != "train")
        epochs = bars.add_task("epochs", total=None, visible=wf.kind == "train")

        def on_train(event: dict[str, Any]) -> None:
            if event["event"] == "epoch":
                bars.update(epochs, completed=event["epoch"], total=wf.config.get("train", {}).get("epochs"))
                bars.console.print(f"epoch {event['epoch']}: train loss {fmt(event.get('train_loss'))}, "
                                   f"val loss {fmt(event.get('val_loss'))}", highlight=False)  # fmt: skip

        result = run_workflow(wf, WorkflowHooks(on_start, stages, on_done, on_train))
        stages.reset()
    if result.outcomes:
        n_ok = sum(1 for o in result.outcomes if o.ok)
        out.print(f"{n_ok} of {len(result.outcomes)} scans done in {time.perf_counter() - started:.1f} s",
                  highlight=False)  # fmt: skip
    for row in result.rows:
        if "error" not in row:
            out.print(f"{row['scan']}: TNCC {fmt(row.get('tncc_merged'))} (odd-only {fmt(row.get('tncc_odd'))}), "
                      f"TNCG {fmt(row.get('tncg'))}", highlight=False)  # fmt: skip
    for kind, path in result.summary.items():
        out.print(f"{kind:<4} {path}", highlight=False)
    if result.train is not None:
        out.print(f"model: {result.output / 'model.pt'} ({result.train.epochs_completed} epochs)", highlight=False)
    out.print(f"record: {result.record}", highlight=False)
    for problem in result.failed:
        err.print(f"[bold red]failed[/] {esc(problem)}", highlight=False, soft_wrap=True)
    if result.failed:
        raise typer.Exit(1)
