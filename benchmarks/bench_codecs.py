"""The store's compressor against its neighbours: compression ratio and encode speed on four kinds of frames.

One 8 MiB chunk (32 frames of 256²) of each kind, encoded by Blosc with bit-shuffle as the store does
(``store.layout.codecs``), on one thread, medians of ``--repeats``:

- ``float noise``: a simulated scan as float32 (every mantissa bit random: the hardest case);
- ``12-bit counts``: the same scan quantised to ADC counts 0–4095 and stored as float32;
- ``uint16``: counts 0–20000 (a 16-bit digitiser);
- ``zero background``: the float scan with its lowest 60 % set to 0 (thresholded data).

Printed per codec and kind: ratio (raw / compressed) and MB/s of raw data, and the encode time as a
multiple of the store's codec on the same kind, so the choice can be checked on the machine at hand.

    .venv/bin/python benchmarks/bench_codecs.py
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date

import numpy as np
from numcodecs import Blosc
from numcodecs import blosc

from orpam_pipeline.simulate import SimulationParams, simulate
from orpam_pipeline.store.layout import codecs

CANDIDATES = (("zstd", 1), ("zstd", 3), ("zstd", 5), ("lz4", 5), ("lz4", 9))


def store_codec() -> tuple[str, int]:
    """The store's own Blosc ``(cname, clevel)``."""
    blosc = next(c for c in codecs()["compressors"] if type(c).__name__ == "BloscCodec")
    return str(getattr(blosc.cname, "value", blosc.cname)), int(blosc.clevel)


def chunks(frames: int, size: int) -> dict[str, np.ndarray]:
    """The four kinds of chunk, from one simulated scan (seed 1)."""
    f = simulate(SimulationParams.randomised(1, frames=frames, height=size, width=size)).frames.astype(np.float32)
    f = np.ascontiguousarray(f)
    positive = np.clip(f / max(float(f.max()), 1e-12), 0, None)
    background = f.copy()
    background[background < np.quantile(background, 0.6)] = 0
    return {
        "float noise": f,
        "12-bit counts": np.round(positive * 4095).astype(np.float32),
        "uint16": np.round(positive * 20000).astype(np.uint16).astype(np.float32),
        "zero background": background,
    }


def measure(data: np.ndarray, cname: str, level: int, repeats: int) -> tuple[float, float]:
    """Ratio and median encode seconds of ``data`` with Blosc ``cname`` at ``level``, bit-shuffle."""
    codec = Blosc(cname=cname, clevel=level, shuffle=Blosc.BITSHUFFLE, blocksize=0)
    size = len(codec.encode(data))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        codec.encode(data)
        times.append(time.perf_counter() - start)
    return data.nbytes / size, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    blosc.use_threads = False  # the store encodes each chunk on one thread (chunks run side by side)
    frames = max(1, 8 * 2**20 // (args.size * args.size * 4))
    own = store_codec()
    print(f"bench_codecs: {frames} frames of {args.size}², medians of {args.repeats}, {platform.machine()}, "
          f"Python {platform.python_version()}, {date.today()}; the store uses Blosc {own[0]} level {own[1]}")  # fmt: skip
    print(f"{'kind':16s} {'codec':8s} {'ratio':>6s} {'MB/s':>6s} {'time vs store':>14s}")
    for kind, data in chunks(frames, args.size).items():
        results = {c: measure(data, *c, args.repeats) for c in dict.fromkeys((own, *CANDIDATES))}
        for (cname, level), (ratio, seconds) in results.items():
            mark = " *" if (cname, level) == own else ""
            print(f"{kind:16s} {cname + ' ' + str(level):8s} {ratio:6.3f} {data.nbytes / seconds / 1e6:6.0f} "
                  f"{seconds / results[own][1]:13.2f}x{mark}")  # fmt: skip


if __name__ == "__main__":
    main()
