"""Per-store scores beyond the papers' report: ground truth (docs/evaluation.md) and the interleave-artefact score.

Everything streams over the store's frame chunks, so scans larger than memory are scored in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from orpam_pipeline.evaluate.artefact import artefact_scores
from orpam_pipeline.geometry import split
from orpam_pipeline.metrics import ncc_frames, psnr_frames
from orpam_pipeline.store.layout import DISPLACEMENT, FRAMES, MERGED, REGISTERED_EVEN, frames_per_chunk, get_array, has_array, open_scan_store

TRUTH_DIR = "truth"
SCANS_DIR = "scans"


def find_truth(scan_paths: tuple[Path, ...] | list[Path]) -> Path | None:
    """Ground truth beside a one-file scan in the simulate layout: ``<root>/scans/<n>.*`` -> ``<root>/truth/<n>.zarr``."""
    if len(scan_paths) != 1:
        return None
    path = Path(scan_paths[0])
    if path.parent.name != SCANS_DIR:
        return None
    truth = path.parent.parent / TRUTH_DIR / f"{path.stem}.zarr"
    return truth if (truth / "zarr.json").is_file() else None


def truth_problem(truth: Path, frames: int, height: int, width: int) -> str | None:
    """Why a truth store cannot be used for a scan of this shape, or None when it fits."""
    try:
        group = zarr.open_group(truth, mode="r")
        even_true = group["even_true"]
        disp = group["displacement"]
    except Exception as exc:  # a damaged truth store is reported, never fatal
        return f"cannot read truth ({type(exc).__name__}: {exc})"
    if even_true.shape[0] < frames or tuple(even_true.shape[1:]) != (height, width // 2):
        return f"truth even_true {tuple(even_true.shape)} does not fit frames ({frames}, {height}, {width})"
    if tuple(disp.shape[1:]) not in ((height,), (height, width // 2)) or disp.shape[0] < frames:
        return f"truth displacement {tuple(disp.shape)} does not fit frames ({frames}, {height}, {width})"
    return None


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _as_field(displacement: np.ndarray, other_ndim: int) -> np.ndarray:
    """A profile ``(t, Y)`` as a field with one column, when compared with a field ``(t, Y, Xe)``."""
    return displacement[..., None] if displacement.ndim == 2 and other_ndim == 3 else displacement


def score_store(store: Path, truth: Path | None = None) -> dict[str, Any]:
    """Artefact score, and with ``truth`` the ground-truth NCC/PSNR and displacement RMS, of a registered store.

    The displacement RMS compares profiles and fields alike: a profile (stored or true) counts as the
    same value for every backward line when the other side is a field (block jitter, pcregnet-flow).
    Truth frames beyond the store's frame count are ignored (the store may hold the first N frames).
    PSNR uses max - min of ``even_true`` per frame as the data range (docs/evaluation.md).
    """
    group = open_scan_store(store)
    frames_z, reg_z, merged_z = get_array(group, FRAMES), get_array(group, REGISTERED_EVEN), get_array(group, MERGED)
    first_line = group.attrs["conventions"]["first_line"]
    n = int(frames_z.shape[0])
    chunk = frames_per_chunk(frames_z)
    has_disp = has_array(group, DISPLACEMENT)
    t_group = zarr.open_group(truth, mode="r") if truth is not None else None
    per: dict[str, list[np.ndarray]] = {"artefact": [], "ncc_truth": [], "psnr_truth": [], "disp_sq": []}
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        odd, _ = split(np.asarray(frames_z[start:stop]), first_line)
        per["artefact"].append(artefact_scores(np.asarray(merged_z[start:stop]), odd, first_line))
        if t_group is None:
            continue
        reg = np.asarray(reg_z[start:stop])
        even_true = np.asarray(t_group["even_true"][start:stop], dtype=np.float64)
        flat = even_true.reshape(even_true.shape[0], -1)
        per["ncc_truth"].append(ncc_frames(reg, even_true))
        per["psnr_truth"].append(psnr_frames(reg, even_true, flat.max(axis=1) - flat.min(axis=1)))
        if has_disp:
            stored = np.asarray(get_array(group, DISPLACEMENT)[start:stop], np.float64)
            true = np.asarray(t_group["displacement"][start:stop], np.float64)
            err = _as_field(stored, true.ndim) - _as_field(true, stored.ndim)
            per["disp_sq"].append((err**2).reshape(err.shape[0], -1).mean(axis=1))
    flat_per = {k: np.concatenate(v) if v else np.zeros(0) for k, v in per.items()}
    out: dict[str, Any] = {
        "artefact": _nanmean(flat_per["artefact"]),
        "ncc_truth": None,
        "psnr_truth": None,
        "disp_rms_px": None,
        "per_frame": {"artefact": flat_per["artefact"].tolist()},
    }
    if t_group is not None:
        out["ncc_truth"] = _nanmean(flat_per["ncc_truth"])
        out["psnr_truth"] = _nanmean(flat_per["psnr_truth"])
        out["per_frame"]["ncc_truth"] = flat_per["ncc_truth"].tolist()
        out["per_frame"]["psnr_truth"] = flat_per["psnr_truth"].tolist()
        if has_disp:
            out["disp_rms_px"] = float(np.sqrt(flat_per["disp_sq"].mean()))
    return out
