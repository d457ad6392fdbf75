"""PCReg-Net throughput: the network alone vs the whole `orpam register --method pcregnet`, side by side.

On the same simulated frames (256x256 by default, so each pair image is 256x128) this measures, in
one process and one run:

* model-only frames/s: the folded network on ready-made channels-last tensors, no I/O;
* engine frames/s: `register_store` end to end (zarr read, split, normalise, network, zarr write of
  registered_even and merged), with the same device, precision and batch size;
* their ratio (target >= 0.85), peak resident memory, and fp32 vs reduced precision
  (frames/s and the largest change of NCC against the odd lines).

    .venv/bin/python benchmarks/bench_pcregnet.py                    # CPU, shipped checkpoint
    .venv/bin/python benchmarks/bench_pcregnet.py --device cuda --batch-size 256 --frames 4096
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from orpam_pipeline.geometry import split
from orpam_pipeline.io import open_scan
from orpam_pipeline.metrics import ncc_frames
from orpam_pipeline.register import get_method
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.register.pcregnet import SHIPPED_CHECKPOINT, InferenceSettings, get_runner, resolve_precision
from orpam_pipeline.simulate import SimulationParams, write_simulation
from orpam_pipeline.store.ingest import ingest_scan


def model_only(runner, moving: np.ndarray, fixed: np.ndarray, repeats: int) -> float:
    """Frames/s of the network alone on tensors already in place (best of ``repeats`` medians)."""
    dev = runner.device
    bs = runner.batch_size
    m = torch.from_numpy(moving[:, None]).to(dev).contiguous(memory_format=torch.channels_last)
    f = torch.from_numpy(fixed[:, None]).to(dev).contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode(), runner._autocast():
        runner.model(m[:bs], f[:bs])
        for _ in range(repeats):
            if dev == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for s in range(0, m.shape[0], bs):
                runner.model(m[s : s + bs], f[s : s + bs])
            if dev == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return m.shape[0] / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="orpam-pcreg-") as tmp:
        params = SimulationParams.randomised(4242, frames=args.frames, height=args.size, width=args.size)
        paths = write_simulation(Path(tmp) / "sim", params)
        frames = np.load(paths.scan)
        odd, even = split(frames)
        fixed = np.ascontiguousarray(odd[..., : even.shape[-1]])
        from orpam_pipeline.models.normalise import normalise_pair

        m_norm, f_norm, _ = normalise_pair(even, fixed)
        rows = []
        outputs = {}
        for precision in ("fp32", "auto"):
            settings = InferenceSettings(checkpoint=args.checkpoint, device=args.device, precision=precision,
                                         batch_size=args.batch_size)  # fmt: skip
            runner = get_runner(settings)
            label = runner.precision
            model_fps = model_only(runner, m_norm, f_norm, args.repeats)
            engine_times = []
            for rep in range(args.repeats):
                with open_scan(paths.scan) as source:
                    store = ingest_scan(source, Path(tmp) / f"out-{label}-{rep}", chunk_frames=max(args.batch_size, 16))
                t0 = time.perf_counter()
                register_store(store, get_method("pcregnet", **vars(settings)))
                engine_times.append(time.perf_counter() - t0)
            engine_fps = args.frames / statistics.median(engine_times)
            outputs[label] = runner(even, fixed)
            rows.append((label, model_fps, engine_fps))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ref = ncc_frames(outputs["fp32"], fixed)
    device = runner.device
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"{platform.machine()} CPU, {os.cpu_count()} cores"
    print(f"PCReg-Net on {args.frames} simulated {args.size}x{args.size} frames ({name}, torch {torch.__version__}), "
          f"batch {args.batch_size}, median of {args.repeats}")  # fmt: skip
    print(f"{'precision':<10} {'model-only f/s':>15} {'register f/s':>13} {'ratio':>6} {'max |dNCC| vs fp32':>19}")
    for label, model_fps, engine_fps in rows:
        dncc = float(np.max(np.abs(ncc_frames(outputs[label], fixed) - ref)))
        print(f"{label:<10} {model_fps:>15.1f} {engine_fps:>13.1f} {engine_fps / model_fps:>6.2f} {dncc:>19.5f}")
    print(f"peak resident memory of this process: {peak:.0f} MiB; auto precision here = "
          f"{resolve_precision('auto', device)}")  # fmt: skip


if __name__ == "__main__":
    main()
