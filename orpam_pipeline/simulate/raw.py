"""A-line volumes behind a simulated sequence: what an OR-PAM digitiser records before the MAP.

Each pixel of a simulated frame becomes an A-line of ``depth_samples`` unsigned 16-bit samples: a DC
offset near 32768, a Gaussian-modulated carrier pulse (e.g. 50 MHz sampled at 250 MHz) whose envelope
peaks at the pixel's noiseless frame value, at a depth that varies smoothly over the scene, and white
noise. Backward lines see the scene (and its depth) at the displaced rows, exactly like the frames,
so the envelope MAP of the volume is the sequence's noiseless frames and the usual truth applies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.simulate.sequence import SimulationParams, _Renderer

_STREAM_RAW_DEPTH, _STREAM_RAW_NOISE = 4, 5
UINT16_MAX = 65535


@dataclass(frozen=True)
class RawParams:
    """How frames become A-lines: depth sampling, carrier pulse, digitiser offset, scale and noise.

    ``depth_center`` and ``depth_swing`` are fractions of ``depth_samples``: the pulse depth varies by
    up to ``depth_swing * depth_samples`` samples around the centre. ``counts`` digitiser counts are
    one unit of frame value; ``noise`` is the standard deviation of the white noise, in counts.
    """

    depth_samples: int = 128
    sampling_rate_mhz: float = 250.0
    carrier_mhz: float = 50.0
    pulse_sigma: float = 4.0
    depth_center: float = 0.5
    depth_swing: float = 0.15
    dc_offset: float = 32768.0
    counts: float = 12000.0
    noise: float = 40.0

    def __post_init__(self) -> None:
        if not 0 < self.carrier_mhz < self.sampling_rate_mhz / 2:
            raise OrpamError(f"carrier {self.carrier_mhz} MHz must lie below half the sampling rate ({self.sampling_rate_mhz} MHz)")
        lo, hi = self.depth_range()
        if lo < 3 * self.pulse_sigma or hi > self.depth_samples - 1 - 3 * self.pulse_sigma:
            raise OrpamError(f"pulses at depths {lo:.1f}-{hi:.1f} do not fit in {self.depth_samples} samples "
                             f"(pulse sigma {self.pulse_sigma}); use more --depth-samples")  # fmt: skip

    def depth_range(self) -> tuple[float, float]:
        """Shallowest and deepest pulse centre (samples)."""
        centre, swing = self.depth_center * self.depth_samples, self.depth_swing * self.depth_samples
        return centre - swing, centre + swing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RawVolumes:
    """A-line volumes ``(Z, Y, X)`` of a sequence, frame by frame (each frame has its own noise stream)."""

    def __init__(self, params: SimulationParams, raw: RawParams) -> None:
        self.params = params
        self.raw = raw
        self._clean = _Renderer(replace(params, shot_noise=0.0, read_noise=0.0, even_shot_noise=0.0, even_read_noise=0.0))
        rng = np.random.default_rng([params.seed, _STREAM_RAW_DEPTH])
        self._freq = rng.uniform(0.3, 0.9, size=(2, 2)) * rng.choice([-1.0, 1.0], size=(2, 2))
        self._phase = rng.uniform(0.0, 2 * np.pi, size=2)

    def depth(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Pulse depth (samples) at scene positions: two smooth waves across the field."""
        p, r = self.params, self.raw
        u, v = rows / max(p.height - 1, 1), cols / max(p.width - 1, 1)
        wave = 0.6 * np.sin(2 * np.pi * (self._freq[0, 0] * u + self._freq[0, 1] * v) + self._phase[0])
        wave += 0.4 * np.sin(2 * np.pi * (self._freq[1, 0] * u + self._freq[1, 1] * v) + self._phase[1])
        return r.depth_center * r.depth_samples + r.depth_swing * r.depth_samples * wave

    def frame(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uint16 volume ``(Z, Y, X)``, its true MAP amplitude and depth ``(Y, X)`` (float32) for frame ``t``."""
        r = self.raw
        amplitude = np.maximum(self._clean.frame(t)[0], 0.0)
        depth = self.depth(*self._clean.positions(t))
        lag = np.arange(r.depth_samples, dtype=np.float64)[:, None, None] - depth[None]
        pulse = np.exp(-0.5 * (lag / r.pulse_sigma) ** 2) * np.cos(2 * np.pi * r.carrier_mhz / r.sampling_rate_mhz * lag)
        noise = np.random.default_rng([self.params.seed, _STREAM_RAW_NOISE, t]).standard_normal(lag.shape)
        volume = r.dc_offset + r.counts * amplitude[None] * pulse + r.noise * noise
        volume = np.clip(np.rint(volume), 0, UINT16_MAX).astype(np.uint16)
        return volume, amplitude.astype(np.float32), depth.astype(np.float32)
