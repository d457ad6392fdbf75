"""Intra-frame metrics against independent references (np.corrcoef, scikit-image)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from orpam_pipeline.metrics import (
    intra_frame_metrics,
    ncc,
    ncc_frames,
    psnr,
    psnr_frames,
    ssim,
    ssim_frames,
)


def _structured(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Smooth blobs and vessels plus noise, roughly like an OR-PAM MAP."""
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.random(shape), 3.0) * 40
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img += 5 * np.exp(-(((xx - shape[1] / 3) - 0.3 * yy) ** 2) / 8.0)
    return img + 0.2 * rng.standard_normal(shape)


def _ref_ncc(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


@pytest.mark.parametrize("shape", [(32, 32), (31, 17), (64, 45)])
def test_ncc_matches_corrcoef(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    a = rng.random(shape).astype(np.float32)
    b = (0.7 * a + 0.3 * rng.random(shape)).astype(np.float32)
    assert ncc(a, b) == pytest.approx(_ref_ncc(a, b), abs=1e-10)
    assert ncc(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ncc(a, -a) == pytest.approx(-1.0, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    gain=st.floats(0.01, 100.0),
    offset=st.floats(-1e3, 1e3),
    seed=st.integers(0, 2**16),
)
def test_ncc_gain_offset_invariance(gain: float, offset: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.random((20, 13))
    b = a + 0.5 * rng.random((20, 13))
    assert ncc(a, gain * b + offset) == pytest.approx(ncc(a, b), abs=1e-9)
    assert ncc(gain * a + offset, b) == pytest.approx(ncc(a, b), abs=1e-9)


@pytest.mark.parametrize("value", [0.0, 0.1, 3.7e5])
def test_ncc_constant_is_nan(value: float) -> None:
    a = np.full((40, 30), value, dtype=np.float32)
    b = np.random.default_rng(0).random((40, 30))
    assert np.isnan(ncc(a, b))
    assert np.isnan(ncc(b, a))
    assert np.isnan(ncc(a, a))


def test_ncc_rejects_mismatch_and_stacks() -> None:
    with pytest.raises(ValueError):
        ncc(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError):
        ncc(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))


CASES = [((32, 32), 1.0), ((33, 21), 255.0), ((11, 11), 0.05), ((64, 47), 1000.0)]


@pytest.mark.parametrize("structured", [False, True])
@pytest.mark.parametrize("shape,scale", CASES)
def test_ssim_psnr_match_skimage(shape: tuple[int, int], scale: float, structured: bool) -> None:
    rng = np.random.default_rng(hash((shape, structured)) % 2**32)
    if structured:
        a = _structured(shape, 3)
        a = (a - a.min()) / np.ptp(a) * scale
    else:
        a = rng.random(shape) * scale
    b = a + rng.normal(0, 0.1 * scale, shape)
    b = np.roll(b, 1, axis=0)
    for dr in (np.ptp(a), 2.0 * scale):
        ref = structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=dr
        )
        assert ssim(a, b, dr) == pytest.approx(ref, abs=1e-4)
        assert psnr(a, b, dr) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=dr), abs=1e-4)


def test_ssim_float32_input_matches_skimage() -> None:
    a = _structured((40, 29), 5).astype(np.float32)
    b = (a * 1.3 + 2).astype(np.float32)
    dr = float(a.max() - a.min())
    ref = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=dr
    )
    assert ssim(a, b, dr) == pytest.approx(ref, abs=1e-4)


def test_ssim_identical_is_one_and_small_frames_refused() -> None:
    a = _structured((20, 20), 1)
    assert ssim(a, a, np.ptp(a)) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError):
        ssim(np.zeros((10, 20)), np.zeros((10, 20)), 1.0)


def test_zero_range_gives_nan() -> None:
    a = _structured((16, 16), 2)
    assert np.isnan(ssim(a, a + 1, 0.0))
    assert np.isnan(psnr(a, a + 1, 0.0))
    assert psnr(a, a, 1.0) == np.inf


