"""phase with and without jump detection on scans with block jitter (and on smooth scans, for the cost).

For each seed a randomised sequence with motor jitter (``--blocks`` blocks of lines per frame, jumps
of ``--jitter-min`` to ``--jitter-max`` px, drawn per frame) and the same sequence without jitter are
simulated, ingested once and registered through the real engine by ``phase`` (``jumps=true``, the
default) and ``phase:jumps=false``. Prints, per scan kind and variant, the median over scans of: the
displacement RMS against the true field (all lines, and lines at least two lines away from a jump),
the share of lines off by more than 1 px, NCC of the registered backward lines vs the truth, and ms
per frame of the whole register stage.

    .venv/bin/python benchmarks/bench_jitter.py --scans 5 --frames 32 --size 256
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from orpam_pipeline.io import open_scan
from orpam_pipeline.metrics import ncc_frames
from orpam_pipeline.register import get_method
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.simulate import SimulationParams, write_simulation
from orpam_pipeline.store.ingest import ingest_scan
from orpam_pipeline.store.layout import open_scan_store

VARIANTS = {"phase (jumps)": {}, "phase jumps=false": {"jumps": False}}


def _away_from_jumps(truth: np.ndarray) -> np.ndarray:
    """(T, Xe) mask of backward lines at least two lines from a jump of the true field (T, Y, Xe)."""
    keep = np.ones((truth.shape[0], truth.shape[-1]), bool)
    lines = truth.mean(axis=1)
    for t, j in zip(*np.nonzero(np.abs(np.diff(lines, axis=1)) > 0.5)):
        keep[t, max(0, j - 1) : j + 3] = False
    return keep


def _score(store: Path, truth: zarr.Group) -> dict[str, float]:
    group = open_scan_store(store)
    true = np.asarray(truth["displacement"][:], np.float64)
    found = np.asarray(group["displacement"][:], np.float64)
    field = true if true.ndim == 3 else true[..., None]
    found = found if found.ndim == 3 else found[..., None]
    err = np.broadcast_to(found, np.broadcast_shapes(found.shape, field.shape)) - field
    per_line = np.sqrt((err**2).mean(axis=1))
    keep = _away_from_jumps(true) if true.ndim == 3 else np.ones(per_line.shape, bool)
    return {
        "rms": float(np.sqrt(np.mean(err**2))),
        "rms_away": float(np.sqrt(np.mean(per_line[keep] ** 2))),
        "bad_lines": float(np.mean(per_line > 1.0)),
        "ncc": float(np.nanmean(ncc_frames(group["registered_even"][:], truth["even_true"][:]))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=5)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--jitter-min", type=float, default=4.0)
    parser.add_argument("--jitter-max", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=3000, help="first seed; held apart from demo/test seeds")
    args = parser.parse_args()
    jitter = {"jitter_blocks": args.blocks, "jitter_min": args.jitter_min, "jitter_max": args.jitter_max}
    rows: dict[tuple[str, str], dict[str, list[float]]] = {}

    with tempfile.TemporaryDirectory(prefix="orpam-jitter-") as tmp:
        for i in range(args.scans):
            for kind, extra in (("jitter", jitter), ("smooth", {})):
                params = SimulationParams.randomised(args.seed + i, frames=args.frames, height=args.size,
                                                     width=args.size, **extra)  # fmt: skip
                paths = write_simulation(Path(tmp) / kind, params)
                truth = zarr.open_group(paths.truth, mode="r")
                for label, settings in VARIANTS.items():
                    with open_scan(paths.scan) as source:
                        store = ingest_scan(source, Path(tmp) / kind / label.replace(" ", "_"), chunk_frames=16)
                    started = time.perf_counter()
                    register_store(store, get_method("phase", **settings))
                    stats = {"ms": 1000 * (time.perf_counter() - started) / args.frames, **_score(store, truth)}
                    for key, value in stats.items():
                        rows.setdefault((kind, label), {}).setdefault(key, []).append(value)

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"{args.scans} scans x {args.frames} frames of {args.size}x{args.size}; jitter: {args.blocks} blocks, jumps "
          f"{args.jitter_min:g}-{args.jitter_max:g} px; medians ({machine})")  # fmt: skip
    print(f"{'scans':<7} {'variant':<18} {'disp RMS px':>11} {'away from jumps':>16} {'lines >1 px':>12} "
          f"{'NCC vs truth':>13} {'ms/frame':>9}")  # fmt: skip
    for (kind, label), s in rows.items():
        med = {k: statistics.median(v) for k, v in s.items()}
        print(f"{kind:<7} {label:<18} {med['rms']:>11.3f} {med['rms_away']:>16.3f} {100 * med['bad_lines']:>11.1f}% "
              f"{med['ncc']:>13.4f} {med['ms']:>9.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
