"""Checks of a registration result: a displacement at the method's search limit, no fewer artefacts.

``registration-no-better`` compares the interleave-artefact (comb) energy of the merged frames with
that of the frames as acquired, on the sampled frames, with the filter of
:mod:`orpam_pipeline.evaluate.artefact`; the reported numbers are its score (comb energy over the
forward lines' gradient energy). The comb *between rows* of the acquired frames is the level a
frame without any bidirectional artefact shows (noise and scene), so a result that stays within
:data:`BASELINE_FACTOR` times that level is not flagged: there was nothing left to remove. The
``none`` method is never flagged, since it registers nothing by definition; ``copy-odd`` and every
other method are. Thresholds are documented in docs/warnings.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from orpam_pipeline.checks import Finding
from orpam_pipeline.checks.frames import Samples, sample_indices, sampled_frames
from orpam_pipeline.checks.measures import centre_crop, comb_energy
from orpam_pipeline.geometry import fixed_parity
from orpam_pipeline.store.layout import DISPLACEMENT, FRAMES, MERGED, get_array, has_array

STAGE = "registration"
LIMIT_MARGIN = 0.5
"""``displacement-at-limit`` when max |displacement| reaches the search limit minus this (px)."""
NO_BETTER_RATIO = 0.9
"""``registration-no-better`` when the merged frames keep at least this fraction of the comb energy..."""
BASELINE_FACTOR = 2.0
"""...and more than this many times the comb between rows (the no-artefact level)."""
UNFLAGGED_METHODS = frozenset({"none"})


def search_limit(params: dict[str, Any]) -> float | None:
    """The largest displacement a method searches for: its ``max_shift`` setting, if it has one."""
    value = params.get("max_shift")
    try:
        limit = float(value)
    except (TypeError, ValueError):
        return None
    return limit if np.isfinite(limit) and limit > 0 else None


def max_abs_displacement(group: Any) -> float | None:
    """Largest |displacement| over the whole stored array, read chunk by chunk; None without one."""
    if not has_array(group, DISPLACEMENT):
        return None
    disp = get_array(group, DISPLACEMENT)
    step = max(1, int(disp.chunks[0]))
    biggest = 0.0
    for start in range(0, int(disp.shape[0]), step):
        block = np.abs(np.asarray(disp[start : start + step], dtype=np.float64))
        block = block[np.isfinite(block)]
        if block.size:
            biggest = max(biggest, float(block.max()))
    return biggest


def limit_finding(method: str, params: dict[str, Any], biggest: float | None) -> Finding | None:
    """``displacement-at-limit`` when the displacement reaches the method's search limit."""
    limit = search_limit(params)
    if limit is None or biggest is None or biggest < limit - LIMIT_MARGIN:
        return None
    return Finding(
        "displacement-at-limit",
        f"the estimated displacement reaches {biggest:.1f} px, at the search limit of {method} "
        f"(max_shift = {limit:g} px): the true shift may be larger; rerun with --set max_shift={2 * limit:g} "
        "--overwrite",
        STAGE,
    )


def comb_energies(frames: Iterable[np.ndarray], merged: Iterable[np.ndarray]) -> dict[str, float]:
    """Summed comb energies over pairs of sampled frames: acquired (between columns and between rows)
    and merged."""
    out = {"unregistered": 0.0, "baseline": 0.0, "registered": 0.0}
    for f, m in zip(frames, merged):
        out["unregistered"] += comb_energy(f, "columns")
        out["baseline"] += comb_energy(f, "rows")
        out["registered"] += comb_energy(m, "columns")
    return out


def no_better_finding(method: str, energies: dict[str, float], structure: float) -> Finding | None:
    """``registration-no-better`` from :func:`comb_energies` and the forward lines' gradient energy."""
    if method in UNFLAGGED_METHODS:
        return None
    before, after, base = energies["unregistered"], energies["registered"], energies["baseline"]
    if not (np.isfinite(before) and np.isfinite(after) and np.isfinite(base)) or after <= 0:
        return None
    if after < NO_BETTER_RATIO * before or after <= BASELINE_FACTOR * base:
        return None
    scale = structure if structure > 0 else 1.0
    return Finding(
        "registration-no-better",
        f"registration with {method} did not lower the interleave-artefact score ({before / scale:.3g} before, "
        f"{after / scale:.3g} after; docs/evaluation.md): check --scan-lines, --first-line and --reverse-backward, "
        "or try another --method or its settings (--set)",
        STAGE,
    )


def check_registration(group: Any, samples: Samples | None = None) -> list[Finding]:
    """The registration warnings of a registered store group, its sampled frames from ``samples`` or else
    read from the store."""
    info = dict(group.attrs.get("registration", {}))
    method = str(info.get("method", "?"))
    params = dict(info.get("params", {}))
    findings = [limit_finding(method, params, max_abs_displacement(group))]
    if method not in UNFLAGGED_METHODS:
        from orpam_pipeline.evaluate.artefact import structure_energy  # the evaluate package imports the pipeline

        p = fixed_parity(dict(group.attrs.get("conventions", {})).get("first_line", "forward"))
        energies = {"unregistered": 0.0, "baseline": 0.0, "registered": 0.0}
        structure = 0.0
        if samples is None:
            frames, merged = get_array(group, FRAMES), get_array(group, MERGED)
            indices = sample_indices(int(frames.shape[0]))
            pairs: Iterable[tuple[np.ndarray, np.ndarray]] = zip(sampled_frames(frames, indices),
                                                                 sampled_frames(merged, indices))  # fmt: skip
        else:
            pairs = samples()
        for frame, merged_frame in pairs:
            frame, merged_frame = centre_crop(frame), centre_crop(merged_frame)
            for key, value in comb_energies([frame], [merged_frame]).items():
                energies[key] += value
            structure += float(structure_energy(frame[:, p::2]).sum())
        findings.append(no_better_finding(method, energies, structure))
    return [f for f in findings if f is not None]

