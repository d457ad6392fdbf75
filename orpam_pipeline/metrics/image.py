"""Intra-frame image similarity metrics (docs/metrics.md): NCC and PSNR in float64, SSIM filtered in float32.

Every metric has a single-image form (2-D arrays, returns a float) and a batched form over
``(T, Y, X)`` stacks (returns one value per frame), because the pipeline scores chunks of frames.

NaN policy: a constant image gives NCC = NaN (the coefficient is undefined; it is never reported
as 0 or 1). A data range of 0 gives SSIM = PSNR = NaN. Identical images with a positive range
give PSNR = +inf, as ``skimage.metrics.peak_signal_noise_ratio`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

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
    """Frames per batch so that a batch holds about ``SSIM_BATCH_VALUES`` pixels."""
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


PAIR_BATCH = 4
"""Fewest consecutive pairs scored per batch by :func:`consecutive_ncc` (each batch's last frame is read again by
the next)."""


def consecutive_ncc(stack: np.ndarray) -> np.ndarray:
    """``ncc_frames(stack[:-1], stack[1:])`` bit for bit, each frame converted and centred once instead of twice.

    The pairs are scored in batches of at least :data:`PAIR_BATCH`, each batch's frames overlapping the next
    batch's by one; every product is the row-wise einsum :func:`ncc_frames` computes over the same values
    (whose rows do not depend on how many rows a batch has, apart from a batch of one row, kept as such).
    """
    t = stack.shape[0]
    out = np.empty(max(t - 1, 0), dtype=np.float64)
    for i, j in _row_batches(t - 1, max(PAIR_BATCH, _batch_frames(stack.shape))) if t > 1 else []:
        f = np.asarray(stack[i : j + 1], dtype=np.float64).reshape(j + 1 - i, -1)
        if f.shape[1] == 0:
            out[i:j] = np.nan
            continue
        flat = np.ptp(f, axis=1) == 0
        d = f - f.mean(axis=1, keepdims=True)
        if j - i == 1:  # one pair: ncc_frames' single-row products
            num = np.einsum("ij,ij->i", d[:1], d[1:])
            norms = np.concatenate([np.einsum("ij,ij->i", d[k : k + 1], d[k : k + 1]) for k in (0, 1)])
        else:
            num = np.einsum("ij,ij->i", d[:-1], d[1:])
            norms = np.einsum("ij,ij->i", d, d)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = num / np.sqrt(norms[:-1] * norms[1:])
        values[flat[:-1] | flat[1:]] = np.nan
        out[i:j] = np.clip(values, -1.0, 1.0)
    return out


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


SSIM_BATCH_VALUES = 1 << 16
"""Pixels per batch of frames in :func:`ssim_frames` (and :func:`ncc_frames`, :func:`psnr_frames`): the
temporaries of a batch then stay in the CPU cache. Every operation is per frame, so the batching changes
no number."""

SSIM_TILE = 32
"""Rows (and columns) of the output each small matrix product of :func:`_gaussian_along` makes: the
product reads ``SSIM_TILE + 2·radius`` input rows, so the work per pixel stays near the 11 taps."""


@lru_cache(maxsize=16)
def _gaussian_matrix(n: int) -> np.ndarray:
    """The SSIM Gaussian (σ 1.5, radius 5) along an axis of ``n`` samples with reflecting borders, as an
    ``n × n`` float32 matrix: ``M @ x`` is scipy's ``gaussian_filter1d(x, 1.5, mode="reflect", truncate=3.5)``."""
    taps = np.exp(-0.5 * (np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1) / SSIM_SIGMA) ** 2)
    taps /= taps.sum()
    matrix = np.zeros((n, n))
    rows = np.arange(n)
    for k, weight in zip(range(-SSIM_RADIUS, SSIM_RADIUS + 1), taps):
        cols = rows + k
        while (cols < 0).any() or (cols >= n).any():  # reflect (d c b a | a b c d | d c b a) until inside
            cols = np.where(cols < 0, -cols - 1, np.where(cols >= n, 2 * n - cols - 1, cols))
        np.add.at(matrix, (rows, cols), weight)
    return matrix.astype(np.float32)


