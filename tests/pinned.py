"""A small fixed scan run through every method, held against what the pipeline wrote before.

Two references, both in ``tests/data``:

- ``store_digests.json``: sha256 digests of the stored arrays and the report's numbers, recorded per
  *platform* (:func:`platform_key`: the CPU kernels numpy's and scipy's OpenBLAS and torch dispatch to,
  and the library versions). On a recorded platform every method must write exactly those bytes.
  Float32 matrix products and network layers round differently under other SIMD kernels (an AVX2 CPU
  and an AVX-512 one give outputs a few 1e-7 apart), so a digest holds only where it was taken.
- ``store_reference.npz``: the same runs reduced to numbers compared with a tolerance on any platform:
  every frame's row and column means and its sum of squares for each array, and the report's pinned
  values. Real changes of results move these by far more than the tolerance (``RTOL``); rounding of
  another CPU does not.

History: the digests were first taken before the registry/CLI refactor (issue 12); ``eoir``, ``sasnet``,
``sasnet-flow`` and ``atdt`` were added with their shipped checkpoints; the report digests were taken again
when SSIM moved to float32 filtering (issue 18, SSIM moved by at most 2e-7), those of ``pcregnet`` and
``pcregnet-flow`` when CPU networks began to run one intra-op thread per chunk thread (outputs moved by at
most 1e-6 of the image range). They became per platform when a run on an AVX2 machine showed that the
pinning commit and the head wrote the same bytes there, different from the AVX-512 machine's.

Regenerate only for an intended change of results, or to add this platform's digests:
``python -m tests.pinned [--reference] [LABEL ...]`` (``--reference`` also rewrites the tolerance reference).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).parent / "data"
DIGESTS = DATA / "store_digests.json"
REFERENCE = DATA / "store_reference.npz"
RTOL = 1e-5
"""Tolerance of the reference numbers, relative to each quantity's scale (an array's largest projection,
a report number's magnitude but at least 1)."""
METHOD_OPTIONS: dict[str, dict] = {
    "none": {},
    "copy-odd": {},
    "phase": {},
    "pcregnet": {"precision": "fp32", "device": "cpu"},
    "pcregnet-flow": {"precision": "fp32", "device": "cpu"},
    "pcregnet-flow --line-profile": {"precision": "fp32", "device": "cpu", "line_profile": True},
    "eoir": {"precision": "fp32", "device": "cpu"},
    "sasnet": {"precision": "fp32", "device": "cpu"},
    "sasnet-flow": {"precision": "fp32", "device": "cpu"},
    "atdt": {"precision": "fp32", "device": "cpu"},
}
PINNED_REPORT_KEYS = (
    "displacement_px", "frame_shape", "frames", "method", "ncc_mean", "ncc_mean_unregistered", "ncc_unregistered",
    "per_frame", "psnr_mean", "psnr_mean_unregistered", "psnr_unregistered", "scan", "ssim_mean",
    "ssim_mean_unregistered", "ssim_unregistered", "tncc_merged", "tncc_odd", "tncc_unregistered", "tncg",
    "tncg_signed", "tncg_signed_unregistered", "tncg_unregistered", "undefined_frames",
)  # fmt: skip
"""The report's results when the digests were taken. Where and when the report was written, the settings'
spelling, the prose note, the checks' warnings (pinned by tests/checks) and keys added later are not
pinned here; a later key has its own tests."""
ARRAYS = ("frames", "registered_even", "merged", "displacement")


def platform_key() -> str:
    """What decides the last bits of the results here: machine, CPU kernels and library versions."""
    import scipy
    import torch
    from threadpoolctl import threadpool_info

    blas = sorted({f"{i['internal_api']}-{i.get('architecture')}" for i in threadpool_info() if i["user_api"] == "blas"})
    return " ".join([platform.machine(), f"torch-{torch.__version__}-{torch.backends.cpu.get_cpu_capability()}",
                     f"numpy-{np.__version__}", f"scipy-{scipy.__version__}", *blas])  # fmt: skip


def pinned_scan(folder: Path) -> Path:
    """Write the fixed 6-frame 64x48 simulated scan as ``folder/pinned.npy``."""
    from orpam_pipeline.simulate import SimulationParams, simulate

    sim = simulate(SimulationParams.randomised(11, frames=6, height=64, width=48))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pinned.npy"
    np.save(path, np.asarray(sim.frames, dtype=np.float32))
    return path


def stored_arrays(store: Path) -> dict[str, np.ndarray]:
    """Every pinned array the store holds, as little-endian float32."""
    import zarr

    from orpam_pipeline.store.layout import get_array, has_array

    group = zarr.open_group(store, mode="r")
    return {name: np.ascontiguousarray(get_array(group, name)[...], dtype="<f4")
            for name in ARRAYS if has_array(group, name)}  # fmt: skip


def projections(array: np.ndarray) -> np.ndarray:
    """Each frame's row means, column means and sum of squares, in float64 (frame-major, one vector)."""
    a = np.asarray(array, dtype=np.float64)
    a = a.reshape(a.shape[0], a.shape[1], -1)
    return np.concatenate([a.mean(axis=2), a.mean(axis=1), (a * a).sum(axis=(1, 2))[:, None]], axis=1).ravel()


