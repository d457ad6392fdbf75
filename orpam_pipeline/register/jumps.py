"""Jumps of the displacement between blocks of lines (motor jitter), found one frame at a time.

A scanner's motor jitter shifts whole blocks of lines: the backward lines' displacement along Y is
then piecewise constant across X on top of the smooth profile along Y. This module gives the pieces
the classical method (:mod:`orpam_pipeline.register.phase`) uses to find those blocks:

* :func:`line_correlation`: every backward line's normalised cross-correlation with its forward
  reference over the whole line, at integer lags (the per-line evidence);
* :func:`line_shifts`: each line's best lag (pooled with its two neighbours), to a fraction of a pixel;
* :func:`segment`: a penalised piecewise-constant fit of the per-line shifts (optimal partitioning
  by dynamic programming on a running median, so isolated bad lines do not make blocks);
* :func:`merge_blocks`: blocks the pooled evidence does not keep apart are joined, so a smooth scan
  ends with one block and no jump;
* :func:`refine_boundaries`: each boundary placed line by line between its two blocks' shifts;
* :func:`drifting`: blocks whose best shift drifts across the lines (a tilted structure lined up by
  a large shift, not jitter), for which the frame keeps its plain profile;
* :func:`fit_offsets`: a two-way fit ``shift[block, window] = profile[window] + offset[block]`` of
  the windowed sub-pixel shifts measured per block, with each block's misfit.
"""

from __future__ import annotations


import numpy as np

MIN_BLOCK_LINES = 3
"""Fewest lines a block of lines with its own offset may have."""
MERGE_EVIDENCE = 1.5
"""How many typical lines' worth of correlation a jump must explain to be kept (see :func:`merge_blocks`)."""
AGREE_PX = 1.0
"""How far (px) the median line of a block may peak from the block's pooled shift (see :func:`merge_blocks`)."""
RAMP_PX = 2.0
"""Lines within this distance (px) of their block's shift are used to measure its drift (see :func:`drifting`)."""
MIN_WINDOWS = 3
"""Fewest windows along the line that must measure a block for its offset to count."""
BLOCK_MISFIT_PX = 0.5
"""Largest median misfit (px) of a block's windows to ``profile + offset`` for the block to count."""
MEDIAN_LINES = 5
"""Running median along X applied to the per-line shifts before segmenting (removes isolated bad lines)."""


def line_correlation(ref: np.ndarray, mov: np.ndarray, reach: int, cutoff: float) -> np.ndarray:
    """Correlation ``(..., 2 * reach + 1, C)`` of every column of ``mov`` ``(..., Y, C)`` with the same column of ``ref``.

    Row ``k`` holds lag ``k - reach``: ``mov[y + lag]`` against ``ref[y]``. The columns are tapered
    (:func:`_taper`), whitened by their frame's mean spectrum (:func:`_whitened`), low-passed with a
    raised cosine at ``cutoff`` of Nyquist, and normalised by their energies, so a line's values are
    comparable with another's and sums over lines pool evidence. Leading axes are frames, each on its own.
    """
    height = ref.shape[-2]
    taper = _taper(height)[:, None]
    fa = _whitened(np.fft.rfft((mov - mov.mean(axis=-2, keepdims=True)) * taper, axis=-2))
    fb = _whitened(np.fft.rfft((ref - ref.mean(axis=-2, keepdims=True)) * taper, axis=-2))
    f = np.arange(fa.shape[-2]) / (height / 2.0)
    lowpass = np.where(f < cutoff, 0.5 * (1.0 + np.cos(np.pi * f / cutoff)), 0.0)
    lowpass[0] = 0.0
    corr = np.fft.irfft(fa * np.conj(fb) * lowpass[:, None], n=height, axis=-2)
    energy = np.sqrt(_power(fa, lowpass) * _power(fb, lowpass)) / height
    floor = 1e-12 * np.maximum(energy.max(axis=-1, keepdims=True, initial=0.0), 1e-300)
    corr = np.divide(corr, energy, out=np.zeros_like(corr), where=energy > floor)
    lags = np.arange(-reach, reach + 1)
    return np.take(corr, lags % height, axis=-2)


