"""Classical correction: a sub-pixel displacement profile along the fast axis plus intensity harmonisation.

Compared with a single integer shift per recording (suite2p's bidiphase), this method

* estimates the shift of the backward lines against the forward lines in overlapping windows along
  the fast axis, with a coherence-whitened cross-power spectrum summed over all line pairs and a
  sub-pixel peak found by evaluating the correlation on a fine grid (a matrix DFT around the integer
  peak, then a parabola);
* rejects outliers over time, smooths the window estimates over neighbouring frames, and fits a robust
  (Huber-weighted) polynomial profile along the line for every frame;
* matches the backward lines' intensities to the forward lines' with a per-frame quantile map
  (handles gain, offset and a monotone non-linearity; robust to residual misalignment);
* resamples each backward line with a Keys cubic kernel at ``y + d(y)``, clamping at the frame edges:
  rows whose source lies outside the line take the nearest measured sample (no wrap-around).

Motor jitter shifts whole blocks of lines, so the displacement can also jump along X. With
``jumps`` on, the first pass also correlates every backward line with its forward reference over the
whole line (lags up to ``jump_max``), cuts the frame's lines into blocks by a penalised
piecewise-constant fit of those per-line shifts (:mod:`orpam_pipeline.register.jumps`), and joins
neighbouring blocks that the evidence does not keep apart (less than ``jump_min`` px apart, too
little correlation gained, lines that disagree). A frame left with several blocks has its windows
measured per block and split into a profile along Y plus one offset per block; blocks the windows
do not confirm are joined to a neighbour. The plan then carries, per frame, the starts and offsets
of up to ``max_blocks`` blocks (a fixed width, whatever the frame width), and the method reports a
field ``d(t, y, j) = profile(t, y) + offset(t, j)``. A sequence in which no frame shows a jump gets
exactly the profile it got before jump detection existed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from orpam_pipeline.geometry import moving_width, odd_at_even
from orpam_pipeline.kernels import KEYS_OFFSETS, keys_weights
from orpam_pipeline.register import jumps
from orpam_pipeline.register.base import DisplacementKind, RegistrationMethod
from orpam_pipeline.register.quantile_map import monotone_map, row_quantiles
from orpam_pipeline.settings import setting


@dataclass
class PhaseSettings:
    window: int | None = setting(None, "Rows per estimation window (default max(32, min(128, Y // 4))).")
    step: int | None = setting(None, "Rows between window starts (default window // 4).")
    max_shift: float = setting(16.0, "Largest displacement searched for, in pixels.")
    degree: int = setting(7, "Highest polynomial degree of the profile along the line (the degree used is chosen per sequence).")
    temporal_sigma: float = setting(3.0, "Gaussian smoothing of the estimates over frames, in frames (0 = per frame).")
    degree_tolerance: float = setting(0.1, "Residual RMS (px) a lower profile degree may exceed the best fit by and still be chosen.")
    frequency_cutoff: float = setting(0.7, "Raised-cosine low-pass on the cross-spectrum, as a fraction of Nyquist.")
    upsample: int = setting(32, "Sub-pixel grid density for the correlation peak.")
    harmonise: bool = setting(True, "Map backward-line intensities onto the forward lines' distribution.")
    quantiles: int = setting(65, "Quantiles of the intensity map.")
    jumps: bool = setting(
        True, "Detect jumps of the displacement between blocks of lines (motor jitter); a scan with jumps gets a field."
    )
    jump_max: float = setting(48.0, "Largest shift of a block of lines searched for, px (at most half the line).")
    jump_min: float = setting(2.0, "Smallest jump between neighbouring blocks of lines that is kept, in pixels.")
    max_blocks: int = setting(16, "Most blocks of lines with their own offset in one frame (bounds the plan table).")


def _resample(lines: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Keys cubic samples of ``lines`` (t, Y, C) along Y at ``positions`` (t, Y, 1) or (t, Y, C), edge-clamped."""
    height = lines.shape[-2]
    pos = np.clip(positions, 0.0, height - 1.0)
    base = np.floor(pos)
    frac = (pos - base).astype(np.float32)
    base = base.astype(np.intp)
    out = np.zeros(lines.shape, dtype=np.float32)
    whole_rows = positions.shape[-1] == 1 and lines.ndim == 3
    if whole_rows:  # one position per row: gather whole rows, not single samples, into one reused buffer
        rows = np.ascontiguousarray(lines, dtype=np.result_type(lines, np.float32)).reshape(-1, lines.shape[-1])
        first = (np.arange(lines.shape[0]) * height)[:, None]
        taken = np.empty(lines.shape, dtype=rows.dtype)
    for offset, weight in zip(KEYS_OFFSETS, keys_weights(frac)):
        idx = np.clip(base + offset, 0, height - 1)
        if whole_rows:
            np.take(rows, (idx[..., 0] + first).ravel(), axis=0, out=taken.reshape(rows.shape))
            out += np.multiply(weight, taken, out=taken)
        else:
            out += weight * np.take_along_axis(lines, np.broadcast_to(idx, lines.shape), axis=-2)
    return out


