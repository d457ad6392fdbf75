"""Synthetic bidirectional OR-PAM sequences with ground truth, streamed block by block.

Displacement convention (everything downstream relies on it): ``displacement[t, y]`` (pixels along
the fast axis Y) is the correction to apply to the backward lines,

    registered_even[t, y, j] = even[t, y + displacement[t, y], j],

so a measured backward column at row ``r`` shows the scene at the physical row ``s(r)``, the inverse
of ``y -> y + d(y)``. Forward columns (``0::2``) sample the scene at their nominal rows.

With block jitter (``jitter_blocks``) every frame's backward lines fall into blocks that carry an
extra constant shift each (motor jitter); the truth is then a field ``displacement[t, y, j]``
(``j``: backward column) and the convention reads ``even[t, y + displacement[t, y, j], j]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from orpam_pipeline.fieldnames import unknown_keys
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.io.hashing import sha256_file
from orpam_pipeline.store.layout import remove_tree
from orpam_pipeline.simulate.vasculature import Scene, SceneParams, render_scene

DISPLACEMENT_CONVENTION = "registered_even[t, y] = even[t, y + displacement[t, y]]"
FIELD_CONVENTION = "registered_even[t, y, j] = even[t, y + displacement[t, y, j], j]"
"""The truth's convention when block jitter makes the displacement a field (one column per backward line)."""

_STREAM_RANDOMISE, _STREAM_SCENE, _STREAM_MOTION, _STREAM_NOISE, _STREAM_JITTER = 0, 1, 2, 3, 4
_JITTER_FIELDS = ("jitter_blocks", "jitter_min", "jitter_max")
_EXTENSION_FIELDS = ("disp_knots", "disp_wave_amp", "disp_wave_period", "disp_wave_phase", "scene_source")
"""Fields added after the first stores were pinned: left out of :meth:`SimulationParams.to_dict` at their defaults."""
VESSEL_SCENE = "vessels"


