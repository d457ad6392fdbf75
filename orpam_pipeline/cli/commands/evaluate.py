"""``orpam evaluate``: every method on the same scans, judged by ground truth, leak check and artefact score."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer

from orpam_pipeline.cli.console import esc, deprecated, err, fmt, friendly, out, print_json
from orpam_pipeline.cli.groups import FROM_GROUP, with_groups
from orpam_pipeline.cli.options import COMPUTE, NETWORK, SCAN, AsJson, computing, network_settings, scan_fields, split_methods
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.register import METHODS


@friendly
@with_groups(network=NETWORK, scan=SCAN, compute=COMPUTE)
def evaluate(
    src: Annotated[Path | None, typer.Argument(metavar="SRC", help="Scans to evaluate (file or tree); with --benchmark give only OUT.")] = None,
    out_dir: Annotated[Path | None, typer.Argument(metavar="OUT", help="Output folder: evaluation.{json,md,png} and one store per method.")] = None,
    method: Annotated[list[str] | None, typer.Option("--method", "-m", metavar="METHOD[,METHOD...]",
                      help=f"Methods to compare (repeatable, or a comma list; default: those of {', '.join(METHODS)} that run "
                           "out of the box, i.e. learned ones only with a shipped checkpoint).")] = None,
    methods_old: Annotated[str | None, typer.Option("--methods", hidden=True)] = None,
    network: dict[str, Any] = FROM_GROUP,
    benchmark: Annotated[bool, typer.Option("--benchmark", help="Evaluate on the held-out simulated benchmark (generated into OUT/benchmark-data).")] = False,
    max_frames: Annotated[int | None, typer.Option("--max-frames", min=1, help="Use only the first N frames of each scan.")] = None,
    frames_old: Annotated[int | None, typer.Option("--frames", min=1, hidden=True)] = None,
    leak_frames: Annotated[int, typer.Option("--leak-frames", min=1, help="Frames per scan for the leak check.")] = 16,
    leak_threshold: Annotated[float, typer.Option("--leak-threshold", help="Largest allowed leak excess (NCC).")] = 0.2,
    scan: dict[str, Any] = FROM_GROUP,
    compute: dict[str, Any] = FROM_GROUP,
    as_json: AsJson = False,
) -> None:
    """Compare methods on the same scans: papers' metrics, ground truth, leak check, artefact score, time."""
    from orpam_pipeline.evaluate import EvaluateOptions, evaluate as run_evaluation, write_outputs

    if methods_old is not None:
        deprecated("--methods", "--method")
        method = [*(method or []), methods_old]
    if frames_old is not None:
        deprecated("--frames", "--max-frames")
        max_frames = max_frames or frames_old
    if benchmark and out_dir is None:
        src, out_dir = None, src
    if out_dir is None or (src is not None and benchmark):
        raise OrpamError("usage: orpam evaluate SRC OUT, or orpam evaluate --benchmark OUT")
    from orpam_pipeline.evaluate.run import DEFAULT_METHODS

    names = split_methods(method) or list(DEFAULT_METHODS)
    options = EvaluateOptions(
        methods=tuple(names), max_frames=max_frames, leak_frames=leak_frames, leak_threshold=leak_threshold,
        settings=network_settings(names, network), **scan_fields(scan),
    )  # fmt: skip

    def on_event(kind: str, d: dict[str, Any]) -> None:
        if as_json:
            return
        if kind == "scan":
            err.print(f"[bold]{esc(d['scan'])}[/]: {d['frames']} frames, truth: {d['truth'] or 'none'}", highlight=False)
        elif kind == "method":
            err.print(f"  {d['method']}: NCC vs truth {fmt(d['ncc_truth'])}, artefact {fmt(d['artefact'])}, "
                      f"leak excess {fmt(d['leak_excess'], 3)}, {fmt(d['ms_per_frame'], 1)} ms/frame", highlight=False)  # fmt: skip
        else:
            err.print(f"  [bold red]failed[/] {d.get('method', '')} {esc(d['error'])}", highlight=False, soft_wrap=True)

    with computing(compute), nullcontext() if as_json else err.status("evaluating"):
        result = run_evaluation(src, out_dir, options, benchmark=benchmark, on_event=on_event)
    paths = write_outputs(result, out_dir)
    failed = [s for s in result["scans"] if not s.get("ok") or not all(m.get("ok") for m in s["methods"].values())]
    if as_json:
        print_json({"summary": result["summary"], "outputs": {k: str(v) for k, v in paths.items()},
                    "failed": [s["name"] for s in failed]})  # fmt: skip
    else:
        out.print(_table(result, leak_threshold))
        out.print("\n".join(f"{kind:<4} {path}" for kind, path in paths.items()), highlight=False)
    if failed:
        raise typer.Exit(1)


def _table(result: dict[str, Any], leak_threshold: float) -> Any:
    from rich import box
    from rich.table import Table

    n_ok = sum(1 for s in result["scans"] if s.get("ok"))
    table = Table(title=f"evaluation: {n_ok} scans, mean over scans", box=box.SIMPLE_HEAD, padding=(0, 1))
    columns = (("NCC vs odd", "ncc_odd", 3), ("TNCG", "tncg", 3), ("NCC truth", "ncc_truth", 3),
               ("PSNR truth", "psnr_truth", 1), ("disp RMS", "disp_rms_px", 2), ("artefact", "artefact", 3),
               ("leak exc.", "leak_excess", 2))  # fmt: skip
    table.add_column("method", no_wrap=True)
    for label, _, digits in columns:
        table.add_column(label, justify="right", min_width=digits + 2)
    table.add_column(f"leak<{leak_threshold}", no_wrap=True)
    table.add_column("ms/frame", justify="right", min_width=5)
    for name, s in result["summary"].items():
        verdict = "—" if not s["scans"] else "[green]pass[/]" if s["leak_passed"] else "[bold red]FAIL[/]"
        table.add_row(name, *(fmt(s[key]["mean"], d) for _, key, d in columns), verdict,
                      fmt(s["ms_per_frame"].get("overall"), 1))  # fmt: skip
    return table