def _taper(n: int, flat: float = 0.5) -> np.ndarray:
    """Tukey window: flat over the middle ``flat`` fraction of the line, cosine ramps at both ends.

    A Hann window would leave a block shifted by a third of the line hardly any overlap to correlate.
    """
    ramp = max(int(np.floor((1.0 - flat) * (n - 1) / 2.0)), 1)
    taper = np.ones(n)
    edge = 0.5 * (1.0 - np.cos(np.pi * np.arange(ramp) / ramp))
    taper[:ramp] = edge
    taper[n - ramp :] = edge[::-1]
    return taper


def _whitened(spectrum: np.ndarray) -> np.ndarray:
    """Spectra ``(..., F, C)`` divided by their frame's root-mean power per frequency (pooled over lines).

    A line's broad structures (wide vessels, background) otherwise give correlations so flat that a
    shift of 20 px scores almost as well as the true one; one whitening filter for the whole frame
    sharpens the peaks without the noise of whitening every line on its own.
    """
    power = np.sqrt((np.abs(spectrum) ** 2).mean(axis=-1, keepdims=True))
    floor = 1e-12 * np.maximum(power.max(axis=-2, keepdims=True, initial=0.0), 1e-300)
    return np.divide(spectrum, power, out=np.zeros_like(spectrum), where=power > floor)


def _power(spectrum: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Energy ``(..., 1, C)`` of each column of a one-sided spectrum under ``weights``, counted as in the inverse
    transform."""
    fold = np.full(spectrum.shape[-2], 2.0)
    fold[0] = 1.0
    return (fold[:, None] * weights[:, None] * np.abs(spectrum) ** 2).sum(axis=-2, keepdims=True)


def peak_lags(corr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel lag (parabola through the integer peak) and peak value of every column of ``corr``."""
    reach = (corr.shape[0] - 1) // 2
    best = np.argmax(corr, axis=0)
    inner = np.clip(best, 1, corr.shape[0] - 2)
    cols = np.arange(corr.shape[1])
    y0, y1, y2 = corr[inner - 1, cols], corr[inner, cols], corr[inner + 1, cols]
    denom = y0 - 2 * y1 + y2
    delta = np.where((denom < 0) & (inner == best), 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1.0), 0.0)
    return best - reach + np.clip(delta, -0.5, 0.5), corr[best, cols]


def line_shifts(corr: np.ndarray) -> np.ndarray:
    """Each line's shift (px): the peak of its correlation summed with its two neighbours'.

    Pooling three lines keeps a single line's spurious peak from deciding its shift; at a jump the
    majority of the three (the line itself and its neighbour on the same side) still wins.
    """
    from scipy.ndimage import uniform_filter1d

    return peak_lags(uniform_filter1d(corr, 3, axis=1, mode="nearest"))[0]


def _noise(values: np.ndarray) -> float:
    """Robust scatter of ``values`` from line to line (MAD of neighbour differences), at least 0.1 px."""
    if values.size < 2:
        return 0.1
    return max(1.4826 * float(np.median(np.abs(np.diff(values)))) / np.sqrt(2.0), 0.1)


def segment(shifts: np.ndarray, jump_min: float = 0.0, min_lines: int = MIN_BLOCK_LINES) -> np.ndarray:
    """Start index of every block of a penalised piecewise-constant fit of ``shifts`` (first is 0).

    The fit runs on the running median of the shifts; its cost is the squared deviation from each
    block's mean plus a penalty of ``8 sigma^2 log n`` per block, ``sigma`` being the shifts'
    robust line-to-line scatter. Blocks have at least ``min_lines`` lines. When the running median
    spans less than ``jump_min`` px there is nothing to cut (the usual case, answered without the fit).
    """
    from scipy.ndimage import median_filter

    n = shifts.size
    if n < 2 * min_lines:
        return np.zeros(1, dtype=np.intp)
    values = median_filter(shifts, size=MEDIAN_LINES, mode="nearest")
    if np.ptp(values) < jump_min:
        return np.zeros(1, dtype=np.intp)
    penalty = 8.0 * _noise(shifts) ** 2 * np.log(n)
    s1 = np.concatenate([[0.0], np.cumsum(values)])
    s2 = np.concatenate([[0.0], np.cumsum(values * values)])
    best = np.full(n + 1, np.inf)
    best[0] = -penalty
    start = np.zeros(n + 1, dtype=np.intp)
    for j in range(min_lines, n + 1):
        i = np.arange(0, j - min_lines + 1)
        count = j - i
        cost = best[i] + (s2[j] - s2[i]) - (s1[j] - s1[i]) ** 2 / count + penalty
        k = int(np.argmin(cost))
        best[j], start[j] = cost[k], i[k]
    starts = []
    j = n
    while j > 0:
        j = int(start[j])
        starts.append(j)
    return np.asarray(starts[::-1], dtype=np.intp)