def test_batched_equals_loop() -> None:
    rng = np.random.default_rng(7)
    a = np.stack([_structured((24, 19), s) for s in range(5)]).astype(np.float32)
    b = a + rng.normal(0, 0.5, a.shape).astype(np.float32)
    rng_per_frame = a.reshape(5, -1).max(1) - a.reshape(5, -1).min(1)
    n = ncc_frames(a, b)
    s = ssim_frames(a, b, rng_per_frame)
    p = psnr_frames(a, b, rng_per_frame)
    assert n.shape == s.shape == p.shape == (5,)
    for i in range(5):
        assert n[i] == pytest.approx(ncc(a[i], b[i]), abs=1e-12)
        assert s[i] == pytest.approx(ssim(a[i], b[i], rng_per_frame[i]), abs=1e-12)
        assert p[i] == pytest.approx(psnr(a[i], b[i], rng_per_frame[i]), abs=1e-12)
    assert np.allclose(ssim_frames(a, b, 3.0), [ssim(a[i], b[i], 3.0) for i in range(5)])
    with pytest.raises(ValueError):
        psnr_frames(a, b, [1.0, 2.0])


def test_intra_frame_metrics_width_matching_and_range() -> None:
    rng = np.random.default_rng(11)
    frames = np.stack([_structured((30, 25), s) for s in range(3)])
    odd, even = frames[..., 0::2], frames[..., 1::2]
    assert odd.shape[-1] == 13 and even.shape[-1] == 12
    even = even + rng.normal(0, 0.1, even.shape)
    even[1] = 0.0
    odd = odd.copy()
    odd[2] = 4.0
    m = intra_frame_metrics(even, odd)
    assert set(m) == {"ncc", "ssim", "psnr"}
    trimmed = odd[..., :12]
    dr = np.ptp(trimmed[0])
    ref_ssim = structural_similarity(
        even[0], trimmed[0], gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=dr
    )
    assert m["ncc"][0] == pytest.approx(_ref_ncc(even[0], trimmed[0]), abs=1e-10)
    assert m["ssim"][0] == pytest.approx(ref_ssim, abs=1e-4)
    assert m["psnr"][0] == pytest.approx(
        peak_signal_noise_ratio(trimmed[0], even[0], data_range=dr), abs=1e-4
    )
    assert np.isnan(m["ncc"][1]) and np.isfinite(m["ssim"][1]) and np.isfinite(m["psnr"][1])
    assert np.isnan(m["ncc"][2]) and np.isnan(m["ssim"][2]) and np.isnan(m["psnr"][2])
    single = intra_frame_metrics(even[0], odd[0])
    assert single["ncc"].shape == (1,) and single["ncc"][0] == m["ncc"][0]
    with pytest.raises(ValueError):
        intra_frame_metrics(even[:, :-1], odd)
    with pytest.raises(ValueError):
        intra_frame_metrics(np.concatenate([even, even], axis=-1), odd)


def test_intra_frame_ssim_is_nan_for_frames_smaller_than_the_window():
    from orpam_pipeline.metrics import intra_frame_metrics

    rng = np.random.default_rng(0)
    out = intra_frame_metrics(rng.random((2, 20, 5)), rng.random((2, 20, 5)))
    assert np.isnan(out["ssim"]).all() and np.isfinite(out["ncc"]).all()


def test_backward_first_odd_width_compares_the_lines_that_have_a_partner():
    """With the first line backward and an odd width there is one more backward line: it is left out."""
    from orpam_pipeline.geometry import split

    rng = np.random.default_rng(5)
    frames = rng.random((2, 32, 17)).astype(np.float32)
    odd, even = split(frames, "backward")
    assert (odd.shape[-1], even.shape[-1]) == (8, 9)
    got = intra_frame_metrics(even, odd)
    want = intra_frame_metrics(even[..., :8], odd)
    for key in ("ncc", "ssim", "psnr"):
        np.testing.assert_array_equal(got[key], want[key])