@dataclass(frozen=True)
class SimulationParams:
    """Everything that defines a simulated sequence; the same params always give the same bytes.

    Shape and randomness: ``frames``, ``height`` (Y, fast axis), ``width`` (X), ``seed``, ``margin``
    (scene pixels rendered beyond the frame on every side, so motion never samples outside).

    Scene motion: ``drift_px`` peak sub-pixel drift of the scene (smooth 2-D random walk, px);
    ``pulse_period`` (frames), ``pulse_phase`` (rad), ``pulse_strength`` (0..1 blend towards the
    pulsed scene at the peak); ``flicker`` std of the per-frame global intensity factor.

    Bidirectional displacement ``d(t, y)`` with ``u = y / (height - 1)``:
    ``disp_offset + disp_slope * (u - 0.5) + disp_sine_amp * sin(2 pi disp_sine_cycles u + disp_sine_phase)``
    plus a slow random walk over frames whose peak magnitude is ``disp_drift`` px. Optional extensions
    (off at their defaults, so older parameters give the same bytes): ``disp_knots``, ``(u, px)``
    points of an added piecewise-linear profile (``u`` strictly increasing in [0, 1], constant
    beyond the ends), and a slowly time-varying slope ``disp_wave_amp * sin(2 pi t / disp_wave_period
    + disp_wave_phase) * (u - 0.5)`` (``t`` in frames).

    Scene content: ``scene_source`` is ``"vessels"`` (the vessel simulator, tuned by ``scene``) or
    ``"image:<name>"``, a ridge-filtered bundled scikit-image picture (:mod:`.images`).

    Backward appearance: ``gain * (signal) ** gamma + offset``; noise is shot noise
    ``shot * sqrt(signal)`` plus Gaussian read noise, separately for forward and backward lines.

    Block jitter (off when ``jitter_blocks`` is 0): every frame's backward lines are cut into
    ``jitter_blocks`` blocks of random lengths (each at least :func:`min_block_lines` lines), and
    each block's displacement gets a constant offset; neighbouring blocks' offsets differ by
    ``jitter_min`` to ``jitter_max`` px and every offset stays within ``±jitter_max``. Drawn per frame
    from ``seed``; the truth displacement becomes a ``(T, Y, X // 2)`` field.
    """

    frames: int = 64
    height: int = 256
    width: int = 256
    seed: int = 0
    margin: int = 16
    scene: SceneParams = field(default_factory=SceneParams)
    drift_px: float = 0.3
    pulse_period: float = 12.0
    pulse_phase: float = 0.0
    pulse_strength: float = 0.8
    flicker: float = 0.02
    disp_offset: float = 3.0
    disp_slope: float = 0.8
    disp_sine_amp: float = 0.4
    disp_sine_cycles: float = 1.0
    disp_sine_phase: float = 0.0
    disp_drift: float = 0.3
    gain: float = 1.0
    offset: float = 0.0
    gamma: float = 1.0
    shot_noise: float = 0.02
    read_noise: float = 0.01
    even_shot_noise: float = 0.03
    even_read_noise: float = 0.015
    jitter_blocks: int = 0
    jitter_min: float = 4.0
    jitter_max: float = 0.0
    disp_knots: tuple[tuple[float, float], ...] = ()
    disp_wave_amp: float = 0.0
    disp_wave_period: float = 64.0
    disp_wave_phase: float = 0.0
    scene_source: str = VESSEL_SCENE

    def __post_init__(self) -> None:
        if self.frames < 1 or self.height < 8 or self.width < 2:
            raise OrpamError(
                f"simulation needs frames >= 1, height >= 8, width >= 2 (got {self.frames}x{self.height}x{self.width})"
            )
        if self.margin < 4:
            raise OrpamError(f"simulation margin must be at least 4 px, not {self.margin}")
        if self.pulse_period <= 0:
            raise OrpamError(f"pulse_period must be positive, not {self.pulse_period}")
        if self.jitter_blocks:
            self._check_jitter()
        if self.disp_wave_period <= 0:
            raise OrpamError(f"disp_wave_period must be positive, not {self.disp_wave_period}")
        knots = tuple((float(u), float(d)) for u, d in self.disp_knots)
        object.__setattr__(self, "disp_knots", knots)  # JSON gives lists; keep params hashable and comparable
        if knots and (len(knots) < 2 or knots[0][0] < 0 or knots[-1][0] > 1
                      or any(b[0] <= a[0] for a, b in zip(knots, knots[1:]))):
            raise OrpamError(f"disp_knots needs at least 2 (u, px) points with u increasing in [0, 1], not {knots}")
        if self.scene_source != VESSEL_SCENE:
            from orpam_pipeline.simulate.images import check_image_source

            check_image_source(self.scene_source)

    def _check_jitter(self) -> None:
        n_even = self.width // 2
        if self.jitter_blocks < 0 or self.jitter_blocks * min_block_lines(n_even, self.jitter_blocks) > n_even:
            raise OrpamError(f"jitter_blocks must be between 0 and {n_even // 3} for width {self.width}, "
                             f"not {self.jitter_blocks}")  # fmt: skip
        if not 0 < self.jitter_min <= self.jitter_max:
            raise OrpamError(f"jitter needs 0 < jitter_min <= jitter_max (got {self.jitter_min}, {self.jitter_max})")

    @property
    def jittered(self) -> bool:
        """Whether block jitter is on (the truth displacement is then a field)."""
        return self.jitter_blocks > 0

    @classmethod
    def randomised(
        cls, seed: int, frames: int = 64, height: int = 256, width: int = 256, **overrides: Any
    ) -> SimulationParams:
        """Draw scene, appearance, displacement and noise settings from ``seed``; ``overrides`` win."""
        rng = np.random.default_rng([seed, _STREAM_RANDOMISE])
        u = rng.uniform
        scene = SceneParams(
            n_roots=u(3.5, 6.5),
            root_radius=u(3.5, 6.5),
            segment_length=u(7.0, 12.0),
            tortuosity=u(0.5, 1.6),
            capillary_level=u(0.1, 0.25),
            capillary_scale=u(2.2, 4.0),
            capillary_width=u(0.12, 0.25),
            background_level=u(0.02, 0.08),
            psf_sigma=u(0.7, 1.3),
            pulse_dilation=u(0.05, 0.15),
        )
        values: dict[str, Any] = dict(
            frames=frames, height=height, width=width, seed=seed, scene=scene,
            drift_px=u(0.1, 0.5),
            pulse_period=u(6.0, 20.0),
            pulse_phase=u(0.0, 2 * np.pi),
            pulse_strength=u(0.4, 1.0),
            flicker=u(0.01, 0.04),
            disp_offset=float(rng.choice([-1.0, 1.0]) * u(1.5, 4.0)),
            disp_slope=u(-1.0, 1.0),
            disp_sine_amp=u(0.0, 0.5),
            disp_sine_cycles=u(0.5, 1.5),
            disp_sine_phase=u(0.0, 2 * np.pi),
            disp_drift=u(0.2, 0.5),
            gain=u(0.6, 1.4),
            offset=u(-0.1, 0.1),
            gamma=u(0.8, 1.25),
            shot_noise=u(0.01, 0.04),
            read_noise=u(0.005, 0.02),
            even_shot_noise=u(0.01, 0.05),
            even_read_noise=u(0.005, 0.03),
        )
        values.update(overrides)
        if values.get("jitter_blocks") and "margin" not in overrides:
            values["margin"] = max(16, int(np.ceil(float(values.get("jitter_max", 0.0)))) + 12)
        return cls(**values)

    def without_noise(self) -> SimulationParams:
        """Same sequence without any noise."""
        return replace(self, shot_noise=0.0, read_noise=0.0, even_shot_noise=0.0, even_read_noise=0.0)

    def ideal(self) -> SimulationParams:
        """No noise, no flicker and no backward appearance change: only the displacement remains."""
        return replace(self.without_noise(), flicker=0.0, gain=1.0, offset=0.0, gamma=1.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (scene knobs nested under ``"scene"``).

        Jitter and extension keys at their defaults are left out, so a scan without them records exactly
        the parameters it recorded before they existed (benchmark caches and truth digests stay valid).
        """
        out = json.loads(json.dumps(asdict(self)))
        optional = _JITTER_FIELDS + _EXTENSION_FIELDS
        defaults = {f.name: json.loads(json.dumps(f.default)) for f in fields(self) if f.name in optional}
        for key, default in defaults.items():
            if out[key] == default:
                del out[key]
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimulationParams:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = unknown_keys(cls, values)
        if unknown:
            raise OrpamError(f"unknown simulation parameters: {', '.join(unknown)}")
        values = dict(values)
        if isinstance(values.get("scene"), dict):
            values["scene"] = SceneParams(**values["scene"])
        return cls(**values)


def min_block_lines(n_even: int, blocks: int) -> int:
    """Fewest backward lines a jitter block may have: a third of an equal share, at least 3."""
    return max(3, n_even // (3 * max(blocks, 1)))


def jitter_offsets(params: SimulationParams, t: int) -> np.ndarray:
    """Per-backward-line jitter offset ``(X // 2,)`` (px) of frame ``t``; zeros without jitter.

    Block lengths are the minimum plus a multinomial share of the rest; the first block's offset is
    uniform in ``±jitter_max / 2`` and every jump to the next block has a uniform size in
    ``[jitter_min, jitter_max]``, with a random sign unless that sign would leave ``±jitter_max``.
    """
    n_even = params.width // 2
    if not params.jittered:
        return np.zeros(n_even)
    rng = np.random.default_rng([params.seed, _STREAM_JITTER, t])
    blocks = params.jitter_blocks
    low = min_block_lines(n_even, blocks)
    lengths = low + rng.multinomial(n_even - blocks * low, np.full(blocks, 1.0 / blocks))
    offsets = np.empty(blocks)
    offsets[0] = rng.uniform(-0.5, 0.5) * params.jitter_max
    for b in range(1, blocks):
        jump = rng.uniform(params.jitter_min, params.jitter_max) * rng.choice([-1.0, 1.0])
        if abs(offsets[b - 1] + jump) > params.jitter_max:
            jump = -jump
        offsets[b] = offsets[b - 1] + jump
    return np.repeat(offsets, lengths)


@dataclass(frozen=True)
class Simulation:
    """A whole simulated sequence in memory: acquired ``frames`` and the ground truth.

    ``displacement`` is ``(T, Y)``, or ``(T, Y, X // 2)`` when the parameters ask for block jitter.
    """

    params: SimulationParams
    frames: np.ndarray
    scene: np.ndarray
    displacement: np.ndarray

    @property
    def even_true(self) -> np.ndarray:
        """Backward columns as they would be without the bidirectional error (forward appearance)."""
        return self.scene[..., 1::2]


@dataclass(frozen=True)
class SimulationPaths:
    """Where :func:`write_simulation` put the scan and its ground truth."""

    scan: Path
    truth: Path


@dataclass(frozen=True)
class _Trajectories:
    """Per-frame scalar trajectories of a sequence (all shape ``(T, ...)``)."""

    drift: np.ndarray
    pulse: np.ndarray
    flicker: np.ndarray
    disp_drift: np.ndarray
    disp_wave: np.ndarray


def _smooth_walk(rng: np.random.Generator, n: int, peak: float, dims: int = 1) -> np.ndarray:
    """Smooth random walk starting at 0 whose largest magnitude is ``peak``; shape ``(n, dims)``."""
    steps = rng.standard_normal((n, dims))
    if n < 2 or peak == 0:
        return np.zeros((n, dims))
    walk = ndimage.gaussian_filter1d(np.cumsum(steps, axis=0), sigma=max(1.0, n / 20.0), axis=0, mode="nearest")
    walk -= walk[0]
    top = np.abs(walk).max()
    return walk * (peak / top) if top > 0 else walk


def trajectories(params: SimulationParams) -> _Trajectories:
    """Drift, pulsation weight, flicker, displacement drift and slope wave for every frame."""
    rng = np.random.default_rng([params.seed, _STREAM_MOTION])
    t = np.arange(params.frames)
    drift = _smooth_walk(rng, params.frames, params.drift_px, dims=2)
    pulse = params.pulse_strength * 0.5 * (1.0 - np.cos(2 * np.pi * t / params.pulse_period + params.pulse_phase))
    flicker = 1.0 + params.flicker * rng.standard_normal(params.frames)
    disp_drift = _smooth_walk(rng, params.frames, params.disp_drift)[:, 0]
    wave = params.disp_wave_amp * np.sin(2 * np.pi * t / params.disp_wave_period + params.disp_wave_phase)
    return _Trajectories(drift=drift, pulse=pulse, flicker=flicker, disp_drift=disp_drift, disp_wave=wave)


def _profile(params: SimulationParams, y: np.ndarray) -> np.ndarray:
    """Static displacement profile along the line, evaluated at (possibly fractional) rows ``y``."""
    u = y / (params.height - 1)
    d = (
        params.disp_offset
        + params.disp_slope * (u - 0.5)
        + params.disp_sine_amp * np.sin(2 * np.pi * params.disp_sine_cycles * u + params.disp_sine_phase)
    )
    if params.disp_knots:
        knot_u, knot_d = zip(*params.disp_knots)
        d = d + np.interp(u, knot_u, knot_d)
    return d


def _wave_term(params: SimulationParams, y: np.ndarray, wave: float) -> np.ndarray | float:
    """The time-varying slope's contribution at rows ``y`` for a frame whose wave value is ``wave``."""
    return wave * (y / (params.height - 1) - 0.5) if wave else 0.0


def displacement_field(params: SimulationParams) -> np.ndarray:
    """True displacement ``(T, Y)`` in pixels (``(T, Y, X // 2)`` with jitter), per the module's convention."""
    rows = np.arange(params.height, dtype=np.float64)
    base = _profile(params, rows)
    traj = trajectories(params)
    profile = base[None, :] + traj.disp_drift[:, None]
    if params.disp_wave_amp:
        profile = profile + traj.disp_wave[:, None] * (rows / (params.height - 1) - 0.5)[None, :]
    if not params.jittered:
        return profile
    jitter = np.stack([jitter_offsets(params, t) for t in range(params.frames)])
    return profile[:, :, None] + jitter[:, None, :]


def steepness(params: SimulationParams) -> float:
    """Largest ``|d'(y)|`` (px/px) over the line and over the slope wave's extremes in the sequence."""
    y = np.linspace(0.0, params.height - 1.0, 8 * params.height)
    grad = np.gradient(_profile(params, y), y)
    if not params.disp_wave_amp:
        return float(np.abs(grad).max())
    wave = trajectories(params).disp_wave
    # d' is linear in the wave value, so its largest magnitude is reached at the wave's min or max
    return float(max(np.abs(grad + w / (params.height - 1)).max() for w in (wave.min(), wave.max())))


def _check_monotone(params: SimulationParams) -> None:
    """The map y -> y + d(y) must be invertible: require |d'(y)| < 0.5 everywhere."""
    slope = steepness(params)
    if slope >= 0.5:
        raise OrpamError(f"displacement profile too steep (|d'| = {slope:.2f} px/px, must stay below 0.5)")


def _knot_peak(params: SimulationParams) -> float:
    """Largest magnitude of the piecewise-linear component (0 without knots)."""
    return max((abs(d) for _, d in params.disp_knots), default=0.0)


def _source_rows(params: SimulationParams, drift_d: float, wave: float = 0.0) -> np.ndarray:
    """Physical row ``s(r)`` seen by a backward line at row ``r``: the inverse of ``y -> y + d(y)``."""
    pad = abs(params.disp_offset) + abs(params.disp_slope) + abs(params.disp_sine_amp) + abs(drift_d) + 2.0
    if params.disp_knots or wave:
        pad += _knot_peak(params) + abs(wave)
    y = np.arange(-pad, params.height - 1 + pad + 0.125, 0.125)
    moved = y + _profile(params, y) + drift_d
    if wave:
        moved = moved + _wave_term(params, y, wave)
    return np.interp(np.arange(params.height, dtype=np.float64), moved, y)


def required_margin(params: SimulationParams, traj: _Trajectories | None = None) -> float:
    """Scene margin (px) the motion needs: a bound on the displacement, drift and spline support."""
    traj = traj or trajectories(params)
    worst_d = abs(params.disp_offset) + abs(params.disp_slope) / 2 + abs(params.disp_sine_amp)
    worst_d += params.jitter_max if params.jittered else 0.0
    if params.disp_knots or params.disp_wave_amp:
        worst_d += _knot_peak(params) + abs(params.disp_wave_amp) / 2
    return float(worst_d + np.abs(traj.disp_drift).max(initial=0.0) + np.abs(traj.drift).max(initial=0.0) + 3.0)


def _check_margin(params: SimulationParams, traj: _Trajectories) -> None:
    """Refuse parameters whose motion would sample outside the rendered scene."""
    need = required_margin(params, traj)
    if need > params.margin:
        raise OrpamError(f"simulation margin {params.margin} px is too small for this motion (needs {need:.1f} px)")


def _scene(params: SimulationParams) -> Scene:
    """The static scene of a sequence: the vessel simulator or a ridge-filtered bundled image."""
    rng = np.random.default_rng([params.seed, _STREAM_SCENE])
    if params.scene_source == VESSEL_SCENE:
        return render_scene(params.height, params.width, rng, params.scene, params.margin)
    from orpam_pipeline.simulate.images import check_image_source, render_image_scene

    name = check_image_source(params.scene_source)
    return render_image_scene(name, params.height, params.width, rng, params.margin)


class _Renderer:
    """Samples frames from spline coefficients of the scene; built once per sequence."""

    def __init__(self, params: SimulationParams) -> None:
        self.params = params
        self.traj = trajectories(params)
        _check_monotone(params)
        _check_margin(params, self.traj)
        scene = _scene(params)
        self.coef = ndimage.spline_filter(scene.base.astype(np.float64), order=3, mode="mirror")
        self.coef_delta = ndimage.spline_filter(scene.pulsed.astype(np.float64), order=3, mode="mirror") - self.coef
        h, w = params.height, params.width
        self.rows = np.arange(h, dtype=np.float64)
        self.fwd_x = np.arange(0, w, 2, dtype=np.float64)
        self.bwd_x = np.arange(1, w, 2, dtype=np.float64)
        self.all_x = np.arange(w, dtype=np.float64)
        self.profile = _profile(params, self.rows)

    def _sample(self, coef: np.ndarray, rows: np.ndarray, cols: np.ndarray, dy: float, dx: float) -> np.ndarray:
        """Scene at frame rows ``rows`` (one per output row) and columns ``cols``, shifted by the drift."""
        m = self.params.margin
        yy = np.broadcast_to((rows + (m + dy))[:, None], (rows.size, cols.size))
        xx = np.broadcast_to((cols + (m + dx))[None, :], (rows.size, cols.size))
        return ndimage.map_coordinates(coef, [yy, xx], order=3, mode="mirror", prefilter=False)

    def positions(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Scene rows and columns (frame pixels, drift included) that each pixel of frame ``t`` sees."""
        h, w = self.params.height, self.params.width
        dy, dx = self.traj.drift[t]
        rows = np.empty((h, w))
        rows[:, 0::2] = (self.rows + dy)[:, None]
        rows[:, 1::2] = (_source_rows(self.params, self.traj.disp_drift[t], self.traj.disp_wave[t]) + dy)[:, None]
        cols = np.broadcast_to(self.all_x + dx, (h, w)).copy()
        return rows, cols

    def frame(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Acquired frame, clean forward-appearance scene, and displacement profile of frame ``t``."""
        p, tr = self.params, self.traj
        coef = self.coef + tr.pulse[t] * self.coef_delta
        dy, dx = tr.drift[t]
        flick = tr.flicker[t]
        clean = self._sample(coef, self.rows, self.all_x, dy, dx) * flick
        if p.jittered:
            jitter = jitter_offsets(p, t)
            back = self._jittered_back(coef, tr.disp_drift[t], tr.disp_wave[t], jitter, dy, dx) * flick
        else:
            back = self._sample(coef, _source_rows(p, tr.disp_drift[t], tr.disp_wave[t]), self.bwd_x, dy, dx) * flick
        back = p.gain * np.maximum(back, 0.0) ** p.gamma + p.offset
        rng = np.random.default_rng([p.seed, _STREAM_NOISE, t])
        frame = np.empty_like(clean)
        frame[:, 0::2] = _noisy(rng, clean[:, 0::2], p.shot_noise, p.read_noise)
        frame[:, 1::2] = _noisy(rng, back, p.even_shot_noise, p.even_read_noise)
        profile = self.profile + tr.disp_drift[t]
        if tr.disp_wave[t]:
            profile = profile + _wave_term(p, self.rows, tr.disp_wave[t])
        if p.jittered:
            return frame, clean, profile[:, None] + jitter[None, :]
        return frame, clean, profile

    def _jittered_back(
        self, coef: np.ndarray, drift_d: float, wave: float, jitter: np.ndarray, dy: float, dx: float
    ) -> np.ndarray:
        """Backward columns when each block of lines carries its own constant offset ``jitter[j]``."""
        back = np.empty((self.rows.size, self.bwd_x.size))
        edges = np.flatnonzero(np.diff(jitter)) + 1
        for cols in np.split(np.arange(self.bwd_x.size), edges):
            rows = _source_rows(self.params, drift_d + float(jitter[cols[0]]), wave)
            back[:, cols] = self._sample(coef, rows, self.bwd_x[cols], dy, dx)
        return back


def _noisy(rng: np.random.Generator, signal: np.ndarray, shot: float, read: float) -> np.ndarray:
    """Add signal-dependent shot noise and Gaussian read noise (always drawn, so streams stay aligned)."""
    z = rng.standard_normal((2,) + signal.shape)
    return signal + shot * np.sqrt(np.maximum(signal, 0.0)) * z[0] + read * z[1]


def simulate_blocks(
    params: SimulationParams, chunk_frames: int = 32
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(t0, frames, scene, displacement)`` float32 blocks of up to ``chunk_frames`` frames.

    The result does not depend on ``chunk_frames``: each frame has its own noise stream.
    """
    if chunk_frames < 1:
        raise OrpamError(f"chunk_frames must be at least 1, not {chunk_frames}")
    r = _Renderer(params)
    h, w = params.height, params.width
    for t0 in range(0, params.frames, chunk_frames):
        n = min(chunk_frames, params.frames - t0)
        frames = np.empty((n, h, w), np.float32)
        scene = np.empty((n, h, w), np.float32)
        disp = np.empty((n, h, w // 2) if params.jittered else (n, h), np.float32)
        for k in range(n):
            frames[k], scene[k], disp[k] = r.frame(t0 + k)
        yield t0, frames, scene, disp


def simulate(params: SimulationParams) -> Simulation:
    """Whole sequence in memory (for tests and small examples)."""
    blocks = list(simulate_blocks(params, chunk_frames=max(1, params.frames)))
    _, frames, scene, disp = blocks[0]
    return Simulation(params=params, frames=frames, scene=scene, displacement=disp)


def write_simulation(
    out_dir: Path, params: SimulationParams, name: str | None = None, chunk_frames: int = 32,
    overwrite: bool = False, raw: Any = None,
) -> SimulationPaths:
    """Write ``out_dir/scans/<name>.npy`` (T, Y, X float32) and its truth ``out_dir/truth/<name>.zarr``.

    With ``raw`` (:class:`~orpam_pipeline.simulate.raw.RawParams`) the scan is instead the A-line
    volume ``(T, Z, Y, X)`` uint16 whose envelope MAP is the noiseless frames, and the truth also holds
    ``amplitude`` (that MAP) and ``depth`` (samples). Frames are streamed in blocks; both outputs are
    written under temporary names and renamed at the end (truth last), so an interrupted write never
    looks complete.
    """
    import zarr

    from orpam_pipeline import __version__

    out_dir = Path(out_dir)
    name = name or f"sim-{params.seed:04d}"
    if not name or "/" in name or name.startswith("."):
        raise OrpamError(f"invalid simulation name {name!r}")
    scan = out_dir / "scans" / f"{name}.npy"
    truth = out_dir / "truth" / f"{name}.zarr"
    existing = [p for p in (scan, truth) if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        raise OrpamError(f"{existing[0]} already exists (pass overwrite=True to replace it)")
    scan.parent.mkdir(parents=True, exist_ok=True)
    truth.parent.mkdir(parents=True, exist_ok=True)
    tag = f".tmp-{os.getpid()}"
    scan_tmp = scan.with_name(f".{scan.name}{tag}")
    truth_tmp = truth.with_name(f".{truth.name}{tag}")
    t, h, w = params.frames, params.height, params.width
    disp_shape, disp_dims = ((t, h, w // 2), ("t", "y", "x")) if params.jittered else ((t, h), ("t", "y"))
    try:
        group = zarr.open_group(truth_tmp, mode="w-", zarr_format=3)
        truth_arrays = [
            ("scene", (t, h, w), ("t", "y", "x")),
            ("even_true", (t, h, w // 2), ("t", "y", "x")),
            ("displacement", disp_shape, disp_dims),
        ]
        if raw is not None:
            truth_arrays += [("amplitude", (t, h, w), ("t", "y", "x")), ("depth", (t, h, w), ("t", "y", "x"))]
        arrays = {
            key: group.create_array(
                key, shape=shape, chunks=(chunk_frames,) + shape[1:], dtype="float32", dimension_names=dims
            )
            for key, shape, dims in truth_arrays
        }
        volumes = None
        if raw is None:
            scan_shape = [t, h, w]
            out = np.lib.format.open_memmap(scan_tmp, mode="w+", dtype=np.float32, shape=(t, h, w))
        else:
            from orpam_pipeline.simulate.raw import RawVolumes

            volumes = RawVolumes(params, raw)
            scan_shape = [t, raw.depth_samples, h, w]
            out = np.lib.format.open_memmap(scan_tmp, mode="w+", dtype=np.uint16, shape=tuple(scan_shape))
        for t0, frames, scene, disp in simulate_blocks(params, chunk_frames):
            t1 = t0 + frames.shape[0]
            if volumes is None:
                out[t0:t1] = frames
            else:
                amplitude, depth = np.empty_like(frames), np.empty_like(frames)
                for i in range(t1 - t0):
                    out[t0 + i], amplitude[i], depth[i] = volumes.frame(t0 + i)
                arrays["amplitude"][t0:t1] = amplitude
                arrays["depth"][t0:t1] = depth
            arrays["scene"][t0:t1] = scene
            arrays["even_true"][t0:t1] = scene[..., 1::2]
            arrays["displacement"][t0:t1] = disp
        out.flush()
        del out
        if volumes is not None:
            group.attrs.update({"raw": raw.to_dict(), "axes": "tzyx"})
        group.attrs.update(
            {
                "params": params.to_dict(),
                "version": __version__,
                "generator": "orpam_pipeline.simulate",
                "scan_path": f"scans/{scan.name}",
                "scan_path_base": "parent of the truth/ folder",
                "scan_sha256": sha256_file(scan_tmp),
                "scan_shape": scan_shape,
                "displacement_convention": FIELD_CONVENTION if params.jittered else DISPLACEMENT_CONVENTION,
                "scan_lines": "columns",
                "first_line": "forward",
            }
        )
        if overwrite:
            remove_tree(truth)
            remove_tree(scan)
        os.replace(scan_tmp, scan)
        os.replace(truth_tmp, truth)
    except BaseException:
        remove_tree(scan_tmp)
        remove_tree(truth_tmp)
        raise
    return SimulationPaths(scan=scan, truth=truth)
