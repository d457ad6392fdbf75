"""Reducing A-lines (signal over depth) to one MAP value and the depth where it peaks.

An A-line is digitised with a DC offset (16-bit digitisers sit near 32768) and carries a band-pass
pulse (the transducer's carrier). ``envelope`` (the default) removes a per-A-line baseline, optionally
band-passes (zero-phase Butterworth), takes the Hilbert envelope and keeps its maximum; the depth is
refined by a parabola through the peak. ``peak-to-peak`` is max - min; ``abs`` is max |x - baseline|
(with ``baseline="none"`` the max |x| of earlier releases, bit for bit).

A frame is processed in slabs of A-lines whose size depends only on the frame's shape, so memory is
flat and results do not depend on how frames are chunked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import OrpamError

MAP_METHODS = ("envelope", "abs", "peak-to-peak")
BASELINES = ("median", "mean", "none")
DEFAULT_BASELINE = {"envelope": "median", "abs": "none", "peak-to-peak": "none"}
"""Baseline when none is given: peak-to-peak does not depend on it, ``abs`` keeps its old meaning."""
BAND_ORDER = 4
"""Butterworth order of the band-pass (applied forwards and backwards: zero phase)."""
SLAB_SAMPLES = 2**20
"""A-line samples processed at once (float64 and complex temporaries of a few tens of MiB)."""


def parse_window(text: str | tuple[int, int] | list[int] | None, option: str) -> tuple[int, int] | None:
    """``"A:B"`` (sample indices, A < B) as a pair; None stays None."""
    if text is None:
        return None
    if isinstance(text, (tuple, list)):
        parts = [str(v) for v in text]
    else:
        parts = str(text).split(":")
    try:
        a, b = (int(p) for p in parts)
    except ValueError:
        raise OrpamError(f"{option} {text!r}: expected A:B (sample indices, e.g. 0:40)") from None
    if not 0 <= a < b:
        raise OrpamError(f"{option} {text!r}: need 0 <= A < B")
    return a, b


def parse_band(text: str | tuple[float, float] | list[float] | None) -> tuple[float, float] | None:
    """``"LOW:HIGH"`` in MHz (0 < LOW < HIGH) as a pair; None stays None."""
    if text is None:
        return None
    parts = [str(v) for v in text] if isinstance(text, (tuple, list)) else str(text).split(":")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise OrpamError(f"--band {text!r}: expected LOW:HIGH in MHz (e.g. 20:80)") from None
    if not 0 < low < high:
        raise OrpamError(f"--band {text!r}: need 0 < LOW < HIGH (MHz)")
    return low, high


@dataclass(frozen=True)
class Reduction:
    """How A-lines become MAP values: method, baseline, band-pass, depth window, physical scale."""

    method: str = "envelope"
    baseline: str | None = None
    baseline_window: tuple[int, int] | None = None
    band: tuple[float, float] | None = None
    sampling_rate: float | None = None
    speed_of_sound: float | None = None
    depth_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.method not in MAP_METHODS:
            raise OrpamError(f"--map-method must be one of {', '.join(MAP_METHODS)}, not {self.method!r}")
        if self.baseline is None:
            object.__setattr__(self, "baseline", DEFAULT_BASELINE[self.method])
        if self.baseline not in BASELINES:
            raise OrpamError(f"--baseline must be one of {', '.join(BASELINES)}, not {self.baseline!r}")
        if self.baseline_window is not None and self.baseline == "none":
            raise OrpamError("--baseline-window needs --baseline median or mean, not none")
        for name, value in (("--sampling-rate", self.sampling_rate), ("--speed-of-sound", self.speed_of_sound)):
            if value is not None and not float(value) > 0:
                raise OrpamError(f"{name} must be positive, not {value}")
        if self.band is not None:
            if self.sampling_rate is None:
                raise OrpamError("--band needs --sampling-rate (MHz) to know where the band lies")
            if not self.band[1] < self.sampling_rate / 2:
                raise OrpamError(f"--band {self.band[0]:g}:{self.band[1]:g}: HIGH must stay below half the "
                                 f"sampling rate ({self.sampling_rate / 2:g} MHz)")  # fmt: skip

    @property
    def plain_abs(self) -> bool:
        """max |x| on the raw values, exactly as earlier releases computed it."""
        return self.method == "abs" and self.baseline == "none" and self.band is None

    def check(self, n_depth: int) -> str | None:
        """Why this reduction cannot apply to A-lines of ``n_depth`` samples, or None."""
        for option, window in (("--baseline-window", self.baseline_window), ("--depth-range", self.depth_range)):
            if window is not None and window[1] > n_depth:
                return f"{option} {window[0]}:{window[1]} reaches beyond the {n_depth} depth samples"
        if self.band is not None and n_depth < 8:
            return f"--band needs A-lines of at least 8 samples, not {n_depth}"
        return None

    def params(self) -> dict[str, Any]:
        """JSON-able record (provenance and the ingest fingerprint)."""
        return {
            "method": self.method,
            "baseline": self.baseline,
            "baseline_window": None if self.baseline_window is None else list(self.baseline_window),
            "band_mhz": None if self.band is None else list(self.band),
            "sampling_rate_mhz": self.sampling_rate,
            "speed_of_sound_m_s": self.speed_of_sound,
            "depth_range": None if self.depth_range is None else list(self.depth_range),
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Reduction:
        """Inverse of :meth:`params`."""
        pair = lambda v: None if v is None else tuple(v)  # noqa: E731
        return cls(method=params["method"], baseline=params["baseline"], baseline_window=pair(params.get("baseline_window")),
                   band=pair(params.get("band_mhz")), sampling_rate=params.get("sampling_rate_mhz"),
                   speed_of_sound=params.get("speed_of_sound_m_s"), depth_range=pair(params.get("depth_range")))  # fmt: skip

    def physical(self) -> dict[str, Any] | None:
        """Scale of ``depth_map`` (group attribute ``physical``) when sampling rate and speed of sound are known.

        One-way travel (photoacoustic): a sample is ``c / fs`` micrometres for c in m/s and fs in MHz.
        """
        if self.sampling_rate is None or self.speed_of_sound is None:
            return None
        return {
            "sampling_rate_mhz": float(self.sampling_rate),
            "speed_of_sound_m_s": float(self.speed_of_sound),
            "depth_um_per_sample": float(self.speed_of_sound) / float(self.sampling_rate),
            "depth_map_units": "samples",
        }


def _sos(r: Reduction) -> np.ndarray:
    from scipy import signal

    assert r.band is not None and r.sampling_rate is not None
    return signal.butter(BAND_ORDER, r.band, btype="bandpass", fs=r.sampling_rate, output="sos")


def _baseline(x: np.ndarray, r: Reduction) -> np.ndarray:
    part = x if r.baseline_window is None else x[:, r.baseline_window[0] : r.baseline_window[1]]
    return np.median(part, axis=1, keepdims=True) if r.baseline == "median" else part.mean(axis=1, keepdims=True)


def _refine(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Sub-sample offset of a peak from the parabola through it and its neighbours (0 at the window's edges)."""
    n = values.shape[1]
    rows = np.arange(values.shape[0])
    inner = (index > 0) & (index < n - 1)
    left = values[rows, np.clip(index - 1, 0, n - 1)]
    mid = values[rows, index]
    right = values[rows, np.clip(index + 1, 0, n - 1)]
    curve = left - 2 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(inner & (curve < 0), 0.5 * (left - right) / curve, 0.0)
    return np.clip(offset, -0.5, 0.5)


