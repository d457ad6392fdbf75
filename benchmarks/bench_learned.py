"""Learned methods against `phase` on the same frames: ms per frame side by side, parameters and FLOPs,
and the pipeline's throughput against the network's alone.

One simulated sequence is split into backward and forward lines once; every method registers the
same arrays in memory (``measure``/``plan``/``apply`` as the engine calls them, no I/O), repeated and
reported as the median. Learned methods run on the CPU in fp32 and bf16 (and on CUDA when present,
with a batch-size sweep); the ratio column is each row's time over `phase`'s, measured in this run.

Second table, at ``--precision auto`` (what `orpam run` uses): frames per second of the network alone
(forward passes on tensors already on the device, in the batches the method uses), of the method in memory (normalisation,
network, resampling) and of the pipeline (the register stage of a store of ``--pipeline-frames`` frames,
chunked as `orpam run` chunks it: read, register, score, write the chunks), each over the model-only figure.

    .venv/bin/python benchmarks/bench_learned.py --frames 32 --size 256 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import numpy as np

from orpam_pipeline.geometry import split
from orpam_pipeline.register import METHODS, get_method
from orpam_pipeline.register.pcregnet import get_runner
from orpam_pipeline.simulate import SimulationParams, simulate


def _time(method: Any, odd: np.ndarray, even: np.ndarray, repeats: int) -> float:
    """Median seconds of one full registration of the frames (first pass included), after a warm-up."""
    method.configure(even.shape[1], odd.shape[2] + even.shape[2], "forward")

    def once() -> None:
        plan = method.plan(method.measure(odd, even)) if method.plan_width else None
        method.apply(odd, even, plan)

    return _median_seconds(once, repeats)


def _median_seconds(once: Any, repeats: int) -> float:
    """Median seconds of ``once()`` over ``repeats`` calls, after one untimed warm-up call."""
    once()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _model_cost(method: Any, height: int, width: int) -> tuple[int, float]:
    """Parameters and GFLOP per frame of a learned method's network on one (height, width) half-frame."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from orpam_pipeline.models.checkpoint import load_model

    model, _ = load_model(method.settings.checkpoint, device="cpu")
    model.eval()
    x = torch.rand(1, 1, height, width)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, x)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--pipeline-frames", type=int, default=128,
                        help="frames of the store the pipeline row registers (its throughput is a steady state: "
                             "the first chunk's read and the last chunk's writes are not overlapped)")
    parser.add_argument("--only-pipeline", action="store_true", help="print the pipeline vs model-only table only")
    args = parser.parse_args()
    import torch

    sim = simulate(SimulationParams.randomised(args.seed, frames=args.frames, height=args.size, width=args.size))
    odd, even = split(np.asarray(sim.frames, dtype=np.float32))
    from orpam_pipeline.evaluate.run import DEFAULT_METHODS

    learned = [name for name in DEFAULT_METHODS if METHODS[name].uses_network]  # those with a shipped checkpoint
    print(f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads; {args.frames} frames of {args.size}x{args.size}, median of {args.repeats}")  # fmt: skip
    long = simulate(SimulationParams.randomised(args.seed, frames=args.pipeline_frames, height=args.size, width=args.size))
    if args.only_pipeline:
        _pipeline_table(learned, long.frames, odd, even, args.repeats)
        return
    base = _time(get_method("phase"), odd, even, args.repeats)
    rows = [("phase", "-", "-", base)]
    devices = [("cpu", "fp32", 16), ("cpu", "bf16", 16)]
    if torch.cuda.is_available():
        devices += [("cuda", p, b) for p in ("fp32", "bf16") for b in (1, 4, 16, 64)]
    costs = {}
    for name in learned:
        for device, precision, batch in devices:
            method = get_method(name, device=device, precision=precision, batch_size=batch)
            seconds = _time(method, odd, even, args.repeats)
            used = get_runner(method.settings).batch_for(*even.shape[-2:])
            rows.append((name, f"{device} {precision}", str(used), seconds))
        costs[name] = _model_cost(get_method(name), even.shape[1], even.shape[2])
    print("\n| method | device, precision | batch | ms/frame | × phase |\n|---|---|---:|---:|---:|")
    for name, where, batch, seconds in rows:
        print(f"| {name} | {where} | {batch} | {1000 * seconds / args.frames:.2f} | {seconds / base:.2f} |")
    print("\n| method | parameters | GFLOP per frame (one half-frame pair) |\n|---|---:|---:|")
    for name, (params, gflop) in costs.items():
        print(f"| {name} | {params:,} | {gflop:.2f} |")
    _pipeline_table(learned, long.frames, odd, even, args.repeats)


def _model_only(name: str, odd: np.ndarray, even: np.ndarray, repeats: int) -> float:
    """Seconds for the network's forward passes alone over all frames (tensors prepared beforehand), in
    batches of the size the method itself uses (``_Runner.batch_for``: on the CPU the fastest, small ones)."""
    import torch

    from orpam_pipeline.geometry import odd_matched
    from orpam_pipeline.models.normalise import normalise_pair

    runner = get_runner(get_method(name, precision="auto").settings)
    batch = runner.batch_for(*even.shape[-2:])
    even, fixed, _ = normalise_pair(even, odd_matched(odd, even.shape[-1]))
    torch.set_flush_denormal(True)
    pairs = [(torch.from_numpy(np.ascontiguousarray(even[i:i + batch, None])).contiguous(memory_format=torch.channels_last),
              torch.from_numpy(np.ascontiguousarray(fixed[i:i + batch, None])).contiguous(memory_format=torch.channels_last))
             for i in range(0, len(even), batch)]  # fmt: skip

    def once() -> None:
        with torch.inference_mode(), runner._autocast():
            for m, f in pairs:
                runner.model(m, f)

    return _median_seconds(once, repeats)


def _pipeline(name: str, frames: np.ndarray, repeats: int) -> float:
    """Median seconds of the register stage of a fresh store of ``frames`` (first a warm-up run).

    The store is ingested as `orpam run` ingests it, so the frames as ingested are already scored (during
    ingest) and the register stage scores the registered lines only.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from orpam_pipeline.io import open_scan
    from orpam_pipeline.options import RunOptions
    from orpam_pipeline.pipeline import ingest_scored
    from orpam_pipeline.register.engine import register_store

    times = []
    with tempfile.TemporaryDirectory(prefix="orpam-bench-learned-") as tmp:
        np.save(Path(tmp) / "scan.npy", frames)
        for i in range(repeats + 1):
            with open_scan(Path(tmp) / "scan.npy") as source:
                store = ingest_scored(source, Path(tmp) / str(i), RunOptions()).store
            started = time.perf_counter()
            register_store(store, get_method(name, precision="auto"))
            if i:
                times.append(time.perf_counter() - started)
            shutil.rmtree(Path(tmp) / str(i))
    return statistics.median(times)


def _pipeline_table(learned: list[str], frames: np.ndarray, odd: np.ndarray, even: np.ndarray, repeats: int) -> None:
    n = len(even)
    print(f"\n| method (precision auto) | model only f/s | method in memory f/s | pipeline f/s ({len(frames)} frames) "
          "| memory / model | pipeline / model |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in learned:
        model = n / _model_only(name, odd, even, repeats)
        memory = n / _time(get_method(name, precision="auto"), odd, even, repeats)
        pipe = len(frames) / _pipeline(name, np.asarray(frames, dtype=np.float32), repeats)
        print(f"| {name} | {model:.1f} | {memory:.1f} | {pipe:.1f} | {memory / model:.2f} | {pipe / model:.2f} |")


if __name__ == "__main__":
    main()
