"""The Parzen-window mutual information against direct numpy histograms on known distributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orpam_pipeline.train.mi import mutual_information

BINS = 32
N = 40000


def _unit(x: np.ndarray) -> np.ndarray:
    return (x - x.min()) / (x.max() - x.min())


def hard_mi(a: np.ndarray, b: np.ndarray, bins: int = BINS) -> float:
    """MI (nats) of a hard joint histogram, each value in the bin of the nearest centre k/(bins−1)."""
    ia = np.rint(_unit(a) * (bins - 1)).astype(int)
    ib = np.rint(_unit(b) * (bins - 1)).astype(int)
    joint = np.zeros((bins, bins))
    np.add.at(joint, (ia, ib), 1.0)
    joint /= joint.sum()
    outer = joint.sum(1, keepdims=True) @ joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / outer[nz])).sum())


def parzen_mi_numpy(a: np.ndarray, b: np.ndarray, bins: int = BINS, sigma: float = 0.5) -> float:
    """The same estimator written out in numpy, one pixel at a time summed into the joint histogram."""
    centres = np.linspace(0.0, 1.0, bins)
    joint = np.zeros((bins, bins))
    for x, y in zip(_unit(a), _unit(b)):
        wx = np.exp(-0.5 * ((x - centres) / (sigma / (bins - 1))) ** 2)
        wy = np.exp(-0.5 * ((y - centres) / (sigma / (bins - 1))) ** 2)
        joint += np.outer(wx / wx.sum(), wy / wy.sum())
    joint /= len(a)
    outer = joint.sum(1, keepdims=True) @ joint.sum(0, keepdims=True)
    return float((joint * (np.log(joint + 1e-10) - np.log(outer + 1e-10))).sum())


def _mi(a: np.ndarray, b: np.ndarray) -> float:
    return float(mutual_information(torch.from_numpy(a)[None], torch.from_numpy(b)[None], BINS)[0])


def test_equals_a_direct_numpy_computation_of_the_estimator() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(500)
    b = a**2 + 0.1 * rng.random(500)
    assert _mi(a, b) == pytest.approx(parzen_mi_numpy(a, b), abs=1e-9)


def test_independent_images_have_about_zero_mi() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random(N), rng.random(N)
    # hard bins are biased up by about (bins − 1)² / (2N) = 0.012; the smoothed estimate by less
    assert hard_mi(a, b) < 0.03
    assert 0.0 <= _mi(a, b) < 0.01


def test_identical_images_give_the_entropy_less_the_kernel_smoothing() -> None:
    rng = np.random.default_rng(2)
    a = rng.random(N)
    # uniform over bins centred at k/31: 30 of width 1/31 and two end bins of width 1/62
    k = BINS - 1
    entropy = (k - 1) / k * np.log(k) + 1 / k * np.log(2 * k)
    assert hard_mi(a, a) == pytest.approx(entropy, abs=0.01)
    parzen = _mi(a, a)
    assert parzen < hard_mi(a, a)
    # the Parzen estimate is the hard MI of two copies each jittered by the kernel (σ = 0.5 bins),
    # up to the kernel's discretisation on the bin centres
    width = 0.5 / (BINS - 1)
    jittered = hard_mi(np.clip(a + rng.normal(0, width, N), 0, 1), np.clip(a + rng.normal(0, width, N), 0, 1))
    assert parzen == pytest.approx(jittered, abs=0.2)


def test_correlated_gaussians_match_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    rho = 0.9
    z1, z2 = rng.standard_normal(N), rng.standard_normal(N)
    a, b = z1, rho * z1 + np.sqrt(1 - rho**2) * z2
    exact = -0.5 * np.log(1 - rho**2)  # 0.830 nats
    assert hard_mi(a, b) == pytest.approx(exact, abs=0.05)
    assert _mi(a, b) == pytest.approx(exact, abs=0.1)


def test_invariant_to_an_intensity_rescaling_and_batched() -> None:
    gen = torch.Generator().manual_seed(4)
    a = torch.rand(3, 1, 16, 16, generator=gen)
    b = a + 0.3 * torch.rand(3, 1, 16, 16, generator=gen)
    mi = mutual_information(a, b)
    assert mi.shape == (3,) and mi.dtype == torch.float32
    torch.testing.assert_close(mutual_information(a, 3.0 * b + 1.0), mi, atol=1e-5, rtol=0)
    assert float(mutual_information(a, a).min()) > float(mi.max())


def test_gradients_match_finite_differences() -> None:
    gen = torch.Generator().manual_seed(5)
    a = torch.rand(1, 42, generator=gen, dtype=torch.float64)
    b = (0.1 + 0.6 * a[:, 2:] + 0.2 * torch.rand(1, 40, generator=gen, dtype=torch.float64)).requires_grad_(True)
    ends = torch.tensor([[0.0, 1.0]], dtype=torch.float64)  # fixed min and max: the scaling is detached by design
    assert torch.autograd.gradcheck(lambda x: mutual_information(a, torch.cat([ends, x], 1), bins=8), (b,),
                                    eps=1e-6, atol=1e-5)
