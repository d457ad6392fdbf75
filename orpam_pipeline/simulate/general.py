"""The general training distribution: wide displacement, appearance, noise and scene ranges per seed.

Why: learned methods trained on :meth:`SimulationParams.randomised` see 1.5-4.5 px near-linear
profiles, mild gain/gamma and one scene simulator, and learn those priors. This distribution draws,
per scan, from ``numpy.random.default_rng([seed, _STREAM_GENERAL])``:

- a profile kind (:data:`PROFILE_KINDS`): constant; linear (up to ±12 px change along the line);
  cosine (0.3-2.5 cycles on a small slope); piecewise linear (2-4 pieces); or "varying", a slope
  that changes slowly over the frames (one cycle in 1-4 times the sequence, or 16 frames at least)
  on top of a larger offset drift. Every kind has an offset, a slow offset drift, and sometimes
  (15 %) block jitter. The shape is scaled down where needed so ``|d'| <= MAX_STEEPNESS`` (the
  simulator refuses 0.5 px/px), then the whole field so its peak ``|d|`` over all frames stays
  below a limit drawn uniformly in 0.1-8 px (``MAX_DISPLACEMENT``);
- backward appearance: gain 0.4-1.8, gamma 0.6-1.6, offset ±0.15 (the benchmark spans 0.66-1.35,
  0.7-1.3 and -0.10-+0.08);
- noise: 0-4x the default shot and read noise of each line set (a quarter of the scans clean);
- scene: 60 % the vessel simulator with wider settings than ``randomised``, 40 % a ridge-filtered
  picture bundled with scikit-image (:mod:`.images`).

Seeds: training uses :data:`TRAIN_SEEDS` only; the held-out benchmark's seeds
(``orpam_pipeline.evaluate.benchmark.BENCHMARK_SCANS``) lie outside it and are refused explicitly.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.simulate.images import IMAGE_NAMES, IMAGE_PREFIX
from orpam_pipeline.simulate.sequence import (
    SimulationParams,
    displacement_field,
    min_block_lines,
    required_margin,
    steepness,
)
from orpam_pipeline.simulate.vasculature import SceneParams

TRAIN_SEEDS = range(20000, 30000)
"""Seeds of the general training distribution (`orpam simulate --general`); nothing else uses them."""
PROFILE_KINDS = ("constant", "linear", "cosine", "piecewise", "varying")
MAX_DISPLACEMENT = 8.0
MAX_STEEPNESS = 0.4
GAIN_RANGE, GAMMA_RANGE, OFFSET_RANGE = (0.4, 1.8), (0.6, 1.6), (-0.15, 0.15)
NOISE_FACTOR_RANGE = (0.0, 4.0)
IMAGE_FRACTION = 0.4
JITTER_FRACTION = 0.15
_STREAM_GENERAL = 0x6E7
_SHAPE_FIELDS = ("disp_slope", "disp_sine_amp", "disp_wave_amp")
_LEVEL_FIELDS = ("disp_offset", "disp_drift", "jitter_min", "jitter_max")


def benchmark_seeds() -> frozenset[int]:
    """Seeds of the held-out benchmark scans (read from the benchmark itself, not copied)."""
    from orpam_pipeline.evaluate.benchmark import BENCHMARK_SCANS

    return frozenset(scan.seed for scan in BENCHMARK_SCANS)


def check_training_seed(seed: int) -> None:
    """Refuse seeds outside :data:`TRAIN_SEEDS` and, whatever the range says, the benchmark's seeds."""
    if seed in benchmark_seeds():
        raise OrpamError(f"seed {seed} belongs to the held-out benchmark and is never used for training")
    if seed not in TRAIN_SEEDS:
        raise OrpamError(f"general training seeds lie in {TRAIN_SEEDS.start}-{TRAIN_SEEDS.stop - 1}, not {seed}")


def _scene_params(u: Any) -> SceneParams:
    """Vessel-simulator settings wider than ``randomised``: few large to many thin vessels."""
    return SceneParams(
        n_roots=u(2.0, 10.0), root_radius=u(2.5, 10.0), segment_length=u(6.0, 14.0), tortuosity=u(0.4, 2.0),
        capillary_level=u(0.03, 0.4), capillary_scale=u(2.0, 4.5), capillary_width=u(0.1, 0.3),
        background_level=u(0.0, 0.12), psf_sigma=u(0.5, 2.2), pulse_dilation=u(0.0, 0.2),
    )  # fmt: skip


def _knots(rng: np.random.Generator) -> tuple[tuple[float, float], ...]:
    """2-4 linear pieces: interior breakpoints at least 0.1 apart, knot values a ±8 px random walk."""
    pieces = int(rng.integers(2, 5))
    while True:
        inner = np.sort(rng.uniform(0.1, 0.9, pieces - 1))
        if np.diff(np.concatenate([[0.0], inner, [1.0]])).min() >= 0.1:
            break
    values = np.cumsum(rng.uniform(-8.0, 8.0, pieces + 1))
    values -= values.mean()
    return tuple(zip(np.concatenate([[0.0], inner, [1.0]]).tolist(), values.tolist()))


