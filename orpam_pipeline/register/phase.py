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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from orpam_pipeline.geometry import odd_at_even
from orpam_pipeline.kernels import KEYS_OFFSETS, keys_weights
from orpam_pipeline.register.base import RegistrationMethod
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


def resample_rows(lines: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Sample ``lines`` (t, Y, C) along Y at ``positions`` (t, Y), edge-clamped Keys cubic."""
    height = lines.shape[-2]
    pos = np.clip(positions, 0.0, height - 1.0)
    base = np.floor(pos)
    frac = (pos - base)[..., None].astype(np.float32)
    base = base.astype(np.intp)
    out = np.zeros(lines.shape, dtype=np.float32)
    for offset, weight in zip(KEYS_OFFSETS, keys_weights(frac)):
        idx = np.clip(base + offset, 0, height - 1)[..., None]
        out += weight * np.take_along_axis(lines, idx, axis=-2)
    return out


def monotone_map(values: np.ndarray, src_q: np.ndarray, dst_q: np.ndarray) -> np.ndarray:
    """Piecewise-linear map sending quantiles ``src_q`` to ``dst_q``, extended linearly at both ends."""
    xp = np.maximum.accumulate(np.asarray(src_q, dtype=np.float64))
    fp = np.maximum.accumulate(np.asarray(dst_q, dtype=np.float64))
    span = xp[-1] - xp[0]
    if not np.isfinite(span) or span <= 1e-12 * max(1.0, abs(xp[-1])):
        return (values + (np.median(fp) - np.median(xp))).astype(np.float32)
    k = max(2, xp.size // 8)
    # A tail whose quantiles tie (clipped or saturated data) has no slope of its own; the spread
    # added below would make it enormous and send resampling overshoot to absurd values.
    overall = max((fp[-1] - fp[0]) / span, 0.0)
    tied_lo = xp[k] - xp[0] <= 1e-6 * span
    tied_hi = xp[-1] - xp[-1 - k] <= 1e-6 * span
    xp = xp + np.arange(xp.size) * (span * 1e-9)
    lo_slope = overall if tied_lo else max((fp[k] - fp[0]) / (xp[k] - xp[0]), 0.0)
    hi_slope = overall if tied_hi else max((fp[-1] - fp[-1 - k]) / (xp[-1] - xp[-1 - k]), 0.0)
    out = np.interp(values, xp, fp)
    out = np.where(values < xp[0], fp[0] + lo_slope * (values - xp[0]), out)
    out = np.where(values > xp[-1], fp[-1] + hi_slope * (values - xp[-1]), out)
    return out.astype(np.float32)


class PhaseCorrelation(RegistrationMethod):
    """Sub-pixel, line-varying, temporally smoothed phase-correlation correction."""

    name = "phase"
    kind = "classical"
    description = "whitened sub-pixel cross-correlation profile along the fast axis + intensity harmonisation"
    displacement = "profile"
    settings_type = PhaseSettings

    def __init__(self, settings: PhaseSettings | None = None) -> None:
        super().__init__(settings)
        self.height = 0
        self.width = 0
        self.first_line = "forward"
        self.starts = np.zeros(0, dtype=np.intp)
        self.window = 0
        self.chosen_degree = self.settings.degree

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
        self.plan_width = 2 * n_win + 2 * n_q

    def _step(self) -> int:
        return int(max(1, self.settings.step or self.window // 4))

    @property
    def centres(self) -> np.ndarray:
        """Row at the middle of every window, main windows first, then the two half-size edge windows."""
        return np.concatenate([starts + (length - 1) / 2.0 for length, starts in self.groups])

    # -- first pass ---------------------------------------------------------------------------
    def measure(self, odd: np.ndarray, even: np.ndarray) -> np.ndarray:
        s = self.settings
        probs = np.linspace(0.005, 0.995, s.quantiles)
        rows = []
        for f in range(even.shape[0]):
            shifts, weights = self._window_shifts(odd[f], even[f])
            q_even = np.quantile(even[f], probs) if s.harmonise else probs
            q_odd = np.quantile(odd[f], probs) if s.harmonise else probs
            rows.append(np.concatenate([shifts, weights, q_even, q_odd]))
        return np.asarray(rows, dtype=np.float64).reshape(even.shape[0], self.plan_width)

    def _window_shifts(self, odd: np.ndarray, even: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shift (px) and confidence of ``even`` against ``odd`` in every window along Y.

        Tapered windows bias the correlation peak towards zero lag in proportion to the shift, so
        a second pass moves each backward-line window by the first estimate, rounded to whole rows,
        and measures only the small remainder. Two half-size windows at the ends of the line give
        the profile evidence where the full windows' centres do not reach.
        """
        ref = odd_at_even(odd.astype(np.float64), self.width, self.first_line)
        mov = even.astype(np.float64)
        parts = []
        for length, starts in self.groups:
            first, _ = self._correlate(ref, mov, starts, length, np.zeros(starts.size, dtype=np.intp))
            offsets = np.clip(np.round(first), -starts, self.height - length - starts).astype(np.intp)
            rest, conf = self._correlate(ref, mov, starts, length, offsets)
            parts.append((offsets + rest, conf))
        shifts = np.concatenate([p[0] for p in parts])
        confidence = np.concatenate([p[1] for p in parts])
        bad = ~np.isfinite(shifts) | ~np.isfinite(confidence)
        return np.where(bad, 0.0, shifts), np.where(bad, 0.0, confidence)

    def _correlate(
        self, ref: np.ndarray, mov: np.ndarray, starts: np.ndarray, L: int, offsets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sub-pixel lag of each ``L``-row window of ``mov`` (moved by ``offsets`` rows) against ``ref``."""
        rows = np.arange(L)[None, :]
        taper = np.hanning(L + 2)[1:-1][None, :, None]
        a = mov[starts[:, None] + offsets[:, None] + rows]
        b = ref[starts[:, None] + rows]
        a = (a - a.mean(axis=1, keepdims=True)) * taper
        b = (b - b.mean(axis=1, keepdims=True)) * taper
        fa = np.fft.rfft(a, axis=1)
        fb = np.fft.rfft(b, axis=1)
        cross = (fa * np.conj(fb)).sum(axis=2)
        power = np.sqrt((np.abs(fa) ** 2).sum(axis=2) * (np.abs(fb) ** 2).sum(axis=2))
        floor = 1e-12 * max(float(power.max(initial=0.0)), 1e-300)
        coh = np.divide(cross, power, out=np.zeros_like(cross), where=power > floor)
        nf = coh.shape[1]
        weights = self._spectral_weights(nf, L)
        spec = coh * weights[None, :]
        corr = np.fft.irfft(spec, n=L, axis=1)
        lags = np.fft.fftfreq(L, 1.0 / L)
        reach = min(self.settings.max_shift, L / 2 - 1)
        corr = np.where(np.abs(lags)[None, :] <= reach, corr, -np.inf)
        coarse = lags[np.argmax(corr, axis=1)]
        up = self.settings.upsample
        grid = coarse[:, None] + np.linspace(-1.0, 1.0, 2 * up + 1)[None, :]
        phase = np.exp(2j * np.pi * np.arange(nf)[None, :, None] * grid[:, None, :] / L)
        fine = np.real(np.einsum("wk,wkg->wg", spec, phase)) / weights.sum()
        best = np.clip(np.argmax(fine, axis=1), 1, 2 * up - 1)
        idx = np.arange(fine.shape[0])
        y0, y1, y2 = fine[idx, best - 1], fine[idx, best], fine[idx, best + 1]
        denom = y0 - 2 * y1 + y2
        delta = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1.0), 0.0)
        return grid[idx, best] + np.clip(delta, -1.0, 1.0) / up, np.clip(y1, 0.0, None)

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
        shifts = stats[:, :n_win]
        weights = stats[:, n_win : 2 * n_win].copy()
        q_even = stats[:, 2 * n_win : 2 * n_win + s.quantiles]
        q_odd = stats[:, 2 * n_win + s.quantiles :]
        weights = self._reject_temporal_outliers(shifts, weights)
        shifts, weights = self._smooth_time(shifts, weights)
        coeffs = self._fit_profiles(shifts, weights)
        if s.temporal_sigma > 0 and stats.shape[0] > 1:
            q_even = gaussian_filter1d(q_even, s.temporal_sigma, axis=0, mode="nearest")
            q_odd = gaussian_filter1d(q_odd, s.temporal_sigma, axis=0, mode="nearest")
        return np.concatenate([coeffs, q_even, q_odd], axis=1)

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

    def apply(self, odd, even, plan_rows):
        s = self.settings
        disp = self.profile(plan_rows)
        positions = np.arange(self.height)[None, :] + disp
        reg = resample_rows(even.astype(np.float32), positions)
        if s.harmonise:
            n_c, n_q = s.degree + 1, s.quantiles
            for f in range(reg.shape[0]):
                q_even = plan_rows[f, n_c : n_c + n_q]
                q_odd = plan_rows[f, n_c + n_q :]
                reg[f] = monotone_map(reg[f], q_even, q_odd)
        return reg, disp.astype(np.float32)

    def plan_summary(self, plan: np.ndarray) -> dict[str, Any]:
        disp = self.profile(plan)
        return {
            "displacement_mean_px": float(disp.mean()),
            "displacement_min_px": float(disp.min()),
            "displacement_max_px": float(disp.max()),
            "windows": int(self.starts.size),
            "profile_degree": int(self.chosen_degree),
        }