def reduce_lines(lines: np.ndarray, r: Reduction) -> tuple[np.ndarray, np.ndarray]:
    """A-lines ``(n, Z)`` -> float32 MAP values and depths (samples from the A-line's start), each ``(n,)``."""
    a, b = r.depth_range or (0, lines.shape[1])
    if r.plain_abs:
        window = lines[:, a:b]
        hi = window.max(axis=1).astype(np.float32)
        lo = window.min(axis=1).astype(np.float32)
        depth = np.where(hi >= -lo, window.argmax(axis=1), window.argmin(axis=1))
        return np.maximum(hi, -lo), (depth + a).astype(np.float32)
    window = _profiles(lines, r)
    rows = np.arange(window.shape[0])
    if r.method == "peak-to-peak":
        hi, lo = window.argmax(axis=1), window.argmin(axis=1)
        peak = window[rows, hi] - window[rows, lo]
        depth = 0.5 * (hi + lo)
    else:
        index = window.argmax(axis=1)
        peak = window[rows, index]
        depth = index + _refine(window, index) if r.method == "envelope" else index.astype(np.float64)
    return peak.astype(np.float32), (depth + a).astype(np.float32)


def _profiles(lines: np.ndarray, r: Reduction) -> np.ndarray:
    """Float64 ``(n, Zw)``: baseline removed, band-passed, then the envelope (``envelope``) or |x|
    (``abs``) or x itself (``peak-to-peak``), inside the depth range."""
    a, b = r.depth_range or (0, lines.shape[1])
    x = np.array(lines, dtype=np.float64)
    if r.baseline != "none":
        x -= _baseline(x, r)
    if r.band is not None:
        from scipy import signal

        sos = _sos(r)
        x = signal.sosfiltfilt(sos, x, axis=1, padlen=min(3 * (2 * len(sos) + 1), x.shape[1] - 1))
    if r.method == "envelope":
        from scipy import signal

        return np.abs(signal.hilbert(x, axis=1))[:, a:b]
    return np.abs(x[:, a:b]) if r.method == "abs" else x[:, a:b]


