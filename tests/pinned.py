"""A small fixed scan run through every method, reduced to sha256 digests of the stored arrays.

``tests/data/store_digests.json`` holds the digests the pipeline wrote before the registry/CLI
refactor (issue 12); ``test_pinned_stores`` asserts that every method still writes exactly those
bytes. Regenerate only for an intended change of results: ``python -m tests.pinned [LABEL ...]``
(``eoir``, ``sasnet``, ``sasnet-flow`` and ``atdt`` were added with their shipped checkpoints, after the refactor;
the report digests were taken again when SSIM moved to float32 filtering, issue 18, which moved SSIM values by
at most 2e-7 and no other number or array; those of ``pcregnet`` and ``pcregnet-flow`` again when the engine's
chunk threads began to run CPU networks side by side on one intra-op thread each, which moved their float32
outputs by at most 1e-6 of the image range).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

DIGESTS = Path(__file__).parent / "data" / "store_digests.json"
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


def pinned_scan(folder: Path) -> Path:
    """Write the fixed 6-frame 64x48 simulated scan as ``folder/pinned.npy``."""
    from orpam_pipeline.simulate import SimulationParams, simulate

    sim = simulate(SimulationParams.randomised(11, frames=6, height=64, width=48))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pinned.npy"
    np.save(path, np.asarray(sim.frames, dtype=np.float32))
    return path


def array_digests(store: Path) -> dict[str, str]:
    """sha256 of the raw little-endian float32 bytes of every array the store holds."""
    import zarr

    from orpam_pipeline.store.layout import get_array, has_array

    group = zarr.open_group(store, mode="r")
    out = {}
    for name in ARRAYS:
        if has_array(group, name):
            data = np.ascontiguousarray(get_array(group, name)[...], dtype="<f4")
            out[name] = hashlib.sha256(data.tobytes()).hexdigest()
    return out


def run_method(work: Path, label: str, chunk_frames: int = 2) -> dict[str, str]:
    """Ingest the pinned scan and register it with the method named by ``label``; return the digests."""
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
    report = write_report(store)[0]
    return {**array_digests(store), "report": report_digest(report)}


def report_digest(report: dict) -> str:
    """sha256 of the report's numbers and names (not where, when, or the settings' spelling)."""
    kept = {k: v for k, v in report.items() if k in PINNED_REPORT_KEYS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def main() -> None:
    """Regenerate the digests of the labels named on the command line (default: all of them)."""
    labels = sys.argv[1:] or list(METHOD_OPTIONS)
    digests = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
    for label in labels:
        with tempfile.TemporaryDirectory() as tmp:
            digests[label] = run_method(Path(tmp), label)
    DIGESTS.parent.mkdir(parents=True, exist_ok=True)
    DIGESTS.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    json.dump(digests, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
