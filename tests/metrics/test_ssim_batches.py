"""SSIM in float32 batches agrees with the former float64 pass over the whole stack; batching changes no bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from orpam_pipeline.metrics import image
from orpam_pipeline.metrics.image import ssim_frames


def _ssim_one_pass(a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The float64 implementation before batching and float32 filtering, kept here as the reference."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    t, h, w = a.shape
    r = r[:, None, None]
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2

    def smooth(x: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(x, sigma=(0.0, 1.5, 1.5), mode="reflect", truncate=3.5)

    ux, uy = smooth(a), smooth(b)
    vx, vy, vxy = smooth(a * a) - ux * ux, smooth(b * b) - uy * uy, smooth(a * b) - ux * uy
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s[:, 5 : h - 5, 5 : w - 5].reshape(t, -1).mean(axis=1, dtype=np.float64)


@pytest.mark.parametrize("shape", [(7, 40, 24), (5, 256, 128), (3, 11, 300), (2, 700, 90)])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_float32_ssim_matches_the_float64_pass_and_not_the_batching(shape, offset, monkeypatch):
    rng = np.random.default_rng(3)
    a = (offset + rng.random(shape, dtype=np.float32)).astype(np.float32)  # raw counts: a large offset
    b = (a + 0.2 * rng.standard_normal(shape)).astype(np.float32)
    r = np.ptp(a.reshape(shape[0], -1), axis=1).astype(np.float64)
    want = _ssim_one_pass(a, b, r)
    got = ssim_frames(a, b, r)
    assert np.abs(got - want).max() < 1e-6
    monkeypatch.setattr(image, "SSIM_BATCH_VALUES", 1)  # one frame per batch
    assert np.array_equal(ssim_frames(a, b, r), got)


@pytest.mark.parametrize("n", [11, 12, 37, 64, 65, 300])
def test_gaussian_matrix_is_scipys_reflecting_filter(n):
    x = np.random.default_rng(n).random((3, n, 5)).astype(np.float32)
    want = ndimage.gaussian_filter1d(x.astype(np.float64), 1.5, axis=1, mode="reflect", truncate=3.5)
    assert np.abs(image._gaussian_along(x, -2) - want).max() < 1e-6
    assert np.abs(image._gaussian_along(x.transpose(0, 2, 1).copy(), -1) - want.transpose(0, 2, 1)).max() < 1e-6


@pytest.mark.parametrize("shape", [(7, 40, 24), (5, 256, 256), (1, 3, 2)])
def test_ncc_and_psnr_do_not_depend_on_the_batching(shape, monkeypatch):
    rng = np.random.default_rng(4)
    a = rng.random(shape, dtype=np.float32)
    b = (a + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    b[0] = 0.5  # a constant frame: NaN NCC
    r = np.ptp(a.reshape(shape[0], -1), axis=1).astype(np.float64)
    results = []
    for values in (1 << 40, image.SSIM_BATCH_VALUES, 1):  # one pass (the former code), default, frame by frame
        monkeypatch.setattr(image, "SSIM_BATCH_VALUES", values)
        results.append((image.ncc_frames(a, b), image.psnr_frames(a, b, r)))
    for ncc, psnr in results[1:]:
        assert np.array_equal(ncc, results[0][0], equal_nan=True) and np.array_equal(psnr, results[0][1])


@pytest.mark.parametrize("t", [2, 3, 5, 6, 33])
def test_ncc_of_many_frames_matches_one_einsum_over_the_stack(t, monkeypatch):
    rng = np.random.default_rng(t)
    a = rng.random((t, 64, 64))
    b = a + 0.1 * rng.standard_normal(a.shape)
    da, db = a.reshape(t, -1) - a.reshape(t, -1).mean(axis=1, keepdims=True), b.reshape(t, -1) - b.reshape(t, -1).mean(axis=1, keepdims=True)
    want = np.clip(np.einsum("ij,ij->i", da, db) / np.sqrt(np.einsum("ij,ij->i", da, da) * np.einsum("ij,ij->i", db, db)), -1, 1)
    for values in (1, 4096 * 2, 4096 * 3):
        monkeypatch.setattr(image, "SSIM_BATCH_VALUES", values)
        assert np.array_equal(image.ncc_frames(a, b), want)
