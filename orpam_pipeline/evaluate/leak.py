"""Leak check: does a method's output resemble the fixed image when its moving input is unrelated?

A registration may only move and re-shade the backward (even) lines. When those lines are replaced by
content that has nothing to do with the forward (odd) lines, an honest method's output stays unrelated
to the odd lines, while a method that copies or hallucinates the fixed image still scores a high NCC
against it. Two unrelated inputs are used, each run through the real engine on a temporary store:

* ``far``: the backward lines of the frame half a sequence away, ``(t + T/2) mod T``, flipped along Y,
  so that the vessels no longer line up with frame ``t`` while their appearance stays realistic;
* ``noise``: Gaussian noise with the mean and standard deviation of frame ``t``'s backward lines
  (seeded), which no warp or intensity map can turn into the fixed image.

For each input, ``score`` is the mean over frames of NCC(output, odd) and ``baseline`` that of
NCC(unrelated input, odd), the value when nothing is copied. ``excess = score - baseline``; the method
passes when the larger excess of the two inputs is below :data:`LEAK_THRESHOLD`.

Why 0.2 (measured on simulated 96x96 and 256x256 frames, see evaluation.md): NCC between forward
lines of independent simulated scenes has a standard deviation of about 0.12 (largest |NCC| about
0.3), so single unrelated frames are already correlated at that level and only an excess over the
measured baseline is meaningful. A warp-plus-intensity-map method (``phase``) raised NCC by at most
about 0.11 on ``far`` inputs of small frames (warping can line a few vessel edges up by chance) and by
at most 0.01 on noise; ``none`` raises it by exactly 0; ``copy-odd`` raises it by 0.7 to 1.0. A
threshold of 0.2 leaves twice the largest excess a warp achieved while still failing any method whose
output is more than roughly a fifth "fixed image".
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from orpam_pipeline.geometry import FirstLine, interleave, odd_matched, split
from orpam_pipeline.io import open_scan
from orpam_pipeline.metrics import ncc_frames
from orpam_pipeline.register.base import RegistrationMethod
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.store.ingest import ingest_scan
from orpam_pipeline.store.layout import FRAMES, REGISTERED_EVEN, get_array, open_scan_store

LEAK_THRESHOLD = 0.2
"""Largest allowed rise of NCC(output, odd) over NCC(unrelated input, odd); see the module docstring."""
LEAK_FRAMES = 16
"""Frames per scan used for the leak check (the first ones; their far partners come from the whole scan)."""
LEAK_INPUTS = ("far", "noise")


def unrelated_frames(
    frames: np.ndarray, partners: np.ndarray, seed: int, first_line: FirstLine = "forward"
) -> dict[str, np.ndarray]:
    """Frames whose backward lines are replaced by unrelated content, keyed by input name.

    ``partners`` are the frames ``(t + T/2) mod T`` matching ``frames`` one to one; the forward lines
    of ``frames`` are kept unchanged in every output.
    """
    odd, even = split(np.asarray(frames, dtype=np.float32), first_line)
    _, far_even = split(np.asarray(partners, dtype=np.float32), first_line)
    rng = np.random.default_rng([seed, 0x1EAC])
    mean = even.mean(axis=(-2, -1), keepdims=True, dtype=np.float64)
    std = even.std(axis=(-2, -1), keepdims=True, dtype=np.float64)
    noise = mean + std * rng.standard_normal(even.shape)
    return {
        "far": interleave(odd, np.ascontiguousarray(far_even[..., ::-1, :]), first_line),
        "noise": interleave(odd, noise.astype(np.float32), first_line),
    }


def leak_scores(output: np.ndarray, moving: np.ndarray, odd: np.ndarray) -> dict[str, float]:
    """Score, baseline and excess of one unrelated input (means over frames, NaN frames skipped)."""
    fixed = odd_matched(odd, moving.shape[-1])
    score = float(np.nanmean(ncc_frames(output, fixed)))
    baseline = float(np.nanmean(ncc_frames(moving, fixed)))
    return {"score": score, "baseline": baseline, "excess": score - baseline}


def _register_frames(frames: np.ndarray, work: Path, name: str, method: RegistrationMethod, first_line: str) -> np.ndarray:
    """Run the real engine on ``frames`` through a temporary .npy file and store; returns registered_even."""
    src = work / "src" / f"{name}.npy"
    src.parent.mkdir(parents=True, exist_ok=True)
    np.save(src, frames)
    with open_scan(src) as source:
        store = ingest_scan(source, work / "out", first_line=first_line, overwrite=True)  # type: ignore[arg-type]
    register_store(store, method)
    return np.asarray(get_array(open_scan_store(store), REGISTERED_EVEN)[:])


def leak_check(
    store: Path,
    make_method: Callable[[], RegistrationMethod],
    n_frames: int = LEAK_FRAMES,
    seed: int = 0,
    threshold: float = LEAK_THRESHOLD,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Leak check of the method built by ``make_method`` on the first ``n_frames`` frames of ``store``."""
    group = open_scan_store(store)
    frames_z = get_array(group, FRAMES)
    first_line = group.attrs["conventions"]["first_line"]
    total = int(frames_z.shape[0])
    k = max(1, min(int(n_frames), total))
    index = np.arange(k)
    partner_index = (index + total // 2) % total
    frames = np.asarray(frames_z[:k])
    partners = np.asarray(frames_z.get_orthogonal_selection((partner_index, slice(None), slice(None))))
    inputs = unrelated_frames(frames, partners, seed, first_line)
    result: dict[str, Any] = {"frames": k, "threshold": threshold, "seed": seed, "inputs": {}}
    with tempfile.TemporaryDirectory(prefix=".leak-", dir=work_dir) as tmp:
        for name, modified in inputs.items():
            odd, moving = split(modified, first_line)
            output = _register_frames(modified, Path(tmp) / name, name, make_method(), first_line)
            result["inputs"][name] = leak_scores(output, moving, odd)
    worst = max(LEAK_INPUTS, key=lambda n: result["inputs"][n]["excess"])
    result.update(
        worst_input=worst,
        score=max(v["score"] for v in result["inputs"].values()),
        baseline=result["inputs"][worst]["baseline"],
        excess=result["inputs"][worst]["excess"],
    )
    result["passed"] = bool(result["excess"] < threshold)
    return result