def _profile_fields(kind: str, rng: np.random.Generator, frames: int) -> dict[str, Any]:
    """Displacement fields of one profile kind, before scaling to the limits."""
    u = rng.uniform
    zero = {"disp_slope": 0.0, "disp_sine_amp": 0.0}
    if kind == "constant":
        return {**zero, "disp_offset": u(-8.0, 8.0), "disp_drift": u(0.0, 0.5)}
    if kind == "linear":
        return {**zero, "disp_offset": u(-6.0, 6.0), "disp_slope": u(-12.0, 12.0), "disp_drift": u(0.0, 0.8)}
    if kind == "cosine":
        return {"disp_offset": u(-5.0, 5.0), "disp_slope": u(-3.0, 3.0), "disp_sine_amp": u(0.5, 4.0),
                "disp_sine_cycles": u(0.3, 2.5), "disp_sine_phase": u(0.0, 2 * np.pi), "disp_drift": u(0.0, 0.8)}
    if kind == "piecewise":
        return {**zero, "disp_offset": u(-3.0, 3.0), "disp_knots": _knots(rng), "disp_drift": u(0.0, 0.8)}
    if kind == "varying":
        return {**zero, "disp_offset": u(-4.0, 4.0), "disp_slope": u(-6.0, 6.0), "disp_wave_amp": u(2.0, 10.0),
                "disp_wave_period": u(1.0, 4.0) * max(frames, 16), "disp_wave_phase": u(0.0, 2 * np.pi),
                "disp_drift": u(0.5, 2.5)}  # fmt: skip
    raise OrpamError(f"profile kind must be one of {', '.join(PROFILE_KINDS)}, not {kind!r}")


def _scaled(p: SimulationParams, factor: float, names: tuple[str, ...]) -> SimulationParams:
    """``p`` with the displacement components ``names`` (and knots) multiplied by ``factor``."""
    values = {n: getattr(p, n) * factor for n in names}
    values["disp_knots"] = tuple((k, d * factor) for k, d in p.disp_knots)
    return replace(p, **values)


def _within_limits(p: SimulationParams, limit: float = MAX_DISPLACEMENT) -> SimulationParams:
    """Shrink the shape until ``|d'| <= MAX_STEEPNESS``, then everything until ``|d| <= limit``.

    Every component is linear in its amplitude (the drift walk and jitter offsets too, for a fixed
    seed), so scaling them scales the field exactly. The margin is set to what the motion needs.
    """
    steep = steepness(p)
    if steep > MAX_STEEPNESS:
        p = _scaled(p, MAX_STEEPNESS / steep, _SHAPE_FIELDS)
    peak = float(np.abs(displacement_field(p)).max())
    limit = min(limit, MAX_DISPLACEMENT - 1e-3)
    if peak > limit:
        p = _scaled(p, limit / peak, _SHAPE_FIELDS + _LEVEL_FIELDS)
    return replace(p, margin=max(16, int(np.ceil(required_margin(p))) + 1))


def _noise(rng: np.random.Generator) -> dict[str, float]:
    """Shot and read noise of both line sets, 0-4x the defaults (a quarter of the scans noiseless)."""
    base = SimulationParams()
    names = ("shot_noise", "read_noise", "even_shot_noise", "even_read_noise")
    if rng.random() < 0.25:
        return {n: 0.0 for n in names}
    level = rng.uniform(*NOISE_FACTOR_RANGE)
    return {n: float(getattr(base, n) * level * rng.uniform(0.7, 1.3)) for n in names}


def _jitter(rng: np.random.Generator, width: int) -> dict[str, Any]:
    """Block jitter for some scans: 2-6 blocks, jumps of 0.5-3 px (then scaled with the rest)."""
    n_even = width // 2
    blocks_max = max((b for b in range(2, 7) if b * min_block_lines(n_even, b) <= n_even), default=0)
    if rng.random() >= JITTER_FRACTION or blocks_max < 2:
        return {}
    low = rng.uniform(0.5, 1.5)
    return {"jitter_blocks": int(rng.integers(2, blocks_max + 1)), "jitter_min": low, "jitter_max": low + rng.uniform(0.5, 1.5)}


def general_kind(seed: int) -> str:
    """The profile kind :func:`general_params` draws for ``seed`` (its first draw)."""
    return PROFILE_KINDS[int(np.random.default_rng([seed, _STREAM_GENERAL]).integers(len(PROFILE_KINDS)))]


def general_params(
    seed: int, frames: int = 64, height: int = 256, width: int = 256, kind: str | None = None,
    image: str | None = None, **overrides: Any,
) -> SimulationParams:
    """Draw one scan of the general training distribution from ``seed`` (must lie in :data:`TRAIN_SEEDS`).

    ``kind`` forces a profile kind and ``image`` a scene source (``"vessels"`` or a picture name);
    ``overrides`` replace drawn fields before the limits are applied.
    """
    check_training_seed(seed)
    rng = np.random.default_rng([seed, _STREAM_GENERAL])
    drawn_kind = PROFILE_KINDS[int(rng.integers(len(PROFILE_KINDS)))]
    kind = kind or drawn_kind
    u = rng.uniform
    scene = _scene_params(u)
    source = f"{IMAGE_PREFIX}{IMAGE_NAMES[int(rng.integers(len(IMAGE_NAMES)))]}" if rng.random() < IMAGE_FRACTION else "vessels"
    if image is not None:
        source = image if image == "vessels" else f"{IMAGE_PREFIX}{image}"
    values: dict[str, Any] = dict(
        frames=frames, height=height, width=width, seed=seed, scene=scene, scene_source=source,
        drift_px=u(0.0, 0.6), pulse_period=u(5.0, 30.0), pulse_phase=u(0.0, 2 * np.pi),
        pulse_strength=u(0.0, 1.0), flicker=u(0.0, 0.05),
        gain=u(*GAIN_RANGE), gamma=u(*GAMMA_RANGE), offset=u(*OFFSET_RANGE),
    )  # fmt: skip
    values.update(_noise(rng))
    values.update(_jitter(rng, width))
    limit = u(0.1, MAX_DISPLACEMENT)  # spreads the peak |d| over 0-8 px instead of piling it at 8
    values.update(_profile_fields(kind, rng, frames))
    values.update(overrides)
    return _within_limits(SimulationParams(**values), limit)
