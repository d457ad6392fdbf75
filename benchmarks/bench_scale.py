"""Registration throughput (frames/s) on the threaded scheduler against 1 and 2 local dask workers.

The same simulated data are ingested once per method; every timed run registers a fresh copy of that
store (copying is not timed) through the real engine, under each compute mode in turn: dask's
threaded scheduler in this process, then a ``LocalCluster`` of 1 and of 2 worker processes (one
thread each unless ``--threads-per-worker``). Cluster start-up is timed separately, and each mode
registers a small warm-up store first, so model loading is not in the figures. Prints one table.

    .venv/bin/python benchmarks/bench_scale.py                         # phase 128 frames, pcregnet 32
    .venv/bin/python benchmarks/bench_scale.py --phase-frames 512 --repeats 3 --device cuda
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

from orpam_pipeline.scheduling import compute_context
from orpam_pipeline.io import open_scan
from orpam_pipeline.register import get_method
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.register.pcregnet import SHIPPED_CHECKPOINT
from orpam_pipeline.simulate import SimulationParams, write_simulation
from orpam_pipeline.store.ingest import ingest_scan


def make_template(root: Path, name: str, frames: int, size: int, chunk: int) -> Path:
    """Simulate and ingest one scan; returns its store."""
    paths = write_simulation(root / f"sim-{name}", SimulationParams.randomised(1, frames=frames, height=size, width=size))
    with open_scan(paths.scan) as source:
        return ingest_scan(source, root / f"template-{name}", chunk_frames=chunk)


def fresh_copy(template: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(template.parent, dest)
    return dest / template.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase-frames", type=int, default=128)
    parser.add_argument("--pcregnet-frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--phase-chunk", type=int, default=8, help="frames per chunk (tasks = frames / chunk)")
    parser.add_argument("--pcregnet-chunk", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="pcregnet device: cpu, cuda or auto")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    methods = {
        "phase": ({}, args.phase_frames, args.phase_chunk),
        "pcregnet": ({"checkpoint": str(SHIPPED_CHECKPOINT), "device": args.device, "precision": args.precision},
                     args.pcregnet_frames, args.pcregnet_chunk),
    }  # fmt: skip
    modes = {"threads": None, "1 worker": 1, "2 workers": 2}
    fps: dict[tuple[str, str], float] = {}
    startup: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="orpam-bench-scale-") as tmp:
        root = Path(tmp)
        templates = {m: make_template(root, m, n, args.size, c) for m, (_, n, c) in methods.items()}
        warm = {m: make_template(root, f"warm-{m}", 4, args.size, 2) for m in methods}
        for mode, workers in modes.items():
            t0 = time.perf_counter()
            with compute_context(workers=workers, threads_per_worker=args.threads_per_worker if workers else None):
                startup[mode] = time.perf_counter() - t0
                for name, (options, frames, _) in methods.items():
                    register_store(fresh_copy(warm[name], root / "warm-run"), get_method(name, **options))
                    runs = []
                    for rep in range(args.repeats):
                        store = fresh_copy(templates[name], root / f"run-{rep}")
                        t = time.perf_counter()
                        register_store(store, get_method(name, **options))
                        runs.append(frames / (time.perf_counter() - t))
                    fps[(name, mode)] = statistics.median(runs)

    cores = os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"orpam bench_scale: {platform.processor() or platform.machine()}, {cores} cores, load {load:.1f}, "
          f"{args.size}x{args.size} frames, {args.threads_per_worker} thread(s) per worker, "
          f"median of {args.repeats}; pcregnet device {args.device}, precision {args.precision}")  # fmt: skip
    head = f"{'method':<10} {'frames':>6} {'tasks':>5}" + "".join(f" {m + ' f/s':>15}" for m in modes)
    head += f" {'2w / threads':>13}"
    print(head)
    print("-" * len(head))
    for name, (_, frames, chunk) in methods.items():
        row = f"{name:<10} {frames:>6} {-(-frames // chunk):>5}" + "".join(f" {fps[(name, m)]:>15.1f}" for m in modes)
        row += f" {fps[(name, '2 workers')] / fps[(name, 'threads')]:>12.2f}x"
        print(row)
    print("cluster start-up (s): " + ", ".join(f"{m} {s:.1f}" for m, s in startup.items()))


if __name__ == "__main__":
    main()