def resample_rows(lines: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Sample ``lines`` (t, Y, C) along Y at ``positions`` (t, Y), edge-clamped Keys cubic."""
    return _resample(lines, positions[..., None])


def resample_columns(lines: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Sample each column of ``lines`` (t, Y, C) along Y at its own ``positions`` (t, Y, C), edge-clamped Keys cubic.

    Positions equal across the columns (a profile given as a field) take :func:`resample_rows`' whole-row
    path, which gives the same numbers bit for bit.
    """
    positions = np.asarray(positions)
    if lines.ndim == 3 and positions.ndim == 3 and positions.shape[-1] > 1 and (positions == positions[..., :1]).all():
        return _resample(lines, positions[..., :1])
    return _resample(lines, positions)


@dataclass(frozen=True)
class _WindowBasis:
    """Everything :class:`PhaseCorrelation` transforms an ``L``-row window with, as matrices.

    Only the frequencies with a non-zero spectral weight (``band``) reach the correlation peak, so
    a window's mean removal, Hann taper and those DFT bins are one matrix product (``dft``), and the
    correlation is evaluated from the band directly: at every whole lag within reach (``to_lags``,
    in ``np.fft.fftfreq`` order) and on the fine grid ``offsets`` around one (``lag_phasors`` moves
    a spectrum to the lag, ``to_grid`` evaluates it there).
    """

    band: np.ndarray
    weights: np.ndarray
    weights_sum: float
    dft: np.ndarray
    """``(2 * band, L)``: the real parts of the bins, then their imaginary parts."""
    lags: np.ndarray
    to_lags: np.ndarray
    lag_phasors: np.ndarray
    offsets: np.ndarray
    to_grid: np.ndarray

    @classmethod
    def build(cls, L: int, weights: np.ndarray, reach: float, upsample: int) -> _WindowBasis:
        band = np.flatnonzero(weights > 0)
        k = band.astype(np.float64)
        taper = np.hanning(L + 2)[1:-1]
        bins = np.exp(-2j * np.pi * np.outer(np.arange(L), k) / L) * taper[:, None]
        bins -= bins.mean(axis=0, keepdims=True)
        dft = np.concatenate([bins.real.T, bins.imag.T])
        lags = np.fft.fftfreq(L, 1.0 / L)
        lags = lags[np.abs(lags) <= reach]
        phasors = np.exp(2j * np.pi * np.outer(lags, k) / L)
        offsets = np.linspace(-1.0, 1.0, 2 * upsample + 1)
        to_grid = np.exp(2j * np.pi * np.outer(k, offsets) / L)
        return cls(band, weights[band], float(weights.sum()), dft, lags, np.ascontiguousarray(phasors.T), phasors,
                   offsets, to_grid)  # fmt: skip


class PhaseCorrelation(RegistrationMethod):
    """Sub-pixel, line-varying, temporally smoothed phase-correlation correction."""

    name = "phase"
    kind = "classical"
    description = ("whitened sub-pixel cross-correlation profile along the fast axis (+ per-block offsets where lines "
                   "jump) + intensity harmonisation")
    displacement = "profile"
    settings_type = PhaseSettings

    def __init__(self, settings: PhaseSettings | None = None) -> None:
        super().__init__(settings)
        self.height = 0
        self.width = 0
        self.first_line = "forward"
        self.starts = np.zeros(0, dtype=np.intp)
        self.window = 0
        self.n_moving = 0
        self.chosen_degree = self.settings.degree
        self._bases: dict[int, _WindowBasis] = {}
        """The window transforms by window length, see :meth:`_window_basis`."""
        self.planned_displacement: DisplacementKind = "profile"
        """``field`` once :meth:`plan` has found a frame whose lines jump, ``profile`` otherwise."""

    def params(self) -> dict[str, Any]:
        out = asdict(self.settings)
        out.update(window=self.window or out["window"], step=int(self._step()) if self.window else out["step"])
        return out

    def configure(self, height: int, width: int, first_line: str) -> None:
        s = self.settings
        self.height, self.width, self.first_line = height, width, first_line
        self.window = int(min(height, s.window or max(32, min(128, height // 4))))
        step = self._step()
        starts = np.arange(0, max(height - self.window, 0) + 1, step, dtype=np.intp)
        if starts[-1] != height - self.window:
            starts = np.append(starts, height - self.window)
        self.groups = [(self.window, starts)]
        edge = self.window // 2
        if edge >= 32:
            self.groups.append((edge, np.array([0, height - edge], dtype=np.intp)))
        self.starts = np.concatenate([g for _, g in self.groups])
        n_win, n_q = self.starts.size, s.quantiles
        self.n_moving = moving_width(width, first_line)
        self.plan_width = 2 * n_win + 2 * n_q + (2 * self._max_blocks() if s.jumps else 0)

    def _max_blocks(self) -> int:
        """Blocks a frame may keep: ``max_blocks``, at least 1."""
        return max(int(self.settings.max_blocks), 1)

    def _step(self) -> int:
        return int(max(1, self.settings.step or self.window // 4))

    @property
    def centres(self) -> np.ndarray:
        """Row at the middle of every window, main windows first, then the two half-size edge windows."""
        return np.concatenate([starts + (length - 1) / 2.0 for length, starts in self.groups])

    def displacement_kind(self) -> DisplacementKind:
        """``field`` when the plan found jumps between blocks of lines, ``profile`` otherwise."""
        return self.planned_displacement

    # -- first pass ---------------------------------------------------------------------------
    def measure(self, odd: np.ndarray, even: np.ndarray) -> np.ndarray:
        """Per frame: window shifts and confidences, both quantile sets, and (with ``jumps``) the block table.

        The block table holds ``max_blocks`` block starts (first backward line; unused: the number of
        lines) and as many offsets (px, 0 for the reference block and unused slots); a frame without
        jumps has one block starting at 0.
        """
        s = self.settings
        probs = np.linspace(0.005, 0.995, s.quantiles)
        t = even.shape[0]
        if s.harmonise:
            all_even = row_quantiles(even, probs)
            all_odd = row_quantiles(odd, probs)
        rows = np.zeros((t, self.plan_width))
        n_win, n_q = self.starts.size, s.quantiles
        if s.harmonise:
            rows[:, 2 * n_win : 2 * n_win + n_q], rows[:, 2 * n_win + n_q : 2 * n_win + 2 * n_q] = all_even, all_odd
        else:
            rows[:, 2 * n_win : 2 * n_win + 2 * n_q] = np.tile(probs, 2)
        for lo in range(0, t, FRAME_BATCH):
            frames = np.arange(lo, min(lo + FRAME_BATCH, t))
            ref = odd_at_even(odd[frames].astype(np.float64), self.width, self.first_line)
            mov = even[frames].astype(np.float64)
            found = self._find_blocks(ref, mov) if s.jumps else [None] * frames.size
            plain = []
            for i, f in enumerate(frames):
                blocks = self._block_shifts(ref[i], mov[i], *found[i]) if found[i] is not None else None
                if blocks is None:
                    plain.append(i)
                    table = [self._block_table(np.zeros(1), np.zeros(1))] if s.jumps else []
                else:
                    shifts, weights, starts, offsets = blocks
                    rows[f, : 2 * n_win] = np.concatenate([shifts, weights])
                    table = [self._block_table(starts, offsets)]
                if table:
                    rows[f, 2 * n_win + 2 * n_q :] = table[0]
            if plain:
                shifts, weights = self._window_shifts(ref[plain], mov[plain])
                rows[frames[plain], : 2 * n_win] = np.concatenate([shifts, weights], axis=1)
        return rows

    def _block_table(self, starts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """``max_blocks`` starts then ``max_blocks`` offsets, unused slots starting past the last line."""
        k = self._max_blocks()
        table = np.concatenate([np.full(k, float(self.n_moving)), np.zeros(k)])
        table[: starts.size] = starts
        table[k : k + offsets.size] = offsets
        return table

    def _find_blocks(self, ref: np.ndarray, mov: np.ndarray) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per frame of ``(frames, Y, lines)``: per-line correlations and block starts where the lines seem
        to jump, None where they do not.

        Per-line shifts are segmented, blocks the evidence does not keep apart are joined, the
        boundaries are placed line by line, and a frame in which some block's shift drifts across
        its lines (a tilted structure lined up, not jitter) is left to the profile.
        """
        reach = int(min(self.settings.jump_max, self.height // 2 - 1))
        if reach < 1 or mov.shape[-1] < 2 * jumps.MIN_BLOCK_LINES:
            return [None] * mov.shape[0]
        return [self._frame_blocks(corr) for corr in jumps.line_correlation(ref, mov, reach, self.settings.frequency_cutoff)]

    def _frame_blocks(self, corr: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`_find_blocks` of one frame from its per-line correlations ``(lags, lines)``."""
        jump_min = self.settings.jump_min
        starts = jumps.segment(jumps.line_shifts(corr), jump_min)
        if starts.size > 1:
            starts = jumps.merge_blocks(corr, starts, jump_min)
        if starts.size < 2:
            return None
        starts = jumps.refine_boundaries(corr, starts)
        if jumps.drifting(corr, starts, jump_min).any():
            return None
        return corr, starts

    def _block_shifts(
        self, ref: np.ndarray, mov: np.ndarray, corr: np.ndarray, starts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Window shifts of the profile, their confidences, and the starts and offsets of a frame's blocks.

        Every block's windows start at the block's whole-line shift (rounded) and are measured like
        :meth:`_window_shifts`; the two-way fit takes the largest block as the reference (offset 0).
        A block the windows do not confirm (fewer than ``jumps.MIN_WINDOWS`` windows measured, or a
        median misfit above ``jumps.BLOCK_MISFIT_PX``: a whole-line peak that was not a shift) is
        joined to the neighbour with the closer whole-line shift and the fit is repeated, as is the
        smallest step while there are more than ``max_blocks`` blocks; None when one block is left.
        """
        measured: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        while starts.size > 1:
            pooled = jumps.block_shifts(corr, starts)
            lengths = np.diff(np.append(starts, mov.shape[1]))
            keys = [(int(lo), int(n), int(k)) for lo, n, k in zip(starts, lengths, np.round(pooled))]
            missing = [k for k in keys if k not in measured]
            measured.update(zip(missing, self._windows_of_blocks(ref, mov, missing)))
            found = np.asarray([measured[k][0] for k in keys])
            weights = np.asarray([measured[k][1] * k[1] for k in keys])
            windows = (weights > 0).sum(axis=1)
            reference = int(np.argmax(np.where(windows > 0, lengths, -1)))
            profile, offsets, pooled_weight, misfit = jumps.fit_offsets(found, weights, reference)
            doubt = np.where(windows < jumps.MIN_WINDOWS, np.inf, misfit)
            steps = np.abs(np.diff(offsets))
            settled = bool((doubt <= jumps.BLOCK_MISFIT_PX).all() and (steps >= self.settings.jump_min).all())
            if settled and starts.size <= self._max_blocks():
                return profile, pooled_weight / lengths.sum(), starts, offsets
            drop = int(np.argmin(steps)) + 1 if settled else self._weakest_boundary(doubt, steps, np.abs(np.diff(pooled)))
            starts = np.delete(starts, drop)
        return None

    def _weakest_boundary(self, doubt: np.ndarray, steps: np.ndarray, gaps: np.ndarray) -> int:
        """Block start to drop: a step below ``jump_min`` first, else a boundary of the most doubtful block."""
        small = steps < self.settings.jump_min
        if small.any():
            return int(np.argmin(np.where(small, steps, np.inf))) + 1
        b = int(np.argmax(doubt))
        left = gaps[b - 1] if b > 0 else np.inf
        right = gaps[b] if b < gaps.size else np.inf
        return b if left <= right else b + 1

    def _windows_of_blocks(
        self, ref: np.ndarray, mov: np.ndarray, blocks: list[tuple[int, int, int]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`_window_shifts` of each block ``(first line, lines, whole-line shift)``, windows started at that shift.

        ``ref`` and ``mov`` are one frame ``(Y, lines)``. The blocks' spectra are computed apart and their peaks
        found together. Windows whose start had to be clamped at the frame edge by more than two rows
        see other content: weight 0.
        """
        if not blocks:
            return []
        cols = [slice(lo, lo + n) for lo, n, _ in blocks]
        start = np.array([shift for _, _, shift in blocks])[:, None]
        shifts, confidence = [], []
        for length, starts in self.groups:
            lo, hi = -starts[None, :], (self.height - length - starts)[None, :]
            offsets = np.clip(start, lo, hi).astype(np.intp)
            spectra = [self._ref_spectra(ref[None, :, c], starts, length) for c in cols]
            first = self._block_peaks(ref, mov, cols, starts, length, offsets, spectra)[0]
            wanted = offsets + np.round(np.nan_to_num(first))
            moved = np.clip(wanted, lo, hi).astype(np.intp)
            rest, conf = self._block_peaks(ref, mov, cols, starts, length, moved, spectra)
            clamped = (np.abs(offsets - start) > 2) | (np.abs(moved - wanted) > 2)
            shifts.append(moved + rest)
            confidence.append(np.where(clamped, 0.0, conf))
        shift, conf = np.concatenate(shifts, axis=1), np.concatenate(confidence, axis=1)
        bad = ~np.isfinite(shift) | ~np.isfinite(conf)
        shift, conf = np.where(bad, 0.0, shift), np.where(bad, 0.0, conf)
        return list(zip(shift, conf))

    def _block_peaks(
        self, ref: np.ndarray, mov: np.ndarray, cols: list[slice], starts: np.ndarray, L: int, offsets: np.ndarray,
        ref_spectra: list[tuple[np.ndarray, np.ndarray]],
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """:meth:`_correlate` of every block's columns ``cols`` with its own ``offsets`` row; ``(blocks, windows)``."""
        spectra = [self._window_spectra(mov[None, :, c], starts, L, o, r) for c, o, r in zip(cols, offsets, ref_spectra)]
        lag, height = self._peaks(np.concatenate(spectra).reshape(-1, spectra[0].shape[-1]), L)
        return lag.reshape(len(cols), -1), height.reshape(len(cols), -1)

    def _window_shifts(self, ref: np.ndarray, mov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shift (px) and confidence ``(frames, windows)`` of the backward lines ``mov`` against their
        reference ``ref`` (both ``(frames, Y, lines)``) in every window.

        Tapered windows bias the correlation peak towards zero lag in proportion to the shift, so
        a second pass moves each backward-line window by the first estimate, rounded to whole rows,
        and measures only the small remainder. Two half-size windows at the ends of the line give
        the profile evidence where the full windows' centres do not reach.
        """
        parts = []
        for length, starts in self.groups:
            spectra = self._ref_spectra(ref, starts, length)
            first, _ = self._correlate(mov, starts, length, np.zeros((mov.shape[0], starts.size), dtype=np.intp), spectra)
            offsets = np.clip(np.round(first), -starts, self.height - length - starts).astype(np.intp)
            rest, conf = self._correlate(mov, starts, length, offsets, spectra)
            parts.append((offsets + rest, conf))
        shifts = np.concatenate([p[0] for p in parts], axis=1)
        confidence = np.concatenate([p[1] for p in parts], axis=1)
        bad = ~np.isfinite(shifts) | ~np.isfinite(confidence)
        return np.where(bad, 0.0, shifts), np.where(bad, 0.0, confidence)

    def _correlate(
        self, mov: np.ndarray, starts: np.ndarray, L: int, offsets: np.ndarray, ref_spectra: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sub-pixel lag ``(frames, windows)`` of each ``L``-row window of ``mov`` (moved by ``offsets`` rows) against
        the reference's spectra, and the peak's height."""
        spec = self._window_spectra(mov, starts, L, offsets, ref_spectra)
        lag, height = self._peaks(spec.reshape(-1, spec.shape[-1]), L)
        return lag.reshape(spec.shape[:2]), height.reshape(spec.shape[:2])

    def _window_basis(self, L: int) -> _WindowBasis:
        """The matrices of :class:`_WindowBasis` for ``L``-row windows, built once per window length."""
        basis = self._bases.get(L)
        if basis is None:
            weights = self._spectral_weights(L // 2 + 1, L)
            reach = min(self.settings.max_shift, L / 2 - 1)
            basis = self._bases[L] = _WindowBasis.build(L, weights, reach, self.settings.upsample)
        return basis

    def _spectra(self, lines: np.ndarray, starts: np.ndarray, L: int) -> np.ndarray:
        """Spectra ``(2 * band, windows, frames, lines)`` (real parts, then imaginary parts) of the ``L``-row windows
        of ``lines`` ``(frames, Y, lines)`` starting at ``starts`` (``(windows,)`` or per frame), mean removed and tapered:
        one matrix product over every window of every frame."""
        frames, n_win = lines.shape[0], starts.shape[-1]
        rows = np.broadcast_to(starts, (frames, n_win)).T[None] + np.arange(L)[:, None, None]  # (L, windows, frames)
        windows = lines[np.arange(frames)[None, None, :], rows].reshape(L, -1)  # one product for every window
        return (self._window_basis(L).dft @ windows).reshape(-1, n_win, frames, lines.shape[2])

    def _ref_spectra(self, ref: np.ndarray, starts: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
        """Spectra of the reference windows (:meth:`_spectra`) and their power ``(frames, windows, band)`` summed over
        the lines.

        They do not depend on the backward lines' offsets, so both passes of a window group share them.
        """
        fb = self._spectra(ref, starts, L)
        return fb, _power(fb)

    def _window_spectra(
        self, mov: np.ndarray, starts: np.ndarray, L: int, offsets: np.ndarray, ref_spectra: tuple[np.ndarray, np.ndarray]
    ) -> np.ndarray:
        """Coherence-whitened, low-passed cross-spectrum ``(frames, windows, band)`` pooled over the lines."""
        fb, power_b = ref_spectra
        fa = self._spectra(mov, starts + offsets, L)
        k = power_b.shape[-1]
        ar, ai, br, bi = fa[:k], fa[k:], fb[:k], fb[k:]
        cross = _dot(ar, br) + _dot(ai, bi) + 1j * (_dot(ai, br) - _dot(ar, bi))
        power = np.sqrt(_power(fa) * power_b)
        floor = 1e-12 * np.maximum(power.max(axis=(1, 2), keepdims=True, initial=0.0), 1e-300)
        kept = power > floor
        np.divide(cross, power, out=cross, where=kept)
        cross[~kept] = 0.0
        return cross * self._window_basis(L).weights

    def _peaks(self, spec: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
        """Sub-pixel peak lag (within ``max_shift``) and peak height of every window's cross-spectrum ``(windows, band)``.

        The correlation is evaluated at the whole lags within reach, then on a grid of ``upsample``
        points per pixel over the pixel either side of the best one, and a parabola through the best
        grid point and its neighbours places the peak.
        """
        basis = self._window_basis(L)
        coarse = np.argmax((spec @ basis.to_lags).real, axis=1)
        fine = (spec * basis.lag_phasors[coarse]) @ basis.to_grid
        fine = fine.real / basis.weights_sum
        up = self.settings.upsample
        best = np.clip(np.argmax(fine, axis=1), 1, 2 * up - 1)
        idx = np.arange(fine.shape[0])
        y0, y1, y2 = fine[idx, best - 1], fine[idx, best], fine[idx, best + 1]
        denom = y0 - 2 * y1 + y2
        delta = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1.0), 0.0)
        return basis.lags[coarse] + basis.offsets[best] + np.clip(delta, -1.0, 1.0) / up, np.clip(y1, 0.0, None)

    def _spectral_weights(self, nf: int, L: int) -> np.ndarray:
        """Hermitian fold weights times a raised-cosine low-pass.

        Frequencies near Nyquist carry mostly noise and, for a point-spread function close to the
        pixel size, aliasing whose phase does not follow the shift; down-weighting them lowers both
        the scatter and the bias of the sub-pixel estimate.
        """
        f = np.arange(nf) / (L / 2.0)
        cut = self.settings.frequency_cutoff
        lowpass = np.where(f < cut, 0.5 * (1.0 + np.cos(np.pi * f / cut)), 0.0)
        fold = np.full(nf, 2.0)
        fold[0] = 0.0
        if L % 2 == 0:
            fold[-1] = 1.0
        return fold * lowpass

    # -- whole-sequence plan --------------------------------------------------------------------
    def plan(self, stats: np.ndarray) -> np.ndarray:
        from scipy.ndimage import gaussian_filter1d

        s = self.settings
        n_win = self.starts.size
        n_q = s.quantiles
        shifts = stats[:, :n_win]
        weights = stats[:, n_win : 2 * n_win].copy()
        q_even = stats[:, 2 * n_win : 2 * n_win + n_q]
        q_odd = stats[:, 2 * n_win + n_q : 2 * n_win + 2 * n_q]
        blocks = stats[:, 2 * n_win + 2 * n_q :]
        self.planned_displacement = "field" if bool(np.any(blocks[:, blocks.shape[1] // 2 :] != 0)) else "profile"
        if self.planned_displacement == "field":
            coeffs = self._fit_profiles(*self._smooth_shape(shifts, weights))
        else:
            weights = self._reject_temporal_outliers(shifts, weights)
            shifts, weights = self._smooth_time(shifts, weights)
            coeffs = self._fit_profiles(shifts, weights)
        if s.temporal_sigma > 0 and stats.shape[0] > 1:
            q_even = gaussian_filter1d(q_even, s.temporal_sigma, axis=0, mode="nearest")
            q_odd = gaussian_filter1d(q_odd, s.temporal_sigma, axis=0, mode="nearest")
        parts = [coeffs, q_even, q_odd] + ([blocks] if self.planned_displacement == "field" else [])
        return np.concatenate(parts, axis=1)

    def _smooth_shape(self, shifts: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Outlier rejection and temporal smoothing of the profile's shape, each frame keeping its own level.

        Where lines jump, a frame's window shifts are relative to its largest block, whose offset
        changes from frame to frame with the jitter; smoothing only the shape (shifts less their
        weighted mean) keeps those level changes out of the neighbouring frames.
        """
        total = weights.sum(axis=1, keepdims=True)
        level = np.where(total > 0, (weights * shifts).sum(axis=1, keepdims=True) / np.maximum(total, 1e-300), 0.0)
        shape = shifts - level
        weights = self._reject_temporal_outliers(shape, weights)
        shape, weights = self._smooth_time(shape, weights)
        return shape + level, weights

    def _reject_temporal_outliers(self, shifts: np.ndarray, weights: np.ndarray) -> np.ndarray:
        from scipy.ndimage import median_filter

        if shifts.shape[0] < 5:
            return weights
        med = median_filter(shifts, size=(5, 1), mode="nearest")
        dev = np.abs(shifts - med)
        mad = 1.4826 * np.median(dev, axis=0, keepdims=True)
        limit = np.maximum(4.0 * mad, 0.5)
        return np.where(dev > limit, 0.0, weights)

    def _smooth_time(self, shifts: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.ndimage import gaussian_filter1d

        sigma = self.settings.temporal_sigma
        if sigma <= 0 or shifts.shape[0] == 1:
            return shifts, weights
        num = gaussian_filter1d(shifts * weights, sigma, axis=0, mode="nearest")
        den = gaussian_filter1d(weights, sigma, axis=0, mode="nearest")
        smooth = np.where(den > 1e-12, num / np.maximum(den, 1e-12), 0.0)
        return smooth, den

    def _u(self, rows: np.ndarray) -> np.ndarray:
        return 2.0 * np.asarray(rows, dtype=np.float64) / max(self.height - 1, 1) - 1.0

    def _basis(self, rows: np.ndarray, degree: int) -> np.ndarray:
        """Polynomial basis in normalised row position, continued linearly beyond the outer windows.

        Only the window centres carry evidence; continuing the fitted curve along its tangent outside
        them keeps a cubic from swinging away in the last half-window at each end of the line.
        """
        u = self._u(rows)
        lo, hi = self._u(self.centres[[0, -1]])
        uc = np.clip(u, lo, hi)
        powers = np.arange(degree + 1)
        value = uc[:, None] ** powers[None, :]
        slope = powers[None, :] * np.where(powers[None, :] > 0, uc[:, None] ** np.maximum(powers - 1, 0), 0.0)
        return value + slope * (u - uc)[:, None]

    def _robust_fit(self, shifts: np.ndarray, weights: np.ndarray, degree: int) -> tuple[np.ndarray, float]:
        """Huber-weighted polynomial fit for every frame at once; returns coefficients and pooled RSS."""
        V = self._basis(self.centres, degree)
        w = weights.copy()
        coeffs = np.zeros((shifts.shape[0], degree + 1))
        for _ in range(6):
            A = np.einsum("wi,tw,wj->tij", V, w, V) + 1e-9 * np.eye(degree + 1)
            rhs = np.einsum("wi,tw,tw->ti", V, w, shifts)
            coeffs = np.linalg.solve(A, rhs[..., None])[..., 0]
            resid = shifts - coeffs @ V.T
            scale = 1.4826 * np.median(np.abs(resid), axis=1, keepdims=True) + 0.02
            r = np.abs(resid) / (1.345 * scale)
            w = weights * np.where(r <= 1.0, 1.0, 1.0 / np.maximum(r, 1e-12))
        rss = float((w * resid**2).sum() / max(float(w.sum()), 1e-12))
        return coeffs, rss

    def _fit_profiles(self, shifts: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Per-frame profiles whose polynomial degree is chosen once for the sequence.

        The simplest degree whose pooled residual RMS is within ``degree_tolerance`` px of the best
        candidate's is used. Window estimates carry an error from scene structure that repeats in
        every frame (adjacent lines do not show identical structure), so residual-based criteria
        such as BIC mistake it for curvature; an absolute tolerance at the size of that error keeps
        a straight profile straight and still admits real curvature of a fraction of a pixel.
        """
        max_degree = min(self.settings.degree, self.starts.size - 2)
        fits = [self._robust_fit(shifts, weights, d) for d in range(max(max_degree, 0) + 1)]
        best = min(np.sqrt(rss) for _, rss in fits)
        for degree, (coeffs, rss) in enumerate(fits):
            if np.sqrt(rss) <= best + self.settings.degree_tolerance:
                break
        self.chosen_degree = degree
        full = np.zeros((shifts.shape[0], self.settings.degree + 1))
        full[:, : coeffs.shape[1]] = coeffs
        return full

    # -- second pass --------------------------------------------------------------------------
    def profile(self, plan_rows: np.ndarray) -> np.ndarray:
        """Displacement (t, Y) along the fast axis from the plan rows."""
        n_c = self.settings.degree + 1
        V = self._basis(np.arange(self.height), self.settings.degree)
        return plan_rows[:, :n_c] @ V.T

    def line_offsets(self, plan_rows: np.ndarray) -> np.ndarray:
        """Per-line offsets (t, Xe) added to the profile, from the plan's block table; zeros for a profile plan."""
        if self.planned_displacement != "field":
            return np.zeros((plan_rows.shape[0], self.n_moving))
        k = self._max_blocks()
        starts, offsets = plan_rows[:, -2 * k : -k], plan_rows[:, -k:]
        block = (starts[:, None, :] <= np.arange(self.n_moving)[None, :, None]).sum(axis=2) - 1
        return np.take_along_axis(offsets, np.maximum(block, 0), axis=1)

    def displacement_of(self, plan_rows: np.ndarray) -> np.ndarray:
        """What :meth:`apply` reports: the profile (t, Y), or with jumps the field (t, Y, Xe)."""
        disp = self.profile(plan_rows)
        if self.planned_displacement != "field":
            return disp
        return disp[:, :, None] + self.line_offsets(plan_rows)[:, None, :]

    def apply(self, odd, even, plan_rows):
        s = self.settings
        disp = self.displacement_of(plan_rows)
        if disp.ndim == 2:
            positions = np.arange(self.height)[None, :] + disp
            reg = resample_rows(even.astype(np.float32), positions)
        else:
            reg = resample_columns(even.astype(np.float32), np.arange(self.height)[None, :, None] + disp)
        if s.harmonise:
            n_c, n_q = s.degree + 1, s.quantiles
            for f in range(reg.shape[0]):
                q_even = plan_rows[f, n_c : n_c + n_q]
                q_odd = plan_rows[f, n_c + n_q : n_c + 2 * n_q]
                reg[f] = monotone_map(reg[f], q_even, q_odd)
        return reg, disp.astype(np.float32)

    def plan_summary(self, plan: np.ndarray) -> dict[str, Any]:
        profile = self.profile(plan)
        summary = {
            "displacement_mean_px": float(profile.mean()),
            "displacement_min_px": float(profile.min()),
            "displacement_max_px": float(profile.max()),
            "windows": int(self.starts.size),
            "profile_degree": int(self.chosen_degree),
        }
        if self.planned_displacement == "field":
            offsets = self.line_offsets(plan)
            blocks = 1 + (np.diff(offsets, axis=1) != 0).sum(axis=1)
            low = profile.min(axis=1) + offsets.min(axis=1)
            high = profile.max(axis=1) + offsets.max(axis=1)
            mean = profile.mean(axis=1) + offsets.mean(axis=1)
            summary.update(displacement_mean_px=float(mean.mean()), displacement_min_px=float(low.min()),
                           displacement_max_px=float(high.max()), frames_with_jumps=int((blocks > 1).sum()),
                           most_blocks=int(blocks.max()))  # fmt: skip
        return summary


FRAME_BATCH = 4
"""Frames whose windows go through the transforms together: fewer, larger array operations hold the GIL less, so
two chunk threads measure side by side (about 2x on two cores); more frames per batch outgrow the CPU caches."""


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum(a * b)`` over the last axis (the lines)."""
    return np.einsum("kwfc,kwfc->fwk", a, b)


def _power(spectra: np.ndarray) -> np.ndarray:
    """``|spectrum|^2`` per frame, window and frequency of :meth:`PhaseCorrelation._spectra`, summed over the lines."""
    k = spectra.shape[0] // 2
    return _dot(spectra[:k], spectra[:k]) + _dot(spectra[k:], spectra[k:])
