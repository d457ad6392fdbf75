"""Static synthetic scene that looks like an OR-PAM maximum-amplitude projection of brain vessels.

The scene is a branching tree of tortuous vessels (Murray's law for calibres and branching angles),
a dim capillary bed and a smooth background, blurred by a Gaussian point-spread function. It is
rendered twice from the same centrelines: once at rest and once with dilated ("pulsed") vessels, so
a frame can blend the two to mimic pulsation. Rendering is vectorised with distance transforms, which
keeps a 256x256 scene well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

_STEP = 0.5
_TIER_EDGES = (1.0, 1.6, 2.5, 4.0)


@dataclass(frozen=True)
class SceneParams:
    """Appearance of the static scene; lengths are in pixels of the output frame.

    n_roots: vessel trees entering the field of view per 256x256 pixels of scene area.
    root_radius: radius of the thickest root vessel (roots get 60-100 % of it).
    min_radius: branches thinner than this are not grown (capillary calibre).
    segment_length: length between bifurcations, in vessel radii (randomised +-50 %).
    tortuosity: curvature noise of the centrelines; thin vessels curve more.
    capillary_level: brightness of the capillary bed.
    capillary_scale: spatial scale (px) of the capillary network meshes.
    capillary_width: ridge width of the capillary network, as a fraction of the noise std.
    background_level: amplitude of the smooth low-frequency background.
    psf_sigma: Gaussian PSF standard deviation (px).
    pulse_dilation: fractional radius increase of the most pulsatile vessels in the pulsed scene.
    supersample: rendering oversampling factor (anti-aliasing of thin vessels).
    max_segments: cap on vessel segments per 256x256 pixels of scene area.
    """

    n_roots: float = 5.0
    root_radius: float = 5.5
    min_radius: float = 0.7
    segment_length: float = 9.0
    tortuosity: float = 1.0
    capillary_level: float = 0.2
    capillary_scale: float = 3.0
    capillary_width: float = 0.18
    background_level: float = 0.05
    psf_sigma: float = 1.0
    pulse_dilation: float = 0.12
    supersample: int = 2
    max_segments: int = 1500


@dataclass(frozen=True)
class Scene:
    """A rendered scene: ``base`` (at rest) and ``pulsed`` (dilated vessels), both ``(H+2m, W+2m)``.

    Frame pixel ``(y, x)`` corresponds to scene pixel ``(y + margin, x + margin)``.
    """

    base: np.ndarray
    pulsed: np.ndarray
    margin: int


@dataclass
class _Centrelines:
    """Sample points of all vessel centrelines (scene pixel coordinates)."""

    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray
    amplitude: np.ndarray
    pulsatility: np.ndarray


def _segment(
    rng: np.random.Generator, x0: float, y0: float, heading: float, radius: float,
    length: float, tortuosity: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Smoothly curving centreline: heading driven by AR(1) (smooth) curvature noise."""
    from scipy import signal  # 0.7 s to import; only simulating needs it, not a report that looks for a truth

    n = max(2, int(length / _STEP))
    sigma = 0.02 * tortuosity / np.sqrt(max(radius, 0.5))
    curvature = signal.lfilter([1.0], [1.0, -0.92], rng.normal(0.0, sigma, n))
    theta = heading + np.cumsum(curvature)
    x = x0 + np.concatenate(([0.0], np.cumsum(_STEP * np.cos(theta[:-1]))))
    y = y0 + np.concatenate(([0.0], np.cumsum(_STEP * np.sin(theta[:-1]))))
    return x, y, float(theta[-1])


def _murray_angle(r: float, r_self: float, r_other: float) -> float:
    """Optimal branching angle of the child ``r_self`` from Murray's minimum-work principle."""
    c = (r**4 + r_self**4 - r_other**4) / (2.0 * r**2 * r_self**2)
    return float(np.arccos(np.clip(c, -1.0, 1.0)))


def _grow(rng: np.random.Generator, height: int, width: int, p: SceneParams) -> _Centrelines:
    """Grow vessel trees from the scene border inwards, bifurcating until capillary calibre."""
    area = height * width / 65536.0
    n_roots = max(1, int(round(p.n_roots * area)))
    budget = max(50, int(p.max_segments * area))
    pieces: list[tuple[np.ndarray, ...]] = []
    stack: list[tuple[float, float, float, float, float, float]] = []
    for k in range(n_roots):
        side = rng.integers(4)
        u = rng.uniform(0.05, 0.95)
        x0, y0 = [(u * width, 0.0), (u * width, height - 1.0), (0.0, u * height), (width - 1.0, u * height)][side]
        tx, ty = rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * height
        heading = float(np.arctan2(ty - y0, tx - x0))
        radius = p.root_radius * (1.0 if k == 0 else rng.uniform(0.6, 1.0))
        stack.append((x0, y0, heading, radius, rng.uniform(0.85, 1.0), rng.uniform(0.3, 1.0)))
    slack = 4.0
    n_done = 0
    while stack and n_done < budget:
        x0, y0, heading, r, amp, puls = stack.pop(0)
        length = max(6.0, p.segment_length * r * rng.uniform(0.5, 1.5))
        x, y, end_heading = _segment(rng, x0, y0, heading, r, length, p.tortuosity)
        outside = (x < -slack) | (x > width - 1 + slack) | (y < -slack) | (y > height - 1 + slack)
        left = bool(outside[1:].any())
        if left:
            stop = int(np.argmax(outside[1:])) + 1
            x, y = x[:stop], y[:stop]
        n = x.size
        pieces.append((x, y, np.full(n, r), np.full(n, amp), np.full(n, puls)))
        n_done += 1
        if left:
            continue
        f = rng.uniform(0.15, 0.5)
        r_big, r_small = r * (1.0 - f) ** (1.0 / 3.0), r * f ** (1.0 / 3.0)
        side = rng.choice([-1.0, 1.0])
        for rc, sgn in ((r_big, side), (r_small, -side)):
            if rc < p.min_radius:
                continue
            other = r_small if rc == r_big else r_big
            angle = end_heading + sgn * (_murray_angle(r, rc, other) + rng.normal(0.0, 0.15))
            amp_c = float(np.clip(amp * rng.uniform(0.9, 1.05), 0.5, 1.0))
            stack.append((float(x[-1]), float(y[-1]), angle, rc, amp_c, puls))
    cols = [np.concatenate(c) for c in zip(*pieces)]
    return _Centrelines(*cols)