def _gaussian_along(stack: np.ndarray, axis: int) -> np.ndarray:
    """The SSIM Gaussian of a float32 ``(..., Y, X)`` stack along Y (``axis=-2``) or X (``axis=-1``).

    Banded matrix products in tiles of ``SSIM_TILE`` outputs: BLAS runs them at several times the speed
    of a direct 11-tap filter, and a tile's product only spans the input rows its band touches.
    """
    n = stack.shape[axis]
    matrix = _gaussian_matrix(n)
    out = np.empty_like(stack)
    for r0 in range(0, n, SSIM_TILE):
        r1 = min(n, r0 + SSIM_TILE)
        c0, c1 = max(0, r0 - SSIM_RADIUS), min(n, r1 + SSIM_RADIUS)
        if axis == -2:
            np.matmul(matrix[r0:r1, c0:c1], stack[..., c0:c1, :], out=out[..., r0:r1, :])
        else:
            np.matmul(stack[..., c0:c1], matrix[r0:r1, c0:c1].T, out=out[..., r0:r1])
    return out


def ssim_frames(a: ArrayLike, b: ArrayLike, data_range: ArrayLike) -> np.ndarray:
    """Mean SSIM (Wang et al. 2004) per frame, matching skimage's Gaussian-weighted form.

    Same as ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=r)`` (reflect-mode filtering, a 5-pixel border cropped
    before averaging) to about 1e-7 (docs/metrics.md). Frames smaller than 11×11 are refused as skimage
    refuses them.
    """
    sa, sb = _stack(a, "a"), _stack(b, "b")
    if sa.shape != sb.shape:
        raise ValueError(f"shape mismatch: {sa.shape} vs {sb.shape}")
    t, h, w = sa.shape
    if h < SSIM_WIN or w < SSIM_WIN:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WIN}x{SSIM_WIN}, got {h}x{w}")
    r = _per_frame_range(data_range, t)
    out = np.empty(t, dtype=np.float64)
    step = _batch_frames(sa.shape)
    for i in range(0, t, step):
        j = min(i + step, t)
        out[i:j] = _ssim_batch(sa[i:j], sb[i:j], r[i:j])
    out[~(r > 0)] = np.nan
    return out


def _ssim_batch(a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Mean SSIM of each frame of a small batch, in float32 about each frame's own mean.

    Variances and the covariance do not change when a constant is taken from a frame (the Gaussian's
    weights sum to one), so the moments are filtered from ``a - mean(a)`` and ``b - mean(b)``: float32
    then loses nothing to an offset (raw counts of 10,000 ± 10 keep their variance), and the means are
    put back for the luminance term.
    """
    t, h, w = a.shape
    ma = a.reshape(t, -1).mean(axis=1, dtype=np.float64).astype(np.float32)[:, None, None]
    mb = b.reshape(t, -1).mean(axis=1, dtype=np.float64).astype(np.float32)[:, None, None]
    moments = np.empty((5, t, h, w), dtype=np.float32)
    x, y = np.subtract(a, ma, out=moments[0], dtype=np.float32), np.subtract(b, mb, out=moments[1], dtype=np.float32)
    np.multiply(x, x, out=moments[2])
    np.multiply(y, y, out=moments[3])
    np.multiply(x, y, out=moments[4])
    flat = moments.reshape(5 * t, h, w)
    ux, uy, sxx, syy, sxy = _gaussian_along(_gaussian_along(flat, -1), -2).reshape(5, t, h, w)
    rr = r.astype(np.float32)[:, None, None]
    c1, c2 = (np.float32(SSIM_K1) * rr) ** 2, (np.float32(SSIM_K2) * rr) ** 2
    cov = sxy - ux * uy
    var = (sxx - ux * ux) + (syy - uy * uy)
    ux += ma
    uy += mb
    with np.errstate(divide="ignore", invalid="ignore"):
        s = ((2 * ux * uy + c1) * (2 * cov + c2)) / ((ux * ux + uy * uy + c1) * (var + c2))
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
