"""Peak memory of ``orpam ingest`` on A-line volumes of N and 10N frames: the envelope MAP streams.

Writes two simulated (T, Z, Y, X) uint16 volumes (``orpam simulate --raw`` content: a few distinct
frames repeated, so writing 10N frames stays quick), ingests each with ``--axes tzyx`` in its own
process and reads that process's peak resident set size (``VmHWM`` of ``/proc/self/status``: unlike
``ru_maxrss`` it does not inherit the parent's size at fork). Prints both and their ratio; flat memory
means a ratio near 1 (target: at most 1.3).

    .venv/bin/python benchmarks/bench_raw_memory.py                     # N = 12, Z = 128, 128 x 128
    .venv/bin/python benchmarks/bench_raw_memory.py --frames 20 --depth 384 --size 256
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from orpam_pipeline.simulate import SimulationParams
from orpam_pipeline.simulate.raw import RawParams, RawVolumes

DISTINCT = 4
"""Distinct simulated frames, repeated to fill the volume."""

CHILD = """
import sys
from orpam_pipeline.cli.main import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit as exc:
    if exc.code:
        raise
with open("/proc/self/status") as fh:
    print("peak_rss_kib", next(line.split()[1] for line in fh if line.startswith("VmHWM:")))
"""


def write_volume(path: Path, frames: int, depth: int, size: int) -> None:
    """A (T, Z, Y, X) uint16 .npy of simulated A-line volumes, written frame by frame."""
    params = SimulationParams.randomised(0, frames=DISTINCT, height=size, width=size)
    volumes = RawVolumes(params, RawParams(depth_samples=depth))
    distinct = [volumes.frame(t)[0] for t in range(DISTINCT)]
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(frames, depth, size, size))
    for t in range(frames):
        out[t] = distinct[t % DISTINCT]
        if t % 16 == 15:
            out.flush()
    out.flush()
    del out


def ingest_peak(scan: Path, out: Path) -> tuple[int, float]:
    """Peak RSS (bytes) and wall time of ``orpam ingest SCAN OUT --axes tzyx`` in a fresh process."""
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", CHILD, "ingest", str(scan), str(out), "--axes", "tzyx"],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    seconds = time.perf_counter() - started
    if res.returncode != 0:
        raise SystemExit(f"ingest of {scan} failed: {res.stderr.strip() or res.stdout.strip()}")
    line = next(x for x in res.stdout.splitlines() if x.startswith("peak_rss_kib"))
    return int(line.split()[1]) * 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=12, help="N: frames of the small volume (the large has 10N)")
    parser.add_argument("--depth", type=int, default=128, help="samples per A-line")
    parser.add_argument("--size", type=int, default=128, help="frame height and width")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="orpam-bench-raw-") as tmp:
        root = Path(tmp)
        for n in (args.frames, 10 * args.frames):
            scan = root / f"raw-{n}.npy"
            write_volume(scan, n, args.depth, args.size)
            results[n] = (*ingest_peak(scan, root / f"out-{n}"), scan.stat().st_size)
            scan.unlink()

    frame_mib = args.depth * args.size * args.size * 2 / 2**20
    print(f"orpam bench_raw_memory: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"A-lines of {args.depth} uint16 samples, {args.size}x{args.size} per frame ({frame_mib:.1f} MiB), "
          "envelope MAP, one process per ingest")  # fmt: skip
    print(f"{'frames':>7} {'volume MiB':>11} {'peak RSS MiB':>13} {'seconds':>8}")
    for n, (peak, seconds, size) in results.items():
        print(f"{n:>7} {size / 2**20:>11.0f} {peak / 2**20:>13.1f} {seconds:>8.1f}")
    small, large = (results[n][0] for n in results)
    ratio = large / small
    print(f"peak RSS ratio {10 * args.frames} / {args.frames} frames: {ratio:.2f} (target <= 1.3: "
          f"{'met' if ratio <= 1.3 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
