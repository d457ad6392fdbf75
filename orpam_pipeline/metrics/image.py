"""Intra-frame image similarity metrics (docs/metrics.md): NCC, SSIM and PSNR, accumulated in float64.

Every metric has a single-image form (2-D arrays, returns a float) and a batched form over
``(T, Y, X)`` stacks (returns one value per frame), because the pipeline scores chunks of frames.

NaN policy: a constant image gives NCC = NaN (the coefficient is undefined; it is never reported
as 0 or 1). A data range of 0 gives SSIM = PSNR = NaN. Identical images with a positive range
give PSNR = +inf, as ``skimage.metrics.peak_signal_noise_ratio`` does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
SSIM_WIN = 2 * SSIM_RADIUS + 1


def _per_frame_range(data_range: ArrayLike, n: int) -> np.ndarray:
    """Data range broadcast to one float64 value per frame."""
    r = np.asarray(data_range, dtype=np.float64)
    if r.ndim == 0:
        return np.full(n, float(r))
    r = r.reshape(-1)
    if r.size != n:
        raise ValueError(f"data_range has {r.size} values for {n} frames")
    return r


def _stack(a: ArrayLike, name: str) -> np.ndarray:
    """A ``(T, Y, X)`` view of a 2-D image or 3-D stack, in its own dtype (converted batch by batch)."""
    arr = np.asarray(a)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{name} must be 2-D (Y, X) or 3-D (T, Y, X), got shape {arr.shape}")
    return arr


def _batch_frames(shape: tuple[int, ...]) -> int:
    """Frames per batch so that one float64 copy of a batch holds about ``SSIM_BATCH_VALUES`` values."""
    return max(1, SSIM_BATCH_VALUES // max(1, int(np.prod(shape[1:]))))


def ncc_frames(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Pearson NCC of each frame pair of two ``(T, Y, X)`` stacks; NaN where a frame is constant.

    Constancy is tested exactly (max == min) rather than through a near-zero variance, because a
    float64 mean of a constant frame is not always exact and would otherwise yield noise. Frames are
    converted to float64 and scored a cache-sized batch at a time (every step is per frame, so the
    numbers do not depend on the batching).
    """
    sa, sb = _stack(a, "a"), _stack(b, "b")
    if sa.shape != sb.shape:
        raise ValueError(f"shape mismatch: {sa.shape} vs {sb.shape}")
    t = sa.shape[0]
    out = np.empty(t, dtype=np.float64)
    for i, j in _row_batches(t, _batch_frames(sa.shape)):
        out[i:j] = _ncc_rows(sa[i:j], sb[i:j])
    return out


def _float64_batches(sa: np.ndarray, sb: np.ndarray) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """``(start, stop, a, b)`` for cache-sized batches of frames of two stacks, converted to float64."""
    t, step = sa.shape[0], _batch_frames(sa.shape)
    for i in range(0, t, step):
        j = min(i + step, t)
        yield i, j, np.asarray(sa[i:j], dtype=np.float64), np.asarray(sb[i:j], dtype=np.float64)


