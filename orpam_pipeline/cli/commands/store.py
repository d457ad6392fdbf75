"""Looking at what is there: ``status`` and ``verify`` of output folders, ``info`` about the installation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orpam_pipeline.cli.console import esc, err, friendly, out, print_json, progress_bars
from orpam_pipeline.cli.options import AsJson, StorageOption
from orpam_pipeline.errors import OrpamError

Outputs = Annotated[Path, typer.Argument(metavar="OUT", help="Output folder of `orpam run` (or one scan's folder or store).")]


@friendly
def status(out_dir: Outputs, as_json: AsJson = False) -> None:
    """Show per scan which stages are complete and how many chunks each has done."""
    from rich.table import Table

    from orpam_pipeline.store.lock import describe_holder
    from orpam_pipeline.store.status import STAGES, collect_status

    scans = collect_status(out_dir)
    if as_json:
        print_json(scans)
        return
    if not scans:
        raise OrpamError(f"{out_dir}: no scan stores found")
    table = Table(title=f"{out_dir}: {len(scans)} scans")
    table.add_column("scan", no_wrap=True)
    for stage in STAGES:
        table.add_column(stage, justify="right")
    table.add_column("writer")
    colours = {"complete": "green", "partial": "yellow", "absent": "dim", "damaged": "bold red"}
    for scan in scans:
        cells = []
        for stage in STAGES:
            s = scan["stages"][stage]
            text = {"absent": "—", "damaged": "damaged"}.get(s["state"], f"{s['state']} {s['chunks_done']}/{s['chunks_total']}")
            if s.get("method"):
                text += f" ({s['method']})"
            cells.append(f"[{colours[s['state']]}]{text}[/]")
        lock = scan["lock"]
        writer = "" if lock is None else ("running: " if lock.get("alive") else "stale lock: ") + describe_holder(lock)
        table.add_row(scan["scan"], *cells, writer or (scan["problem"] or ""))
    out.print(table)


@friendly
def verify(
    out_dir: Annotated[str, typer.Argument(metavar="OUT", help="Output folder or URL of `orpam run` (or one scan's folder or store).")],
    storage_option: StorageOption = None,
    as_json: AsJson = False,
) -> None:
    """Re-hash every recorded source file and decode every chunk (CRC32C); exit 1 on any problem.

    For an output URL also checks that every scan's upload is complete and every object matches its
    manifest's sha256."""
    from orpam_pipeline.remote.urls import as_location, parse_storage_options
    from orpam_pipeline.store.status import verify_outputs

    where, options = as_location(out_dir), parse_storage_options(storage_option)
    with progress_bars(not as_json) as bars:
        task = bars.add_task("verify", total=None)

        def progress(what: str, d: int, n: int) -> None:
            bars.update(task, description=f"verify {what}", completed=d, total=n)

        if isinstance(where, str):
            from orpam_pipeline.remote.verify import verify_remote

            result = verify_remote(where, options, progress)
        else:
            result = verify_outputs(where, progress, storage_options=options)
    if as_json:
        print_json({"ok": result.ok, "stores": result.stores, "source_files": result.source_files,
                    "chunks": result.chunks, "problems": result.problems})  # fmt: skip
    else:
        for problem in result.problems:
            err.print(f"[bold red]problem:[/] {esc(problem)}", highlight=False, soft_wrap=True)
        summary = f"{result.stores} stores, {result.source_files} source files, {result.chunks} chunks checked"
        if result.ok:
            out.print(f"ok: {summary}", highlight=False)
        else:
            err.print(f"[bold red]{len(result.problems)} problems[/] ({summary})", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@friendly
def info(as_json: AsJson = False) -> None:
    """Version, devices seen, and every registration method with its settings and checkpoint."""
    from rich.table import Table

    from orpam_pipeline.info import collect

    data = collect()
    if as_json:
        print_json(data)
        return
    out.print(f"orpam_pipeline {data['version']} (Python {data['python']}, torch {data['torch']})", highlight=False)
    devices = Table(title="devices")
    for col in ("device", "name", "details"):
        devices.add_column(col)
    for d in data["devices"]:
        details = ", ".join(f"{k} {v}" for k, v in d.items() if k not in ("device", "name"))
        devices.add_row(d["device"], str(d["name"]), details)
    out.print(devices)
    methods = Table(title="registration methods")
    for col in ("name", "kind", "settings (--set key=value)", "parameters", "checkpoint", "sha256"):
        methods.add_column(col)
    for m in data["methods"]:
        sha = m.get("checkpoint_sha256")
        ckpt = m.get("checkpoint", "")
        if ckpt and sha is None:
            ckpt += " (missing)"
        settings = ", ".join(s["name"] for s in m["settings"]) or "—"
        params = f"{m['parameters']:,}" if m.get("parameters") else "—"
        methods.add_row(m["name"], m["kind"], settings, params, ckpt, (sha or "")[:16])
    out.print(methods)


@friendly
def repair(out_dir: Outputs, as_json: AsJson = False) -> None:
    """Recompute exactly the damaged chunks (and what depends on them) found by `orpam verify`; then check again."""
    from orpam_pipeline.cli.console import StageProgress
    from orpam_pipeline.repair import repair_outputs

    with progress_bars(not as_json) as bars:
        results = repair_outputs(out_dir, progress=StageProgress(bars))
    failed = [r for r in results if not hasattr(r, "ok") or not r.ok]
    if as_json:
        print_json([r.summary() if hasattr(r, "summary") else {"ok": False, "error": str(r)} for r in results])
    else:
        for r in results:
            if not hasattr(r, "ok"):
                err.print(f"[bold red]failed[/] {esc(r)}", highlight=False, soft_wrap=True)
            elif not r.problems:
                out.print(f"[green]intact[/] {esc(r.store)}", highlight=False)
            else:
                done = ", ".join(f"{stage} chunks {v}" for stage, v in r.chunks_recomputed.items()) or "nothing"
                meta = f"; metadata rewritten: {', '.join(r.metadata_rewritten)}" if r.metadata_rewritten else ""
                verdict = "[green]repaired[/]" if r.ok else "[bold red]still damaged[/]"
                out.print(f"{verdict} {esc(r.store)}: {len(r.problems)} problems, recomputed {done}{meta}", highlight=False)
                for line in r.remaining:
                    err.print(f"  {esc(line)}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@friendly
def unlock(
    out_dir: Outputs,
    force: Annotated[bool, typer.Option("--force", help="Also remove locks held from another host (after the quiet period).")] = False,
    quiet_minutes: Annotated[float, typer.Option("--quiet-minutes", min=0.0, help="With --force: minutes without any change in the scan folder first.")] = 10.0,
) -> None:
    """Remove scan locks left by processes that are gone; never one of a live process on this host."""
    from orpam_pipeline.store.lock import unlock as unlock_folder
    from orpam_pipeline.store.status import find_stores

    stores = find_stores(out_dir)
    if not stores:
        raise OrpamError(f"{out_dir}: no scan stores found")
    refused = 0
    for store in stores:
        try:
            out.print(esc(f"{store.parent}: {unlock_folder(store.parent, force, quiet_minutes * 60)}"), highlight=False)
        except OrpamError as exc:
            refused += 1
            err.print(f"[bold red]refused[/] {esc(exc)}", highlight=False, soft_wrap=True)
    if refused:
        raise typer.Exit(1)
