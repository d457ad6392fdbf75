"""Vessel-like scenes made from pictures that ship with scikit-image (crop, rotate, scale, ridge filter).

Why: a network trained only on the vessel simulator can learn that simulator's texture instead of
the bidirectional error. Ridge-filtered pictures (a retina, coins, bricks, text, a moon, ...) give
other layouts of thin bright structures on a dark background, the statistics that matter for OR-PAM
maximum-amplitude projections, with shapes the vessel simulator never draws.

scikit-image is optional (the ``train`` extra): importing this module does not need it, rendering
does. Only pictures bundled inside the scikit-image package are used, so nothing is downloaded.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.simulate.vasculature import Scene

IMAGE_PREFIX = "image:"
IMAGE_NAMES = (
    "retina", "camera", "coins", "moon", "brick", "grass", "gravel", "text", "page", "clock", "cell",
    "hubble_deep_field", "immunohistochemistry", "astronaut", "coffee", "chelsea", "rocket",
)
"""``skimage.data`` pictures stored inside the package (no network), all usable as scene sources."""
MISSING_SKIMAGE = "image scenes need scikit-image: pip install 'orpam-pipeline[train]'"


def check_image_source(source: str) -> str:
    """The picture name of a ``scene_source`` like ``"image:coins"``; anything else is an error."""
    name = source[len(IMAGE_PREFIX):] if source.startswith(IMAGE_PREFIX) else None
    if name not in IMAGE_NAMES:
        raise OrpamError(f"scene_source must be 'vessels' or 'image:<name>' with a name among "
                         f"{', '.join(IMAGE_NAMES)}; not {source!r}")  # fmt: skip
    return name


def _skimage() -> Any:
    """The scikit-image modules this scene needs, or a one-line error naming the extra."""
    try:
        import skimage.data
        import skimage.filters
    except ImportError:
        raise OrpamError(MISSING_SKIMAGE) from None
    return skimage


@lru_cache(maxsize=4)
def load_image(name: str) -> np.ndarray:
    """Bundled picture ``name`` as a read-only float64 grey image in [0, 1] (colour: channel mean)."""
    check_image_source(IMAGE_PREFIX + name)
    img = np.asarray(getattr(_skimage().data, name)(), dtype=np.float64)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=-1)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    img.setflags(write=False)
    return img


def _resample(img: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random view of ``img``: centre, rotation, zoom (0.5-2 source px per scene px) and mirror."""
    zoom = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    angle = rng.uniform(0.0, 2 * np.pi)
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    cy, cx = rng.uniform(0.25, 0.75) * img.shape[0], rng.uniform(0.25, 0.75) * img.shape[1]
    if zoom > 1.2:  # anti-alias before sampling more sparsely than the picture's pixels
        img = ndimage.gaussian_filter(img, 0.4 * zoom, mode="mirror")
    yy, xx = np.meshgrid(np.arange(shape[0]) - shape[0] / 2, np.arange(shape[1]) - shape[1] / 2, indexing="ij")
    yy, xx = yy * zoom, xx * zoom * mirror
    c, s = np.cos(angle), np.sin(angle)
    coords = [cy + c * yy - s * xx, cx + s * yy + c * xx]
    return ndimage.map_coordinates(img, coords, order=1, mode="mirror")


def vessel_map(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sparse ridge map in [0, ~1] of a grey picture: Sato tubeness, then only its brightest part kept.

    The ridge width (sigma 0.8-2 px), polarity (bright or dark ridges become vessels), the kept
    fraction of pixels (12-30 %) and a soft gamma are drawn from ``rng``.
    """
    sigma = rng.uniform(0.8, 2.0)
    dark = bool(rng.random() < 0.5)
    keep = rng.uniform(0.12, 0.30)
    soft = rng.uniform(0.6, 1.0)
    ridges = _skimage().filters.sato(picture, sigmas=(sigma, 1.7 * sigma), black_ridges=dark, mode="reflect")
    low, high = np.percentile(ridges, [100 * (1 - keep), 99.7])
    if high <= low:
        return np.zeros_like(picture)
    return np.clip((ridges - low) / (high - low), 0.0, 1.2) ** soft


def render_image_scene(name: str, height: int, width: int, rng: np.random.Generator, margin: int = 16) -> Scene:
    """At-rest and pulsed scenes from picture ``name``, shaped and scaled like :func:`render_scene`.

    A faint blurred copy of the picture is the background; "pulsation" is a grey dilation of the
    ridges blended in by 20-50 %; a Gaussian PSF (0.6-1.4 px) blurs both. The at-rest scene's 99.9th
    percentile is scaled to 0.9, as for the vessel simulator.
    """
    hs, ws = height + 2 * margin, width + 2 * margin
    picture = _resample(load_image(name), (hs, ws), rng)
    vessels = vessel_map(picture, rng)
    dilated = vessels + rng.uniform(0.2, 0.5) * (ndimage.grey_dilation(vessels, size=(3, 3)) - vessels)
    background = rng.uniform(0.02, 0.08) * ndimage.gaussian_filter(picture, 4.0, mode="mirror")
    psf = rng.uniform(0.6, 1.4)
    base, pulsed = (ndimage.gaussian_filter(background + v, psf, mode="nearest") for v in (vessels, dilated))
    scale = 0.9 / max(float(np.percentile(base, 99.9)), 1e-6)
    return Scene(
        base=np.clip(base * scale, 0.0, None).astype(np.float32),
        pulsed=np.clip(pulsed * scale, 0.0, None).astype(np.float32),
        margin=margin,
    )
