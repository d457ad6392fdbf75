"""Start-up cost of the command line: `orpam --help` and friends against a bare interpreter and torch.

    .venv/bin/python benchmarks/bench_startup.py [--repeats 7]

Each command runs in a fresh process; medians over the repeats, side by side in one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python (bare interpreter)": [sys.executable, "-c", "pass"],
    "orpam --help": [sys.executable, "-m", "orpam_pipeline.cli", "--help"],
    "orpam run --help": [sys.executable, "-m", "orpam_pipeline.cli", "run", "--help"],
    "import torch (what --help no longer pays)": [sys.executable, "-c", "import torch"],
}


def median_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    results = {name: median_seconds(cmd, args.repeats) for name, cmd in COMMANDS.items()}
    bare = results["python (bare interpreter)"]
    print(f"{'command':<45} {'median s':>9} {'x bare':>8}")
    for name, seconds in results.items():
        print(f"{name:<45} {seconds:9.3f} {seconds / bare:8.1f}")


if __name__ == "__main__":
    main()