def pinned_report(report: dict) -> dict:
    """The report's numbers and names (not where, when, or the settings' spelling)."""
    return {k: v for k, v in report.items() if k in PINNED_REPORT_KEYS}


def report_digest(report: dict) -> str:
    return hashlib.sha256(json.dumps(pinned_report(report), sort_keys=True).encode()).hexdigest()


def run_method(work: Path, label: str, chunk_frames: int = 2) -> tuple[dict[str, np.ndarray], dict]:
    """Ingest the pinned scan and register it with the method named by ``label``; return its arrays and report."""
    from orpam_pipeline.io import open_scan
    from orpam_pipeline.register import get_method
    from orpam_pipeline.register.engine import register
    from orpam_pipeline.report.scan_report import write_report
    from orpam_pipeline.store.ingest import ingest

    name = label.split()[0]
    src = pinned_scan(work / "src")
    with open_scan(src) as source:
        store = ingest(source, work / "out", chunk_frames=chunk_frames).store
    register(store, get_method(name, **METHOD_OPTIONS[label]))
    return stored_arrays(store), write_report(store)[0]


def digests(arrays: dict[str, np.ndarray], report: dict) -> dict[str, str]:
    """sha256 of each array's raw float32 bytes and of the report's pinned numbers."""
    return {**{k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in arrays.items()}, "report": report_digest(report)}


def recorded_digests() -> dict[str, dict[str, str]] | None:
    """This platform's recorded digests, or None where they were taken on other platforms only."""
    return json.loads(DIGESTS.read_text()).get(platform_key())


def reference_entries(label: str, arrays: dict[str, np.ndarray], report: dict) -> dict[str, np.ndarray]:
    entries = {f"{label}/{k}": projections(v) for k, v in arrays.items()}
    entries[f"{label}/report"] = np.array(json.dumps(pinned_report(report), sort_keys=True))
    return entries


def _numbers_close(got: Any, want: Any, where: str) -> list[str]:
    """Where ``got`` differs from ``want`` beyond ``RTOL`` (numbers) or at all (names, shapes, None)."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return [f"{where}: keys {sorted(got) if isinstance(got, dict) else got!r} != {sorted(want)}"]
        return [m for k in want for m in _numbers_close(got[k], want[k], f"{where}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{where}: {got!r} != {want!r}"]
        return [m for i, (g, w) in enumerate(zip(got, want)) for m in _numbers_close(g, w, f"{where}[{i}]")]
    numeric = (int, float)
    if isinstance(want, numeric) and not isinstance(want, bool) and isinstance(got, numeric) and not isinstance(got, bool):
        return [] if abs(got - want) <= RTOL * max(1.0, abs(want)) else [f"{where}: {got!r} != {want!r}"]
    return [] if got == want else [f"{where}: {got!r} != {want!r}"]


def reference_differences(label: str, arrays: dict[str, np.ndarray], report: dict) -> list[str]:
    """What of this run falls outside the tolerance of the reference of ``label`` (empty: it matches)."""
    with np.load(REFERENCE) as ref:
        names = {k.split("/", 1)[1] for k in ref.files if k.startswith(f"{label}/")} - {"report"}
        out = [] if names == set(arrays) else [f"arrays {sorted(arrays)} != {sorted(names)}"]
        for name in sorted(names & set(arrays)):
            want, got = ref[f"{label}/{name}"], projections(arrays[name])
            if got.shape != want.shape:
                out.append(f"{name}: shape of projections {got.shape} != {want.shape}")
                continue
            worst = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30))
            if not np.isfinite(worst) or worst > RTOL:
                out.append(f"{name}: projections differ by {worst:.2e} of their scale (tolerance {RTOL:g})")
        want_report = json.loads(str(ref[f"{label}/report"]))
    return out + _numbers_close(json.loads(json.dumps(pinned_report(report))), want_report, "report")


def main() -> None:
    """Record this platform's digests (and with ``--reference`` the tolerance reference) of the labels named."""
    args = sys.argv[1:]
    reference = "--reference" in args
    labels = [a for a in args if a != "--reference"] or list(METHOD_OPTIONS)
    everything = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
    mine = everything.setdefault(platform_key(), {})
    entries: dict[str, np.ndarray] = {}
    if reference and REFERENCE.exists():
        with np.load(REFERENCE) as old:
            entries = {k: old[k] for k in old.files if k.split("/", 1)[0] not in labels}
    for label in labels:
        with tempfile.TemporaryDirectory() as tmp:
            arrays, report = run_method(Path(tmp), label)
        mine[label] = digests(arrays, report)
        entries.update(reference_entries(label, arrays, report))
    DATA.mkdir(parents=True, exist_ok=True)
    DIGESTS.write_text(json.dumps(everything, indent=1, sort_keys=True) + "\n")
    if reference:
        np.savez_compressed(REFERENCE, **{k: (v.astype(np.float32) if v.dtype.kind == "f" else v)
                                          for k, v in entries.items()})  # fmt: skip
    json.dump(mine, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
