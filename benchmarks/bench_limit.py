"""End to end against the I/O limit: `orpam run` and two single-shift peers on the same simulated scan.

For every frame size (default 128² and 256², 1,000 frames) one scan is simulated (not timed) and
saved as ``.npy`` with no ground truth beside it (a lab's scan; no truth scoring). Then, in one
session and interleaved per repeat, every row runs in a fresh child process:

- ``io-limit``: read the input and write the four output arrays (``frames``, ``registered_even``,
  ``merged``, ``displacement``) with the store's own codecs, chunking and per-chunk ``fsync``
  (``store.layout.create_frame_array`` / ``write_image``) and nothing else. ``write_image`` encodes a
  chunk on the calling thread, here the main thread, where numcodecs lets Blosc use its own threads (one
  per core, at most 8), so the limit's encoding uses every core as the pipeline's chunk tasks do;
- ``shift-int``: a global integer shift of the backward lines (what suite2p's bidiphase does),
  estimated once from the mean of the first chunk by phase correlation, read → correct → write of
  the same four arrays;
- ``shift-subpx``: a global sub-pixel shift (what scikit-image's ``phase_cross_correlation`` with
  ``upsample_factor=20`` plus a Fourier shift does), implemented here with numpy FFTs, same I/O;
- ``none``, ``copy-odd``, ``phase``: the library's ``run_batch`` (what `orpam run` calls), run
  in-process in the child after its imports, so interpreter start-up and imports are not timed;
  ``none --figures none`` and ``phase --figures none``: the same without drawing the report's figures
  (the pipeline's own cost, apart from matplotlib's); ``phase --figure-workers 0``: figures drawn on the
  calling thread only (``ORPAM_FIGURE_WORKERS=0``), to show what the figure workers save;
- ``phase (T/5)``: ``phase`` on the first fifth of the frames of the largest size, for the memory
  row (peak RSS should stay flat in the number of frames).

Printed per row: median seconds, frames/s, ratio to ``io-limit`` of the same size, CPU seconds (user +
system of the row's process, its children and the figure workers) with the floor they set (CPU seconds
spread over every usable core, as a multiple of the I/O limit: no scheduling can beat it on this
machine), and peak RSS
(the child's resident high-water mark: ``psutil`` where it reports one, else ``ru_maxrss``; the figure
worker processes' high-water marks are summed apart, as ``+workers``). For
the pipeline rows, a per-stage breakdown (ingest, measure, plan, apply+write, report metrics,
report figures and page) comes from the pipeline's progress callback and timers around the
report's two halves.

    .venv/bin/python benchmarks/bench_limit.py                      # 128² and 256², 1,000 frames, 3 repeats
    .venv/bin/python benchmarks/bench_limit.py --frames 200 --repeats 1 --sizes 256
    .venv/bin/python benchmarks/bench_limit.py --sizes 256 --repeats 5 --rows none "none --figures none"
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
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmark the tree this file is in, also in the child processes
    sys.path.insert(0, str(ROOT))

PEERS = ("io-limit", "shift-int", "shift-subpx")
METHODS = ("none", "copy-odd", "phase", "phase --figure-workers 0", "none --figures none", "phase --figures none")
TASK_PARTS = {"_measure_block": "measure", "_apply_block": "apply", "write_image": "write", "score_arrays": "score"}
"""Functions of the register engine timed inside the chunk tasks (seconds summed over the dask threads)."""
STAGES = ("ingest", "measure", "plan", "apply+write", "report metrics", "report figures+page")
CPU_STAGES = ("ingest", "measure", "plan", "apply+write", "report")
MAX_SHIFT = 16
UPSAMPLE = 20


# -- scan ----------------------------------------------------------------------------------------
def simulate_scan(folder: Path, frames: int, size: int) -> Path:
    """Write a randomised simulated scan (seed 1) as ``folder/scans/scan-<size>.npy``, block by block."""
    from orpam_pipeline.simulate import SimulationParams
    from orpam_pipeline.simulate.sequence import simulate_blocks

    path = folder / "scans" / f"scan-{size}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(frames, size, size))
    for t0, block, _, _ in simulate_blocks(SimulationParams.randomised(1, frames=frames, height=size, width=size)):
        out[t0 : t0 + block.shape[0]] = block
    out.flush()
    del out
    return path


def first_frames(src: Path, frames: int) -> Path:
    """A copy of the first ``frames`` frames of ``src`` in a folder of its own (for the memory row)."""
    data = np.load(src, mmap_mode="r")
    path = src.parent.parent / f"short-{src.stem}" / src.name
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(data[:frames]))
    return path


# -- the peers: read -> correct -> write ---------------------------------------------------------
class FourArrays:
    """The four output arrays of a scan store, written chunk by chunk as the pipeline writes them."""

    def __init__(self, out: Path, shape: tuple[int, int, int]) -> None:
        import zarr

        from orpam_pipeline.store.layout import DISPLACEMENT, FRAMES, MERGED, REGISTERED_EVEN
        from orpam_pipeline.store.layout import auto_chunk_frames, create_frame_array, image_levels

        n, h, w = shape
        self.chunk = auto_chunk_frames((h, w), n)
        group = zarr.open_group(out, mode="w")
        create_frame_array(group, FRAMES, shape, self.chunk)
        create_frame_array(group, REGISTERED_EVEN, (n, h, w // 2), self.chunk)
        create_frame_array(group, MERGED, shape, self.chunk)
        create_frame_array(group, DISPLACEMENT, (n, h), self.chunk, ("t", "y"))
        self.levels = {name: image_levels(group, name) for name in (FRAMES, REGISTERED_EVEN, MERGED, DISPLACEMENT)}

    def write(self, start: int, frames: np.ndarray, reg: np.ndarray, disp: np.ndarray) -> None:
        from orpam_pipeline.geometry import interleave, split
        from orpam_pipeline.store.layout import write_image

        stop = start + frames.shape[0]
        merged = interleave(split(frames)[0], reg)
        for name, data in zip(self.levels, (frames, reg, merged, disp)):
            write_image(self.levels[name], start, stop, np.ascontiguousarray(data, dtype=np.float32))


def _cross_power(mean: np.ndarray) -> np.ndarray:
    """Whitened cross-power spectrum along Y of the backward vs forward columns of a mean frame."""
    odd, even = mean[:, 0::2], mean[:, 1::2]
    width = min(odd.shape[1], even.shape[1])
    fa = np.fft.fft(even[:, :width] - even.mean(), axis=0)
    fb = np.fft.fft(odd[:, :width] - odd.mean(), axis=0)
    cross = (fa * np.conj(fb)).sum(axis=1)
    return cross / np.maximum(np.abs(cross), 1e-12)


def integer_shift(mean: np.ndarray) -> int:
    """Lag (rows, within ±MAX_SHIFT) of the backward lines against the forward ones, by phase correlation."""
    corr = np.real(np.fft.ifft(_cross_power(mean)))
    lags = np.fft.fftfreq(corr.size, 1.0 / corr.size)
    corr[np.abs(lags) > MAX_SHIFT] = -np.inf
    return int(lags[int(np.argmax(corr))])


def subpixel_shift(mean: np.ndarray) -> float:
    """Integer peak, then the correlation on a 1/UPSAMPLE grid within ±1.5 px of it by a matrix DFT."""
    spec = _cross_power(mean)
    n = spec.size
    coarse = integer_shift(mean)
    grid = coarse + np.arange(-1.5 * UPSAMPLE, 1.5 * UPSAMPLE + 1) / UPSAMPLE
    freqs = np.fft.fftfreq(n)
    fine = np.real(np.exp(2j * np.pi * np.outer(grid, freqs)) @ spec)
    return float(grid[int(np.argmax(fine))])


def shift_rows_int(even: np.ndarray, lag: int) -> np.ndarray:
    """``even[t, y + lag]`` with the edge rows repeated where that falls outside the line."""
    rows = np.clip(np.arange(even.shape[1]) + lag, 0, even.shape[1] - 1)
    return even[:, rows]


def shift_rows_fourier(even: np.ndarray, lag: float) -> np.ndarray:
    """``even[t, y + lag]`` by a phase ramp along Y (periodic, as a Fourier shift is)."""
    n = even.shape[1]
    ramp = np.exp(2j * np.pi * np.fft.rfftfreq(n) * lag).astype(np.complex64)
    return np.fft.irfft(np.fft.rfft(even, axis=1) * ramp[None, :, None], n=n, axis=1).astype(np.float32)


def run_peer(kind: str, src: Path, out: Path) -> dict[str, Any]:
    """Read ``src`` chunk by chunk, correct the backward lines (or not, for the limit), write four arrays."""
    data = np.load(src, mmap_mode="r")
    arrays = FourArrays(out, data.shape)
    chunk = arrays.chunk
    shift: float = 0.0
    for start in range(0, data.shape[0], chunk):
        frames = np.array(data[start : start + chunk])
        even = frames[..., 1::2]
        if kind == "io-limit":
            reg = even
        elif kind == "shift-int":
            shift = integer_shift(frames.mean(axis=0)) if start == 0 else shift
            reg = shift_rows_int(even, int(shift))
        else:
            shift = subpixel_shift(frames.mean(axis=0)) if start == 0 else shift
            reg = shift_rows_fourier(even, shift)
        arrays.write(start, frames, reg, np.full(frames.shape[:2], shift, dtype=np.float32))
    return {"shift": shift}


# -- the pipeline --------------------------------------------------------------------------------
class StageClock:
    """Times and CPU seconds of the pipeline's progress events, and times of the report's two halves."""

    def __init__(self) -> None:
        self.t0, self.cpu0 = time.perf_counter(), process_cpu_seconds()
        self.events: list[tuple[str, float, float]] = []
        self.report: dict[str, float] = {}

    def progress(self, stage: str, done: int, total: int) -> None:
        self.events.append((stage, time.perf_counter(), process_cpu_seconds()))

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.report[name] = self.report.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    def _at(self, stage: str, last: bool = False) -> tuple[float, float] | None:
        """(time, CPU seconds) of the stage's first (or last) event."""
        found = [(t, c) for s, t, c in self.events if s == stage]
        return (found[-1] if last else found[0]) if found else None

    def stages(self, end: float, end_cpu: float) -> tuple[dict[str, float], dict[str, float]]:
        """Seconds and CPU seconds per stage; ``plan`` is the gap between the last measured chunk and the first
        written one, ``report`` all after the last written chunk (its metrics timed apart, in seconds only)."""
        m0, m1 = self._at("measure"), self._at("measure", last=True)
        r0, r1 = self._at("register"), self._at("register", last=True)
        start, stop = (self.t0, self.cpu0), (end, end_cpu)
        spans = {"ingest": (start, m0 or r0 or stop), "measure": (m0, m1), "plan": (m1, r0),
                 "apply+write": (r0, r1), "report": (r1 or stop, stop)}  # fmt: skip
        wall = {k: (b[0] - a[0]) if a and b else 0.0 for k, (a, b) in spans.items()}
        cpu = {k: (b[1] - a[1]) if a and b else 0.0 for k, (a, b) in spans.items()}
        wall["report metrics"] = self.report.get("metrics", 0.0)
        wall["report figures+page"] = wall.pop("report") - wall["report metrics"]
        return wall, cpu


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process's threads so far, and of its figure workers."""
    own = os.times()
    return own[0] + own[1] + figure_workers_cpu_seconds(wait=False)


