"""The held-out simulated benchmark: a fixed, seeded set of scans never used for training.

Training data use seeds 100-111; the benchmark uses seeds 5000-5005 and, for two scans, scenes
outside the training distribution. Each scan starts from ``SimulationParams.randomised(seed)`` and
overrides what the scan is meant to test, so the set spans appearance (gain, gamma, offset),
displacement profiles (constant, linear, curved; small and large), noise, and scene type. The data are
generated on demand and re-used when the recorded parameters and file hashes still match.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orpam_pipeline.io import sha256_file
from orpam_pipeline.simulate import SceneParams, SimulationParams, write_simulation

BENCHMARK_FRAMES = 48
BENCHMARK_SIZE = 256
BENCHMARK_INDEX = "benchmark.json"


@dataclass(frozen=True)
class BenchmarkScan:
    """One benchmark scan: its name, a one-line description, the seed and the parameter overrides."""

    name: str
    description: str
    seed: int
    overrides: dict[str, Any]

    def params(self, frames: int = BENCHMARK_FRAMES, size: int = BENCHMARK_SIZE) -> SimulationParams:
        """The full simulation parameters of this scan."""
        return SimulationParams.randomised(self.seed, frames=frames, height=size, width=size, **self.overrides)


_STILL = {"disp_slope": 0.0, "disp_sine_amp": 0.0}

BENCHMARK_SCANS: tuple[BenchmarkScan, ...] = (
    BenchmarkScan(
        "bench-5000-constant-small",
        "constant small shift (+1.2 px, drift 0.1 px), neutral appearance (gain 1, gamma 1, offset 0), "
        "training-like scene and noise",
        5000,
        {**_STILL, "disp_offset": 1.2, "disp_drift": 0.1, "gain": 1.0, "gamma": 1.0, "offset": 0.0},
    ),
    BenchmarkScan(
        "bench-5001-linear-large",
        "large linear profile (-7 px at the centre, 8 px change along the line), bright backward lines "
        "(gain 1.35, offset +0.05)",
        5001,
        {"disp_offset": -7.0, "disp_slope": 8.0, "disp_sine_amp": 0.0, "disp_drift": 0.4, "gain": 1.35,
         "offset": 0.05, "gamma": 1.0},
    ),
    BenchmarkScan(
        "bench-5002-curved",
        "curved profile (offset +2.5, slope -1.5, sine 1.5 px x 1.5 cycles), dim non-linear backward "
        "lines (gain 0.7, gamma 1.3, offset +0.08)",
        5002,
        {"disp_offset": 2.5, "disp_slope": -1.5, "disp_sine_amp": 1.5, "disp_sine_cycles": 1.5,
         "gain": 0.7, "gamma": 1.3, "offset": 0.08},
    ),
    BenchmarkScan(
        "bench-5003-noisy",
        "about 3x the training noise on both line sets (shot 0.09/0.12, read 0.04/0.05), moderate "
        "curved profile (-3 px)",
        5003,
        {"disp_offset": -3.0, "disp_slope": 1.0, "disp_sine_amp": 0.5, "shot_noise": 0.09, "read_noise": 0.04,
         "even_shot_noise": 0.12, "even_read_noise": 0.05},
    ),
    BenchmarkScan(
        "bench-5004-capillaries",
        "unlike training: many thin vessels (12 roots per 256^2, root radius 2 px, min radius 0.5 px), "
        "bright dense capillary bed, sharp PSF (0.6 px); shift +2 px with slope",
        5004,
        {"scene": SceneParams(n_roots=12.0, root_radius=2.0, min_radius=0.5, segment_length=10.0,
                              tortuosity=1.8, capillary_level=0.45, capillary_scale=2.0, capillary_width=0.25,
                              background_level=0.03, psf_sigma=0.6),
         "disp_offset": 2.0, "disp_slope": 1.5, "disp_sine_amp": 0.3},
    ),
    BenchmarkScan(
        "bench-5005-large-vessels",
        "unlike training: few very large vessels (2 roots, radius 12 px), wide PSF (2.5 px), faint "
        "capillaries; gamma 0.7 with negative offset; shift -4.5 px with curvature",
        5005,
        {"scene": SceneParams(n_roots=2.0, root_radius=12.0, segment_length=8.0, tortuosity=0.6,
                              capillary_level=0.05, background_level=0.1, psf_sigma=2.5),
         "disp_offset": -4.5, "disp_slope": -2.0, "disp_sine_amp": 1.0, "gamma": 0.7, "offset": -0.05,
         "gain": 1.1},
    ),
)


def _sha256_tree(root: Path) -> str:
    """Digest over every file of a directory tree (relative names and contents, in sorted order)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(sha256_file(path).encode())
    return h.hexdigest()


def _entry_matches(root: Path, recorded: dict[str, Any] | None, params: SimulationParams) -> bool:
    if not recorded or recorded.get("params") != params.to_dict():
        return False
    scan = root / recorded.get("scan", "")
    truth = root / recorded.get("truth", "")
    if not scan.is_file() or not truth.is_dir():
        return False
    return sha256_file(scan) == recorded.get("scan_sha256") and _sha256_tree(truth) == recorded.get("truth_sha256")


def ensure_benchmark(root: Path, frames: int = BENCHMARK_FRAMES, size: int = BENCHMARK_SIZE) -> dict[str, Any]:
    """Generate the benchmark into ``root`` (``scans/``, ``truth/``, ``benchmark.json``) unless it is already there.

    Returns the index: for every scan its description, parameters, paths and sha256 digests, and
    whether it was ``generated`` now or ``reused``.
    """
    root = Path(root)
    index_path = root / BENCHMARK_INDEX
    old: dict[str, Any] = {}
    if index_path.is_file():
        try:
            old = {s["name"]: s for s in json.loads(index_path.read_text(encoding="utf-8")).get("scans", [])}
        except (ValueError, KeyError, TypeError):
            old = {}
    scans = []
    for spec in BENCHMARK_SCANS:
        params = spec.params(frames, size)
        if _entry_matches(root, old.get(spec.name), params):
            scans.append({**old[spec.name], "status": "reused"})
            continue
        paths = write_simulation(root, params, name=spec.name, overwrite=True)
        scans.append({
            "name": spec.name, "description": spec.description, "seed": spec.seed,
            "params": params.to_dict(), "scan": paths.scan.relative_to(root).as_posix(),
            "truth": paths.truth.relative_to(root).as_posix(), "scan_sha256": sha256_file(paths.scan),
            "truth_sha256": _sha256_tree(paths.truth), "status": "generated",
        })  # fmt: skip
    index = {"frames": frames, "size": size, "scans": scans}
    stored = {**index, "scans": [{k: v for k, v in s.items() if k != "status"} for s in scans]}
    index_path.parent.mkdir(parents=True, exist_ok=True)
    index_path.write_text(json.dumps(stored, indent=1), encoding="utf-8")
    return index
