"""Ground truth beside a simulated scan (``orpam simulate``'s layout), and the store's error against it.

The truth is found and scored by ``evaluate/scoring.py``, exactly as ``orpam evaluate`` does; this
module only decides from the store's provenance whether a truth applies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zarr

from orpam_pipeline.evaluate.scoring import find_truth, score_store, truth_problem


def truth_for_store(group: zarr.Group, shape: tuple[int, int, int]) -> tuple[Path | None, str | None]:
    """``(truth store, note)``: the truth that applies to this store, or None with the reason it does not."""
    files = (group.attrs.get("source") or {}).get("files") or []
    paths = [Path(f["path"]) for f in files if isinstance(f, dict) and f.get("path")]
    truth = find_truth(paths) if paths else None
    if truth is None:
        return None, None
    conventions = group.attrs.get("conventions") or {}
    if (conventions.get("scan_lines", "columns") != "columns" or conventions.get("first_line", "forward") != "forward"
            or conventions.get("reverse_backward")):  # fmt: skip
        return None, f"truth {truth} ignored: it is in the simulator's geometry (columns, forward first)"
    problem = truth_problem(truth, *shape)
    return (None, f"truth {truth} ignored: {problem}") if problem else (truth, None)


def truth_scores(store: Path, truth: Path) -> dict[str, Any]:
    """NCC and PSNR of the registered even lines vs the true ones, and the displacement RMS (``score_store``)."""
    scores = score_store(store, truth)
    return {
        "store": str(truth),
        "ncc_truth": scores["ncc_truth"],
        "psnr_truth": scores["psnr_truth"],
        "disp_rms_px": scores["disp_rms_px"],
        "per_frame": {k: scores["per_frame"][k] for k in ("ncc_truth", "psnr_truth")},
    }


def true_displacement(truth: Path) -> zarr.Array:
    """The truth's displacement array (``(T, Y)`` or ``(T, Y, X // 2)``, the pipeline's sign)."""
    return zarr.open_group(truth, mode="r")["displacement"]