def run_pipeline(row: str, src: Path, out: Path) -> dict[str, Any]:
    """``run_batch`` (what `orpam run` does) on the folder holding ``src``, with stage timers; ``row`` is the
    method, optionally followed by ``--figures none``."""
    from orpam_pipeline.options import RunOptions
    from orpam_pipeline.pipeline import run_batch
    from orpam_pipeline.report import scan_report

    from orpam_pipeline.register import engine

    clock = StageClock()
    scan_report.compute_report = clock.timed("metrics", scan_report.compute_report)
    for name, key in TASK_PARTS.items():
        if hasattr(engine, name):  # older trees score no chunks in the engine
            setattr(engine, name, clock.timed(key, getattr(engine, name)))
    method = row.split()[0]
    figures = "none" if "--figures none" in row else "all"
    if "--figure-workers 0" in row:
        os.environ["ORPAM_FIGURE_WORKERS"] = "0"
    outcomes = run_batch(src.parent, out, RunOptions(method=method, figures=figures), progress=clock.progress)
    end, end_cpu = time.perf_counter(), process_cpu_seconds()
    if len(outcomes) != 1 or not outcomes[0].ok:
        raise SystemExit(f"{method}: {[o.error for o in outcomes]}")
    tasks = {key: clock.report.get(key, 0.0) for key in TASK_PARTS.values()}
    wall, cpu = clock.stages(end, end_cpu)
    return {"stages": wall, "stage_cpu": cpu, "tasks": tasks, "torch": "torch" in sys.modules,
            "workers_mib": figure_workers_peak_mib(), "workers_cpu": figure_workers_cpu_seconds()}