def block_shifts(corr: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Pooled shift (px) of every block: the peak of its lines' summed correlation."""
    pooled = np.add.reduceat(corr, starts, axis=1)
    return peak_lags(pooled)[0]


def _pair_gains(corr: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled shift of every block, and how much giving each pair of neighbours its own shift raises their peaks."""
    pooled = np.add.reduceat(corr, starts, axis=1)
    peaks = pooled.max(axis=0)
    gain = peaks[:-1] + peaks[1:] - (pooled[:, :-1] + pooled[:, 1:]).max(axis=0)
    return peak_lags(pooled)[0], gain


def _agreeing(corr: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Whether most lines of each block peak (pooled with their neighbours) within ``AGREE_PX`` of the block's shift."""
    shifts, _ = _pair_gains(corr, starts)
    lengths = np.diff(np.append(starts, corr.shape[1]))
    miss = np.abs(line_shifts(corr) - np.repeat(shifts, lengths))
    return np.array([np.median(m) <= AGREE_PX for m in np.split(miss, starts[1:])])


def merge_blocks(corr: np.ndarray, starts: np.ndarray, jump_min: float, evidence: float = MERGE_EVIDENCE) -> np.ndarray:
    """Join neighbouring blocks the evidence does not keep apart, the weakest pair first.

    First, blocks whose lines do not agree (most lines peak more than ``AGREE_PX`` from the block's
    pooled shift: spurious peaks where the lines show little structure) are absorbed by the
    neighbour they gain least from. Then two neighbours stay apart only when their pooled shifts
    differ by at least ``jump_min`` px and giving each its own shift raises their summed correlation
    peaks by at least ``evidence`` times a typical line's peak.
    """
    starts = np.asarray(starts, dtype=np.intp)
    agree = _agreeing(corr, starts)
    while starts.size > 1 and not agree.all():
        _, gain = _pair_gains(corr, starts)
        k = int(np.argmin(np.where(~(agree[:-1] & agree[1:]), gain, np.inf)))
        keep = bool(agree[k] or agree[k + 1])
        starts, agree = np.delete(starts, k + 1), np.delete(agree, k + 1)
        agree[k] = keep
    threshold = evidence * float(np.median(corr.max(axis=0)))
    while starts.size > 1:
        shifts, gain = _pair_gains(corr, starts)
        apart = (np.abs(np.diff(shifts)) >= jump_min) & (gain >= threshold)
        if apart.all():
            break
        starts = np.delete(starts, int(np.argmin(np.where(apart, np.inf, gain))) + 1)
    return starts


def drifting(corr: np.ndarray, starts: np.ndarray, limit: float) -> np.ndarray:
    """Whether the shift drifts by more than ``limit`` px across each block: a ramp, not a jitter block.

    Jitter moves a block of lines as a whole. A structure tilted across the lines, which a large
    enough shift can line up even with unrelated content, instead makes the best shift change from
    line to line. The drift is the change over the block of a straight line fitted to the shifts of
    the lines within ``RAMP_PX`` of the block's pooled shift (lines without structure are left out);
    blocks with at most ``MIN_BLOCK_LINES`` such lines count as not drifting.
    """
    shifts, _ = _pair_gains(corr, starts)
    lines = line_shifts(corr)
    out = []
    for lo, hi, shift in zip(starts, np.append(starts[1:], corr.shape[1]), shifts):
        x = np.arange(lo, hi, dtype=np.float64)
        near = np.abs(lines[lo:hi] - shift) <= RAMP_PX
        if near.sum() <= MIN_BLOCK_LINES:
            out.append(False)
            continue
        slope = np.polyfit(x[near], lines[lo:hi][near], 1)[0]
        out.append(abs(slope) * (hi - lo - 1) > limit)
    return np.array(out)


def refine_boundaries(corr: np.ndarray, starts: np.ndarray, min_lines: int = MIN_BLOCK_LINES) -> np.ndarray:
    """Move every boundary to where the lines' own correlations at the two blocks' shifts change over.

    Between the neighbouring blocks' pooled (integer) shifts ``a`` and ``b``, the boundary goes where
    ``sum(corr at a before it) + sum(corr at b from it on)`` is largest, keeping ``min_lines`` lines
    in each block; boundaries are placed from left to right.
    """
    starts = np.asarray(starts, dtype=np.intp).copy()
    if starts.size < 2:
        return starts
    reach = (corr.shape[0] - 1) // 2
    lags = np.round(peak_lags(np.add.reduceat(corr, starts, axis=1))[0]).astype(np.intp) + reach
    ends = np.append(starts[1:], corr.shape[1])
    for i in range(1, starts.size):
        lo, hi = starts[i - 1], ends[i]
        cand = np.arange(lo + min_lines, hi - min_lines + 1)
        if cand.size == 0:
            continue
        diff = corr[lags[i - 1], lo:hi] - corr[lags[i], lo:hi]
        score = np.concatenate([[0.0], np.cumsum(diff)])[cand - lo]
        starts[i] = cand[int(np.argmax(score))]
    return starts


def _median_start(shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and profile from medians of ``shifts`` (NaN where not measured); 0 where nothing is known."""
    offset = _nanmedian(shifts - _nanmedian(shifts, axis=0)[None, :], axis=1)
    profile = _nanmedian(shifts - offset[:, None], axis=0)
    return offset, profile


def _nanmedian(values: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmedian`` that gives 0 for an all-NaN slice, without a warning (a warnings filter is not
    thread-safe, and chunks run in threads)."""
    empty = np.isnan(values).all(axis=axis, keepdims=True)
    return np.nan_to_num(np.nanmedian(np.where(empty, 0.0, values), axis=axis))


def fit_offsets(
    shifts: np.ndarray, weights: np.ndarray, reference: int, iterations: int = 12
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two-way fit ``shifts[b, w] ~ profile[w] + offset[b]`` with ``offset[reference] = 0``.

    ``shifts`` and ``weights`` are ``(blocks, windows)``. Starts from medians (so one bad window
    cannot drag the start), then iterates weighted means with Huber weights from the current
    residuals. Returns the profile, the offsets, each window's pooled weight (0 where no block saw
    the window) and each block's misfit (median absolute residual over its measured windows, px;
    infinite for a block without any).
    """
    w = np.where(np.isfinite(shifts) & np.isfinite(weights), weights, 0.0)
    seen = w > 0
    offset, profile = _median_start(np.where(seen, shifts, np.nan))
    r = np.where(seen, shifts, 0.0)
    for _ in range(iterations):
        resid = np.abs(r - profile[None, :] - offset[:, None])
        scale = 1.4826 * float(np.median(resid[seen])) + 0.02 if seen.any() else 1.0
        ratio = resid / (1.345 * scale)
        robust = w * np.where(ratio <= 1.0, 1.0, 1.0 / np.maximum(ratio, 1e-12))
        den_w = robust.sum(axis=0)
        profile = np.where(den_w > 0, (robust * (r - offset[:, None])).sum(axis=0) / np.maximum(den_w, 1e-300), 0.0)
        den_b = robust.sum(axis=1)
        offset = np.where(den_b > 0, (robust * (r - profile[None, :])).sum(axis=1) / np.maximum(den_b, 1e-300), 0.0)
    resid = np.abs(r - profile[None, :] - offset[:, None])
    misfit = np.array([np.median(row[m]) if m.any() else np.inf for row, m in zip(resid, seen)])
    shift = offset[reference]
    return profile + shift, offset - shift, w.sum(axis=0), misfit
