"""Checks of the ingested frames, before registration: wrong orientation, reversed backward lines, clipping.

They look at up to :data:`SAMPLE_FRAMES` evenly spaced frames (centre-cropped, see ``measures``), so
their cost does not grow with the scan. Codes and thresholds are documented in docs/warnings.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import groupby
from typing import Any

import numpy as np

from orpam_pipeline.checks import Finding
from orpam_pipeline.checks.measures import comb_energy, line_match, top_count
from orpam_pipeline.store.layout import FRAMES, get_array

STAGE = "frames"
SAMPLE_FRAMES = 16
ROWS_RATIO = 3.0
"""``lines-are-rows`` when the comb between rows is this many times the comb between columns."""
REVERSED_MIN = 0.3
REVERSED_MARGIN = 0.25
"""``backward-reversed`` when flipped backward lines correlate at least this well with the forward
lines, and this much better than as stored."""
SATURATED_FRACTION = 0.01
"""``saturated`` when this fraction of the sampled pixels sits at a flat top."""


def sample_indices(n_frames: int, count: int = SAMPLE_FRAMES) -> list[int]:
    """Up to ``count`` evenly spaced frame indices, first and last included."""
    if n_frames < 1:
        return []
    return sorted({int(i) for i in np.linspace(0, n_frames - 1, min(count, n_frames)).round()})


Samples = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]
"""``(frame, merged frame)`` of every :func:`sample_indices` frame in order, each call a fresh pass: what the
register stage kept of the chunks it had in memory, so the checks need not read the store again."""


def samples_in(start: int, stop: int, n_frames: int) -> list[int]:
    """The :func:`sample_indices` frames among ``start:stop``, as offsets from ``start``."""
    return [i - start for i in sample_indices(n_frames) if start <= i < stop]


def sampled_frames(array: Any, indices: Sequence[int]) -> Iterator[np.ndarray]:
    """Frames ``array[i]`` for the sorted ``indices``, reading each chunk once for all its sampled frames.

    A frame read alone decodes its whole chunk; frames of one chunk are read together, so a small scan
    whose samples share a chunk is decoded once, and no more than one chunk's sampled frames are held.
    """
    step = max(1, int(array.chunks[0]))
    for _, group in groupby(indices, key=lambda i: i // step):
        wanted = list(group)
        block = np.asarray(array[wanted[0] : wanted[-1] + 1])
        for i in wanted:
            yield block[i - wanted[0]]


def dtype_max(source_dtype: str | None) -> float | None:
    """The largest value of an integer source dtype as it reads in float32, else None."""
    try:
        dtype = np.dtype(source_dtype) if source_dtype else None
    except TypeError:
        return None
    if dtype is None or dtype.kind not in "iu":
        return None
    return float(np.float32(np.iinfo(dtype).max))


def frame_findings(
    frames: Iterable[np.ndarray], conventions: Mapping[str, Any], source_dtype: str | None = None
) -> list[Finding]:
    """The warnings for sampled frames ``(Y, X)`` in pipeline orientation with the store's ``conventions``."""
    first_line = str(conventions.get("first_line", "forward"))
    top_limit = dtype_max(source_dtype)
    across_cols = across_rows = 0.0
    stored: list[float] = []
    flipped: list[float] = []
    n_pixels = n_top = n_bad = 0
    top_value = float("nan")
    for frame in frames:
        f = np.asarray(frame)
        finite = np.isfinite(f)
        n_pixels += f.size
        n_bad += int(f.size - finite.sum())
        if not finite.all():
            f = np.where(finite, f, 0.0)
        count, value = top_count(f, top_limit)
        if count:
            n_top, top_value = n_top + count, value
        across_cols += comb_energy(f, "columns")
        across_rows += comb_energy(f, "rows")
        s, fl = line_match(f, first_line)
        stored.append(s)
        flipped.append(fl)
    findings: list[Finding] = []
    if n_pixels == 0:
        return findings
    rows_setting = conventions.get("scan_lines") == "rows"
    if across_rows > ROWS_RATIO * across_cols and across_rows > 0:
        ratio = across_rows / across_cols if across_cols > 0 else float("inf")
        fix = ("rerun without --scan-lines rows (lines are columns)" if rows_setting
               else "rerun with --scan-lines rows, or name the file's axes with --axes")  # fmt: skip
        findings.append(Finding(
            "lines-are-rows",
            f"the alternating-line (comb) artefact is {ratio:.0f}x stronger between neighbouring rows than "
            f"between neighbouring columns, so the fast-axis lines look like rows of the frame; {fix}",
            STAGE,
        ))  # fmt: skip
    s_mean, f_mean = _mean(stored), _mean(flipped)
    if f_mean >= REVERSED_MIN and f_mean >= s_mean + REVERSED_MARGIN:
        reversed_setting = bool(conventions.get("reverse_backward"))
        fix = (
            "they were flipped by --reverse-backward: rerun without it" if reversed_setting
            else "they look stored in scan order (reversed along the line): rerun with --reverse-backward"
        )  # fmt: skip
        findings.append(Finding(
            "backward-reversed",
            f"the backward lines match the forward lines much better flipped along the line (correlation "
            f"{f_mean:.2f}) than as stored ({s_mean:.2f}); {fix}",
            STAGE,
        ))  # fmt: skip
    if n_top >= SATURATED_FRACTION * n_pixels:
        what = "the maximum of the source dtype" if top_limit is not None and top_value >= top_limit else "a flat top"
        findings.append(Finding(
            "saturated",
            f"{100 * n_top / n_pixels:.1f}% of the sampled pixels sit at the top value {top_value:g} ({what}): the "
            "signal was clipped; clipped regions cannot be registered or compared reliably (lower the detector "
            "gain or laser energy for new acquisitions)",
            STAGE,
        ))  # fmt: skip
    if n_bad:
        findings.append(Finding(
            "non-finite",
            f"{100 * n_bad / n_pixels:.2g}% of the sampled values are NaN or infinite; they were measured as 0 "
            "(check the reader, --variable and --depth-axis)",
            STAGE,
        ))  # fmt: skip
    return findings


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def check_frames(group: Any, samples: Samples | None = None) -> list[Finding]:
    """The frame warnings of an ingested store group, from ``samples`` or else the :func:`sample_indices` frames
    read from the store."""
    conventions = dict(group.attrs.get("conventions", {}))
    source_dtype = dict(group.attrs.get("source", {})).get("source_dtype")
    if samples is not None:
        return frame_findings((frame for frame, _ in samples()), conventions, source_dtype)
    frames = get_array(group, FRAMES)
    return frame_findings(sampled_frames(frames, sample_indices(int(frames.shape[0]))), conventions, source_dtype)