def _figure_worker_pids(wait: bool = True) -> list[int]:
    """The figure workers' process ids; without ``wait``, only those known without asking a worker (which waits
    while it draws)."""
    try:
        from orpam_pipeline.report import figure_workers
    except ImportError:  # an older tree
        return []
    pids = []
    for w in getattr(figure_workers, "_workers", []):
        if not hasattr(w, "pid"):  # an older tree's workers are all started processes
            pids.append(w.process.pid)
        elif wait or getattr(w, "_pid", None) is not None or w.process is not None:
            pids.append(w.pid if wait else (w._pid or w.process.pid))  # a forked worker has no process handle
    return pids


def figure_workers_cpu_seconds(wait: bool = True) -> float:
    """CPU seconds (user + system) the figure worker processes have used so far (0 where none ran or unknown;
    without ``wait``, of the workers whose id is known, see :func:`_figure_worker_pids`).

    They live until the run's process exits, so ``os.times()``'s children fields do not hold them yet."""
    total = 0.0
    for pid in _figure_worker_pids(wait):
        stat = Path(f"/proc/{pid}/stat")
        if stat.is_file():
            fields = stat.read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def figure_workers_peak_mib() -> float:
    """The summed resident high-water marks of the figure worker processes (0 where none ran or unknown)."""
    total = 0.0
    for pid in _figure_worker_pids():
        status = Path(f"/proc/{pid}/status")
        if status.is_file():
            line = next((x for x in status.read_text().splitlines() if x.startswith("VmHWM:")), None)
            total += int(line.split()[1]) / 1024.0 if line else 0.0
    return total