def depth_profiles(lines: np.ndarray, r: Reduction) -> np.ndarray:
    """A-lines ``(n, Z)`` -> float32 ``(n, Zw)``: the signal whose maximum is the MAP, inside the depth range
    (the envelope, |x − baseline|, or x − baseline for peak-to-peak): what ``--keep-volume`` stores."""
    if r.plain_abs:
        a, b = r.depth_range or (0, lines.shape[1])
        return np.abs(np.asarray(lines[:, a:b], dtype=np.float32))
    return _profiles(lines, r).astype(np.float32)


def volume_frame(raw: np.ndarray, r: Reduction) -> np.ndarray:
    """One frame of A-lines ``(Y, X, Z)`` -> float32 ``(Zw, Y, X)`` depth profiles (:func:`depth_profiles`)."""
    y, x, z = raw.shape
    rows = max(1, SLAB_SAMPLES // max(x * z, 1))
    parts = []
    for y0 in range(0, y, rows):
        profiles = depth_profiles(np.ascontiguousarray(raw[y0 : y0 + rows]).reshape(-1, z), r)
        parts.append(profiles.reshape(-1, x, profiles.shape[1]))
    return np.ascontiguousarray(np.concatenate(parts, axis=0).transpose(2, 0, 1))


def reduce_frame(raw: np.ndarray, r: Reduction) -> tuple[np.ndarray, np.ndarray]:
    """One frame of A-lines ``(Y, X, Z)`` (any strides) -> float32 MAP and depth map ``(Y, X)``."""
    y, x, z = raw.shape
    rows = max(1, SLAB_SAMPLES // max(x * z, 1))
    peak = np.empty((y, x), dtype=np.float32)
    depth = np.empty((y, x), dtype=np.float32)
    for y0 in range(0, y, rows):
        slab = np.ascontiguousarray(raw[y0 : y0 + rows]).reshape(-1, z)
        p, d = reduce_lines(slab, r)
        peak[y0 : y0 + rows] = p.reshape(-1, x)
        depth[y0 : y0 + rows] = d.reshape(-1, x)
    return peak, depth
