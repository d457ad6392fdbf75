"""Peak memory and throughput of `orpam run --method phase` on a short and a long sequence.

Both sizes are simulated first (not timed), then each `orpam run` is executed in its own child
process, alternating sizes, so that its peak resident memory (``ru_maxrss`` of that child alone) and
its wall time are measured side by side in one session. Prints medians and the long/short ratios.

    .venv/bin/python benchmarks/bench_run_scaling.py            # 200 vs 2000 frames, 3 repeats
    .venv/bin/python benchmarks/bench_run_scaling.py --small 50 --large 500 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t0
print(rc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def orpam(*args: str) -> list[str]:
    return [sys.executable, "-m", "orpam_pipeline.cli", *args]


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of ``cmd`` run as the only child of a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", CHILD, *cmd], capture_output=True, text=True, check=True)
    rc, wall, maxrss_kib = out.stdout.split()
    if int(rc) != 0:
        raise SystemExit(f"command failed ({rc}): {' '.join(cmd)}")
    return float(wall), int(maxrss_kib) / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="phase")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="orpam-bench-") as tmp:
        root = Path(tmp)
        sizes = {"small": args.small, "large": args.large}
        for label, frames in sizes.items():
            subprocess.run(
                orpam("simulate", str(root / label), "--frames", str(frames), "--size", str(args.size),
                      str(args.size), "--seed", "1"),
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in sizes}
        for rep in range(args.repeats):
            for label in sizes:
                out = root / f"out-{label}-{rep}"
                runs[label].append(
                    measure(orpam("run", str(root / label / "scans"), str(out), "--method", args.method))
                )
    med = {
        k: {
            "frames": sizes[k],
            "seconds": statistics.median(w for w, _ in v),
            "peak_mib": statistics.median(m for _, m in v),
        }
        for k, v in runs.items()
    }
    for v in med.values():
        v["frames_per_s"] = v["frames"] / v["seconds"]
    ratio_mem = med["large"]["peak_mib"] / med["small"]["peak_mib"]
    ratio_fps = med["large"]["frames_per_s"] / med["small"]["frames_per_s"]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"orpam run --method {args.method}, {args.size}x{args.size} frames, median of {args.repeats} ({machine})")
    print(f"{'frames':>8} {'wall s':>8} {'frames/s':>9} {'peak MiB':>9}")
    for v in med.values():
        print(f"{v['frames']:>8} {v['seconds']:>8.2f} {v['frames_per_s']:>9.1f} {v['peak_mib']:>9.1f}")
    print(f"peak memory ratio {args.large}/{args.small} frames: {ratio_mem:.2f}  (target <= 1.3, and < 1024 MiB)")
    print(f"throughput ratio  {args.large}/{args.small} frames: {ratio_fps:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"runs": med, "memory_ratio": ratio_mem, "fps_ratio": ratio_fps,
                                         "machine": machine, "date": time.strftime("%Y-%m-%d")}, indent=1))


if __name__ == "__main__":
    main()