# -- child process -------------------------------------------------------------------------------
def peak_rss_mib() -> float:
    """This process's resident high-water mark in MiB.

    Linux: ``VmHWM`` of /proc/self/status (``ru_maxrss`` would carry over the parent's resident size
    from before the child's exec); Windows: psutil's ``peak_wset``; else ``ru_maxrss``.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024.0
    import psutil

    peak = getattr(psutil.Process().memory_info(), "peak_wset", None)
    if peak is not None:
        return peak / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(row: str, src: Path, out: Path) -> None:
    """Run one row and print ``{seconds, peak_mib, ...}`` as JSON on the last line (malloc set up as the CLI
    sets it up, for every row)."""
    from orpam_pipeline.memory import limit_malloc_arenas

    limit_malloc_arenas()
    import zarr  # noqa: F401  (imports are not timed, as in the pipeline rows)

    import orpam_pipeline.pipeline  # noqa: F401

    cpu0, start = os.times(), time.perf_counter()
    extra = run_peer(row, src, out / "peer.zarr") if row in PEERS else run_pipeline(row, src, out)
    seconds, cpu1 = time.perf_counter() - start, os.times()
    cpu = sum(cpu1[:4]) - sum(cpu0[:4]) + extra.pop("workers_cpu", 0.0)
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mib": peak_rss_mib(), **extra}))


def run_child(row: str, src: Path, out: Path, script: str = __file__) -> dict[str, Any]:
    """Run ``script --child row`` (this benchmark's, or another's with the same child arguments) in a fresh
    interpreter; its last line of output, as JSON."""
    cmd = [sys.executable, script, "--child", row, "--src", str(src), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"{row} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# -- driver --------------------------------------------------------------------------------------
def measure_all(root: Path, sizes: list[int], frames: int, repeats: int,
                rows: list[str] | None = None) -> dict[tuple[int, str], list[dict]]:  # fmt: skip
    """Every row of every size (or only ``rows``, with ``io-limit`` always), each repeat running all rows once
    (interleaved), fresh outputs each time."""
    scans = {size: simulate_scan(root / f"sim-{size}", frames, size) for size in sizes}
    wanted = [r for r in (*PEERS, *METHODS) if rows is None or r == "io-limit" or r in rows]
    jobs = [(size, row, scans[size]) for size in sizes for row in wanted]
    if rows is None:
        short = first_frames(scans[max(sizes)], max(2, frames // 5))
        jobs.append((max(sizes), f"phase (T/5={max(2, frames // 5)})", short))
    runs: dict[tuple[int, str], list[dict]] = {(s, r): [] for s, r, _ in jobs}
    for rep in range(repeats):
        for size, row, src in jobs:
            out = root / f"out-{size}-{row.split()[0]}-{len(row)}-{rep}"
            runs[(size, row)].append(run_child(row, src, out))
            print(f"  repeat {rep + 1}: {size}² {row}: {runs[(size, row)][-1]['seconds']:.2f} s", file=sys.stderr)
    return runs


def summarise(runs: dict[tuple[int, str], list[dict]], frames: int) -> list[dict[str, Any]]:
    """Medians per row, with frames/s and the ratio to the I/O limit of the same size."""
    rows = []
    for (size, row), results in runs.items():
        n = frames if not row.startswith("phase (") else max(2, frames // 5)
        sec = statistics.median(r["seconds"] for r in results)
        rows.append({"size": size, "row": row, "frames": n, "seconds": sec, "fps": n / sec,
                     "cpu": statistics.median(r.get("cpu", float("nan")) for r in results),
                     "peak_mib": statistics.median(r["peak_mib"] for r in results),
                     "workers_mib": statistics.median(r.get("workers_mib", 0.0) for r in results),
                     "stages": {k: statistics.median(r["stages"][k] for r in results) for k in STAGES}
                     if "stages" in results[0] else None,
                     "stage_cpu": {k: statistics.median(r["stage_cpu"][k] for r in results) for k in CPU_STAGES}
                     if "stage_cpu" in results[0] else None,
                     "tasks": {k: statistics.median(r["tasks"][k] for r in results) for k in TASK_PARTS.values()}
                     if "tasks" in results[0] else None,
                     "torch": any(r.get("torch") for r in results)})  # fmt: skip
    from orpam_pipeline.cores import usable_cores

    cores = usable_cores()
    for r in rows:
        limit = next(x for x in rows if x["size"] == r["size"] and x["row"] == "io-limit")
        r["ratio"] = limit["fps"] / r["fps"]
        r["floor"] = r["cpu"] / cores / limit["seconds"] * (limit["frames"] / r["frames"])
    return rows


def print_table(rows: list[dict[str, Any]], repeats: int) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"bench_limit: medians of {repeats}, {machine}, {time.strftime('%Y-%m-%d')}")
    print(f"{'size':>5} {'row':<26} {'frames':>6} {'s':>7} {'frames/s':>9} {'vs limit':>8} {'CPU s':>7} "
          f"{'floor':>7} {'peak MiB':>9} {'+workers':>9}")  # fmt: skip
    for r in rows:
        print(f"{r['size']:>5} {r['row']:<26} {r['frames']:>6} {r['seconds']:>7.2f} {r['fps']:>9.1f} "
              f"{r['ratio']:>7.2f}x {r['cpu']:>7.2f} {r['floor']:>6.2f}x {r['peak_mib']:>9.0f} {r['workers_mib']:>9.0f}"
              + ("  (torch imported!)" if r["torch"] else ""))  # fmt: skip
    from orpam_pipeline.cores import usable_cores

    print(f"CPU s: user + system seconds of the row's process, its children and its figure workers; floor: "
          f"CPU s / {usable_cores()} cores as a multiple of the I/O limit (per frame), the least the row could "
          "take here with every core busy all the time")
    print("\nper stage (s, median) of the pipeline rows:")
    print(f"{'size':>5} {'row':<26} " + " ".join(f"{s:>12}" for s in STAGES))
    for r in rows:
        if r["stages"]:
            print(f"{r['size']:>5} {r['row']:<26} " + " ".join(f"{r['stages'][s]:>12.2f}" for s in STAGES))
    print("\nwhere the CPU goes: CPU seconds per stage (median; the process's threads and its figure workers), "
          "against the I/O limit's whole run")
    print(f"{'size':>5} {'row':<26} " + " ".join(f"{s:>12}" for s in CPU_STAGES) + f" {'io-limit':>12}")
    for r in rows:
        if r["stage_cpu"]:
            limit = next(x for x in rows if x["size"] == r["size"] and x["row"] == "io-limit")
            print(f"{r['size']:>5} {r['row']:<26} " + " ".join(f"{r['stage_cpu'][s]:>12.2f}" for s in CPU_STAGES)
                  + f" {limit['cpu']:>12.2f}")
    print("\ninside the chunk tasks (s summed over the dask threads, median): first pass, method, writes "
          "(compression, fsync), report metrics of the chunk")
    print(f"{'size':>5} {'row':<26} " + " ".join(f"{s:>12}" for s in TASK_PARTS.values()))
    for r in rows:
        if r["tasks"]:
            print(f"{r['size']:>5} {r['row']:<26} " + " ".join(f"{r['tasks'][s]:>12.2f}" for s in TASK_PARTS.values()))
    memory = [r for r in rows if r["row"] == "phase" or r["row"].startswith("phase (")]
    if not any(r["row"].startswith("phase (") for r in memory):
        return
    big = max(r["size"] for r in memory)
    long_, short = (next(r for r in memory if r["size"] == big and r["row"] == "phase"),
                    next(r for r in memory if r["row"].startswith("phase (")))  # fmt: skip
    print(f"\nmemory flat in frames: phase {big}², peak RSS {short['frames']} -> {long_['frames']} frames: "
          f"{short['peak_mib']:.0f} -> {long_['peak_mib']:.0f} MiB (ratio {long_['peak_mib'] / short['peak_mib']:.2f})")


def add_child_arguments(parser: argparse.ArgumentParser) -> None:
    """The hidden arguments with which :func:`run_child` starts a row in a fresh interpreter."""
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the medians here")
    parser.add_argument("--rows", nargs="+", choices=(*PEERS, *METHODS), help="only these rows (and io-limit)")
    add_child_arguments(parser)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.src, args.out)
        return
    with tempfile.TemporaryDirectory(prefix="orpam-limit-") as tmp:
        rows = summarise(measure_all(Path(tmp), args.sizes, args.frames, args.repeats, args.rows), args.frames)
    print_table(rows, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
