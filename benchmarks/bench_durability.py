"""What flushing to the disk costs: `orpam run` with ORPAM_FSYNC=1 (default) against ORPAM_FSYNC=0.

    .venv/bin/python benchmarks/bench_durability.py [--frames 200] [--chunk-frames 4] [--repeats 3]

Each run is a fresh process on a fresh output folder; the scan is simulated once (not timed).
Medians and their ratio, measured side by side in one invocation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(scan: Path, out: Path, chunk_frames: int, fsync: bool) -> float:
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "ORPAM_FSYNC": "1" if fsync else "0"}
    command = [sys.executable, "-m", "orpam_pipeline.cli", "run", str(scan), str(out), "--method", "phase",
               "--chunk-frames", str(chunk_frames), "--json"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--chunk-frames", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="Where to write (default: a temporary folder).")
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="orpam-durability-"))
    subprocess.run([sys.executable, "-m", "orpam_pipeline.cli", "simulate", str(root / "sim"), "--frames",
                    str(args.frames), "--size", "256", "256", "--seed", "3"], check=True, capture_output=True)  # fmt: skip
    scan = root / "sim" / "scans" / "sim-0003.npy"
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeats):
        for fsync in (False, True):  # interleaved, so drift in machine load hits both alike
            times[fsync].append(run_once(scan, root / "out", args.chunk_frames, fsync))
    chunks = -(-args.frames // args.chunk_frames)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"{args.frames} frames of 256x256, {chunks} chunks, median of {args.repeats} runs, {root}")
    print(f"ORPAM_FSYNC=0   {off:7.2f} s")
    print(f"ORPAM_FSYNC=1   {on:7.2f} s")
    print(f"ratio on/off    {on / off:7.3f}   ({1000 * (on - off) / chunks:.1f} ms per chunk)")
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
