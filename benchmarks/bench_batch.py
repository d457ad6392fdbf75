"""A folder of scans, as labs run it: reports overlapped with the next scan against one scan at a time.

One randomised scan (seed 1) is simulated and cut into ``--scans`` scans of ``--frames`` frames (not
timed). Then, in one session and interleaved per repeat, every row runs in a fresh child process after
its imports:

- ``io-limit``: for each scan, read it and write the four output arrays with the store's codecs,
  chunking and ``fsync`` (``bench_limit``'s ``io-limit`` row, scan after scan);
- ``<method> one at a time``: ``process_scan`` for each scan in turn, each report written before the
  next scan starts (what ``orpam run`` did before the overlap), figure workers started as ``run_batch``
  starts them;
- ``<method>``: ``run_batch`` on the folder (what ``orpam run`` calls): each scan's report (metrics,
  checks, figures) is written on another thread while the next scan ingests and registers.

Printed per row: median seconds, frames/s, the ratio to ``io-limit``, the overlapped row's speed-up over
its one-at-a-time row, CPU seconds (the row's process, children and figure workers) and how busy the
cores were (CPU seconds / (seconds × cores)).

    .venv/bin/python benchmarks/bench_batch.py                        # 6 scans of 200 frames, 256², 3 repeats
    .venv/bin/python benchmarks/bench_batch.py --scans 4 --frames 100 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (ROOT, HERE):  # benchmark the tree this file is in; bench_limit's rows and helpers are reused
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_limit import add_child_arguments, figure_workers_cpu_seconds, run_child, run_peer, simulate_scan  # noqa: E402

METHODS = ("none", "phase")


def rows() -> list[str]:
    return ["io-limit", *(r for m in METHODS for r in (f"{m} one at a time", m))]


def make_scans(root: Path, scans: int, frames: int, size: int) -> Path:
    """``scans`` scans of ``frames`` frames each, cut from one simulated sequence, in ``root/scans``."""
    whole = np.load(simulate_scan(root / "sim", scans * frames, size), mmap_mode="r")
    folder = root / "scans"
    folder.mkdir()
    for i in range(scans):
        np.save(folder / f"scan-{i:02d}.npy", np.asarray(whole[i * frames : (i + 1) * frames]))
    return folder


def child(row: str, src: Path, out: Path) -> None:
    """Run one row; print ``{seconds, cpu}`` as JSON on the last line."""
    from orpam_pipeline.memory import limit_malloc_arenas

    limit_malloc_arenas()
    from orpam_pipeline.options import RunOptions
    from orpam_pipeline.pipeline import process_scan, run_batch, scans_under
    from orpam_pipeline.report.scan_report import warm_figures

    files = sorted(src.glob("*.npy"))
    cpu0, start = os.times(), time.perf_counter()
    if row == "io-limit":
        for path in files:
            run_peer("io-limit", path, out / path.stem)
    elif row.endswith(" one at a time"):
        options = RunOptions(method=row.split()[0])
        warm = warm_figures()
        outcomes = [process_scan(entry, out, options) for entry in scans_under(src, out)]
        warm.join()
    else:
        outcomes = run_batch(src, out, RunOptions(method=row))
    seconds, cpu1 = time.perf_counter() - start, os.times()
    if row != "io-limit" and not all(o.ok for o in outcomes):
        raise SystemExit(f"{row}: {[o.error for o in outcomes if not o.ok]}")
    print(json.dumps({"seconds": seconds, "cpu": sum(cpu1[:4]) - sum(cpu0[:4]) + figure_workers_cpu_seconds()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=6)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    add_child_arguments(parser)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.src, args.out)
        return
    from orpam_pipeline.cores import usable_cores

    runs: dict[str, list[dict[str, Any]]] = {row: [] for row in rows()}
    with tempfile.TemporaryDirectory(prefix="orpam-batch-") as tmp:
        src = make_scans(Path(tmp), args.scans, args.frames, args.size)
        for rep in range(args.repeats):
            for row in runs:
                runs[row].append(run_child(row, src, Path(tmp) / f"out-{rep}-{row.replace(' ', '-')}", __file__))
                print(f"  repeat {rep + 1}: {row}: {runs[row][-1]['seconds']:.2f} s", file=sys.stderr)
    cores, frames = usable_cores(), args.scans * args.frames
    med = {row: {k: statistics.median(r[k] for r in results) for k in ("seconds", "cpu")} for row, results in runs.items()}
    limit = med["io-limit"]["seconds"]
    print(f"bench_batch: {args.scans} scans of {args.frames} frames of {args.size}², medians of {args.repeats}, "
          f"{platform.machine()}, {cores} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    print(f"{'row':<22} {'s':>7} {'frames/s':>9} {'vs limit':>9} {'speed-up':>9} {'CPU s':>7} {'busy':>6}")
    for row, m in med.items():
        alone = med.get(f"{row} one at a time")
        gain = f"{alone['seconds'] / m['seconds']:>8.2f}x" if alone else f"{'':>9}"
        print(f"{row:<22} {m['seconds']:>7.2f} {frames / m['seconds']:>9.1f} {m['seconds'] / limit:>8.2f}x {gain} "
              f"{m['cpu']:>7.2f} {m['cpu'] / (m['seconds'] * cores):>6.0%}")  # fmt: skip
    print("speed-up: seconds of the row one at a time / seconds with the reports overlapped; busy: CPU s / (s × cores)")


if __name__ == "__main__":
    main()