def _row_batches(t: int, step: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of batches of at least two frames (one only when ``t`` is 1).

    numpy's einsum reduces a single row along another path than several rows (the last bits differ),
    so a batch never holds a lone frame that the whole stack would have scored among others.
    """
    step = max(2, step)
    bounds = [(i, min(i + step, t)) for i in range(0, t, step)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], t)]
    return bounds


def _ncc_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`ncc_frames` of one batch."""
    t = a.shape[0]
    fa = np.asarray(a, dtype=np.float64).reshape(t, -1)
    fb = np.asarray(b, dtype=np.float64).reshape(t, -1)
    if fa.shape[1] == 0:
        return np.full(t, np.nan)
    constant = (np.ptp(fa, axis=1) == 0) | (np.ptp(fb, axis=1) == 0)
    da = fa - fa.mean(axis=1, keepdims=True)
    db = fb - fb.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", da, db)
    den = np.sqrt(np.einsum("ij,ij->i", da, da) * np.einsum("ij,ij->i", db, db))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[constant] = np.nan
    return np.clip(out, -1.0, 1.0)


def ncc(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson NCC of two 2-D images; NaN when either is constant."""
    return float(ncc_frames(_single(a, "a"), _single(b, "b"))[0])


def psnr_frames(a: ArrayLike, b: ArrayLike, data_range: ArrayLike) -> np.ndarray:
    """PSNR ``10·log10(range² / MSE)`` per frame; ``data_range`` is a scalar or one value per frame."""
    sa, sb = _stack(a, "a"), _stack(b, "b")
    if sa.shape != sb.shape:
        raise ValueError(f"shape mismatch: {sa.shape} vs {sb.shape}")
    t = sa.shape[0]
    r = _per_frame_range(data_range, t)
    mse = np.empty(t, dtype=np.float64)
    for i, j, fa, fb in _float64_batches(sa, sb):
        mse[i:j] = np.mean((fa - fb).reshape(fa.shape[0], -1) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(r**2 / mse)
    out[~(r > 0)] = np.nan
    return out


def psnr(a: ArrayLike, b: ArrayLike, data_range: float) -> float:
    """PSNR of two 2-D images for the given data range; NaN when the range is not positive."""
    return float(psnr_frames(_single(a, "a"), _single(b, "b"), data_range)[0])


def _smooth(stack: np.ndarray) -> np.ndarray:
    """Gaussian filter of each frame (σ 1.5, radius 5, reflect), frames kept apart."""
    return ndimage.gaussian_filter(
        stack, sigma=(0.0, SSIM_SIGMA, SSIM_SIGMA), mode="reflect", truncate=SSIM_TRUNCATE
    )


SSIM_BATCH_VALUES = 1 << 15
"""Pixels per batch of frames in :func:`ssim_frames`: its dozen float64 temporaries then stay in the CPU
cache, about 3x faster than one pass over a whole chunk, and bit for bit the same (every operation
is per pixel or per frame)."""


def ssim_frames(a: ArrayLike, b: ArrayLike, data_range: ArrayLike) -> np.ndarray:
    """Mean SSIM (Wang et al. 2004) per frame, matching skimage's Gaussian-weighted form.

    Same as ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=r)``: reflect-mode filtering and a 5-pixel border
    cropped before averaging. Frames smaller than 11×11 are refused as skimage refuses them.
    """
    sa, sb = _stack(a, "a"), _stack(b, "b")
    if sa.shape != sb.shape:
        raise ValueError(f"shape mismatch: {sa.shape} vs {sb.shape}")
    t, h, w = sa.shape
    if h < SSIM_WIN or w < SSIM_WIN:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WIN}x{SSIM_WIN}, got {h}x{w}")
    r = _per_frame_range(data_range, t)
    out = np.empty(t, dtype=np.float64)
    for i, j, fa, fb in _float64_batches(sa, sb):
        out[i:j] = _ssim_batch(fa, fb, r[i:j, None, None])
    out[~(r > 0)] = np.nan
    return out


def _ssim_batch(sa: np.ndarray, sb: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Mean SSIM of each frame of a small batch (float64 stacks, ``r`` shaped ``(t, 1, 1)``)."""
    t, h, w = sa.shape
    c1 = (SSIM_K1 * r) ** 2
    c2 = (SSIM_K2 * r) ** 2
    ux, uy = _smooth(sa), _smooth(sb)
    vx = _smooth(sa * sa) - ux * ux
    vy = _smooth(sb * sb) - uy * uy
    vxy = _smooth(sa * sb) - ux * uy
    with np.errstate(divide="ignore", invalid="ignore"):
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    p = SSIM_RADIUS
    return s[:, p : h - p, p : w - p].reshape(t, -1).mean(axis=1, dtype=np.float64)


def ssim(a: ArrayLike, b: ArrayLike, data_range: float) -> float:
    """Mean SSIM of two 2-D images for the given data range; NaN when the range is not positive."""
    return float(ssim_frames(_single(a, "a"), _single(b, "b"), data_range)[0])


def _single(a: ArrayLike, name: str) -> np.ndarray:
    """A 2-D image, refusing stacks so that scalar functions never silently take frame 0."""
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D image, got shape {arr.shape}")
    return arr


def intra_frame_metrics(registered_even: ArrayLike, odd: ArrayLike) -> dict[str, np.ndarray]:
    """NCC, SSIM and PSNR of (registered) even lines against odd lines, one value per frame.

    Inputs are ``(T, Y, X//2)`` and ``(T, Y, ceil(X/2))`` (or single 2-D frames). Only lines with a
    partner are compared: the wider of the two is trimmed (the odd image, or with
    ``first_line="backward"`` and an odd width the last backward line), and the data range of each
    frame is max − min of that trimmed odd image. A constant odd frame has no range and no defined correlation: all three are NaN. SSIM is
    NaN for images smaller than its 11x11 window (it is undefined there, as in scikit-image).
    """
    even = _stack(registered_even, "registered_even")
    fixed = _stack(odd, "odd")
    if even.shape[:2] != fixed.shape[:2] or abs(fixed.shape[2] - even.shape[2]) > 1:
        raise ValueError(f"cannot compare even {even.shape} with odd {fixed.shape}")
    width = min(even.shape[2], fixed.shape[2])
    even, fixed = even[..., :width], fixed[..., :width]
    t = fixed.shape[0]
    flat = fixed.reshape(t, -1)
    rng = (flat.max(axis=1).astype(np.float64) - flat.min(axis=1).astype(np.float64)) if flat.shape[1] else np.zeros(t)
    small = min(fixed.shape[1:]) < SSIM_WIN
    return {
        "ncc": ncc_frames(even, fixed),
        "ssim": np.full(t, np.nan) if small else ssim_frames(even, fixed, rng),
        "psnr": psnr_frames(even, fixed, rng),
    }
