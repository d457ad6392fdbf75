"""Whole batches on a dask cluster: many small scans and one large scan, serial against 1, 2 and 4 workers.

Everything is simulated first (not timed). Each timed run is the library's ``run_batch`` (what ``orpam
run`` calls) with ``--method phase`` into a fresh output folder: first with no cluster (scans one after
another, each scan's chunks on this process's threads), then on a ``LocalCluster`` of 1, 2 and 4 worker
processes of one thread each (every scan a task of its own; a single scan's chunks spread over the
workers). Cluster start-up is timed apart and a warm-up batch runs first on each cluster. Prints seconds
(median of ``--repeats``), the speed-up over serial, and the per-scan overhead of the serial batch
(its time per scan minus the large scan's time per frame times the small scans' frames).

On a 2-core machine 4 workers oversubscribe the cores: the useful figures there are the per-scan
overhead and the batch speed-up at 2 workers.

    .venv/bin/python benchmarks/bench_scale.py                       # 200 scans of 8 x 64x64, 1 x 400 x 128x128
    .venv/bin/python benchmarks/bench_scale.py --scans 40 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import run_batch
from orpam_pipeline.scheduling import compute_context
from orpam_pipeline.simulate import SimulationParams, write_simulation


def simulate(root: Path, count: int, frames: int, size: int, seed: int) -> Path:
    """``count`` scans as .npy files in ``root`` (one simulation, copied with a per-scan seed offset)."""
    root.mkdir(parents=True, exist_ok=True)
    paths = write_simulation(root / "tmp", SimulationParams.randomised(seed, frames=frames, height=size, width=size))
    data = np.load(paths.scan)
    for i in range(count):
        np.save(root / f"scan-{i:04d}.npy", np.roll(data, i, axis=0))
    shutil.rmtree(root / "tmp")
    return root


def timed(src: Path, out: Path, options: RunOptions) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    outcomes = run_batch(src, out, options)
    seconds = time.perf_counter() - t
    failed = [o.error for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"benchmark run failed: {failed[0]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--small-frames", type=int, default=8)
    parser.add_argument("--small-size", type=int, default=64)
    parser.add_argument("--large-frames", type=int, default=400)
    parser.add_argument("--large-size", type=int, default=128)
    parser.add_argument("--chunk-frames", type=int, default=8)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    options = RunOptions(method="phase", chunk_frames=args.chunk_frames)
    modes: dict[str, int | None] = {"serial": None, **{f"{n} worker{'s' * (n > 1)}": n for n in map(int, args.workers.split(","))}}
    seconds: dict[tuple[str, str], float] = {}
    startup: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="orpam-bench-scale-") as tmp:
        root = Path(tmp)
        batches = {"small": simulate(root / "small", args.scans, args.small_frames, args.small_size, 1),
                   "large": simulate(root / "large", 1, args.large_frames, args.large_size, 2)}  # fmt: skip
        warm = simulate(root / "warm", 2, 4, args.small_size, 3)
        for mode, workers in modes.items():
            t0 = time.perf_counter()
            with compute_context(workers=workers, threads_per_worker=1 if workers else None):
                startup[mode] = time.perf_counter() - t0
                timed(warm, root / "out-warm", options)
                for name, src in batches.items():
                    seconds[(name, mode)] = statistics.median(timed(src, root / f"out-{name}", options)
                                                              for _ in range(args.repeats))  # fmt: skip

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"orpam bench_scale: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.1f}, "
          f"phase, median of {args.repeats}; small: {args.scans} scans of {args.small_frames} x "
          f"{args.small_size}x{args.small_size}; large: 1 scan of {args.large_frames} x {args.large_size}x{args.large_size}, "
          f"{args.chunk_frames} frames per chunk")  # fmt: skip
    head = f"{'batch':<8}" + "".join(f" {m + ' s':>13}" for m in modes) + "".join(
        f" {m + ' vs serial':>18}" for m in list(modes)[1:])
    print(head)
    print("-" * len(head))
    for name in batches:
        row = f"{name:<8}" + "".join(f" {seconds[(name, m)]:>13.2f}" for m in modes)
        row += "".join(f" {seconds[(name, 'serial')] / seconds[(name, m)]:>17.2f}x" for m in list(modes)[1:])
        print(row)
    per_frame = seconds[("large", "serial")] / args.large_frames * (args.small_size / args.large_size) ** 2
    per_scan = seconds[("small", "serial")] / args.scans
    print(f"serial per small scan: {per_scan * 1000:.0f} ms, of which pipeline overhead about "
          f"{(per_scan - per_frame * args.small_frames) * 1000:.0f} ms (the rest scaled from the large scan's per-pixel time)")
    print("cluster start-up (s): " + ", ".join(f"{m} {s:.1f}" for m, s in startup.items() if m != "serial"))


if __name__ == "__main__":
    main()