def _render_vessels(
    lines: _Centrelines, height: int, width: int, p: SceneParams
) -> tuple[np.ndarray, np.ndarray]:
    """Vessel intensity at rest and dilated, by radius tier so thin vessels never notch thick ones."""
    s = int(p.supersample)
    hs, ws = height * s, width * s
    iy = np.round((lines.y + 0.5) * s - 0.5).astype(np.int64)
    ix = np.round((lines.x + 0.5) * s - 0.5).astype(np.int64)
    inside = (iy >= 0) & (iy < hs) & (ix >= 0) & (ix < ws)
    iy, ix = iy[inside], ix[inside]
    radius, amp, puls = lines.radius[inside], lines.amplitude[inside], lines.pulsatility[inside]
    # Brightness grows with calibre: capillaries are dimmer than arteries and veins.
    amp = amp * (0.45 + 0.55 * np.clip(radius / 4.0, 0.0, 1.0))
    dilated = radius * (1.0 + p.pulse_dilation * puls)
    tier = np.digitize(radius, _TIER_EDGES)
    base = np.zeros((hs, ws))
    pulsed = np.zeros((hs, ws))
    for t in np.unique(tier):
        sel = np.flatnonzero(tier == t)
        sel = sel[np.argsort(radius[sel], kind="stable")]
        flat = iy[sel] * ws + ix[sel]
        lut = np.full(hs * ws, -1, dtype=np.int64)
        lut[flat] = sel
        lut = lut.reshape(hs, ws)
        dist, (ny, nx) = ndimage.distance_transform_edt(lut < 0, sampling=1.0 / s, return_indices=True)
        nearest = lut[ny, nx]
        for out, rad in ((base, radius), (pulsed, dilated)):
            u = dist / rad[nearest]
            prof = np.clip(1.0 - u * u, 0.0, None) ** 0.35
            np.maximum(out, amp[nearest] * prof, out=out)
    shape = (height, s, width, s)
    return base.reshape(shape).mean(axis=(1, 3)), pulsed.reshape(shape).mean(axis=(1, 3))


def _unit_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise scaled to unit standard deviation."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return n / (n.std() + 1e-12)


def _capillary_bed(rng: np.random.Generator, shape: tuple[int, int], p: SceneParams) -> np.ndarray:
    """Thin dense network: ridges along the zero crossings of band-passed noise."""
    white = rng.standard_normal(shape)
    band = ndimage.gaussian_filter(white, p.capillary_scale, mode="wrap") - ndimage.gaussian_filter(
        white, 2.0 * p.capillary_scale, mode="wrap"
    )
    band /= band.std() + 1e-12
    ridges = np.exp(-((band / p.capillary_width) ** 2))
    density = 0.6 + 0.4 * np.tanh(_unit_noise(rng, shape, 6.0 * p.capillary_scale))
    return p.capillary_level * ridges * density


def render_scene(
    height: int, width: int, rng: np.random.Generator, params: SceneParams | None = None,
    margin: int = 16,
) -> Scene:
    """Render the at-rest and pulsed scenes for a ``height x width`` frame plus ``margin`` on each side.

    Values lie roughly in [0, 1]: the at-rest scene's 99.9th percentile is scaled to 0.9 and the
    pulsed scene gets the same scale, so pulsation changes brightness only where vessels widen.
    """
    p = params or SceneParams()
    if height < 2 or width < 2 or margin < 0:
        raise ValueError(f"invalid scene size {height}x{width} with margin {margin}")
    hs, ws = height + 2 * margin, width + 2 * margin
    lines = _grow(rng, hs, ws, p)
    vessels, vessels_pulsed = _render_vessels(lines, hs, ws, p)
    capillaries = _capillary_bed(rng, (hs, ws), p)
    background = p.background_level * (0.5 + 0.5 * np.tanh(_unit_noise(rng, (hs, ws), max(hs, ws) / 6.0)))
    out = []
    for v in (vessels, vessels_pulsed):
        img = background + np.maximum(capillaries, v)
        out.append(ndimage.gaussian_filter(img, p.psf_sigma, mode="nearest") if p.psf_sigma > 0 else img)
    scale = 0.9 / max(float(np.percentile(out[0], 99.9)), 1e-6)
    base, pulsed = (np.clip(o * scale, 0.0, None).astype(np.float32) for o in out)
    return Scene(base=base, pulsed=pulsed, margin=margin)
