"""The shipped SAS-Net, SAS-Net-Flow and AT/DT-Net checkpoints: they load, the flow methods find a
known shift, none of them leaks the forward lines into noise."""

from __future__ import annotations

import numpy as np
import pytest

from orpam_pipeline.evaluate.leak import LEAK_THRESHOLD, leak_scores
from orpam_pipeline.geometry import split
from orpam_pipeline.models.checkpoint import load_model
from orpam_pipeline.register import get_method
from tests.conftest import shifted_frames

NETWORK = {"device": "cpu", "precision": "fp32"}
PAPER_PARAMETERS = {"sasnet": 3_350_000, "atdt": 588_000 + 1_474_000}
"""SAS-Net 3.35 M; AT-Net 588 k + DT-Net 1474 k (the papers' figures; ours within 2 %)."""


@pytest.mark.parametrize("name", ["sasnet", "sasnet-flow", "atdt"])
def test_the_shipped_checkpoint_is_small_and_loads(name):
    path = get_method(name).settings.checkpoint
    model, data = load_model(path)
    params = sum(p.numel() for p in model.parameters())
    if name in PAPER_PARAMETERS:
        assert abs(params - PAPER_PARAMETERS[name]) / PAPER_PARAMETERS[name] < 0.02
    assert data["extra"]["weights_dtype"] == "float16"
    assert __import__("os").path.getsize(path) < 2.2 * params + 200_000  # two bytes a weight, plus the record


@pytest.mark.parametrize("name", ["sasnet-flow", "atdt"])
@pytest.mark.parametrize("k", [-4.0, 2.5])
def test_the_shipped_flow_networks_find_a_known_shift(small_sim, name, k):
    frames = shifted_frames(small_sim.frames[:3], k)
    odd, even = split(frames)
    method = get_method(name, **NETWORK)
    method.configure(even.shape[1], frames.shape[2], "forward")
    _, displacement = method.apply(odd, even, None)
    inner = displacement[:, 24:-24]
    assert abs(float(np.median(inner)) - k) < 0.5, float(np.median(inner))


@pytest.mark.parametrize("name", ["sasnet", "sasnet-flow", "atdt"])
def test_the_shipped_networks_do_not_leak_noise(small_sim, name):
    """SAS-Net as published passes too: the forward lines reach its renderer only as an 8-number style."""
    odd, _ = split(small_sim.frames[:4])
    noise = np.random.default_rng(1).normal(0.0, 1.0, odd.shape).astype(np.float32)
    method = get_method(name, **NETWORK)
    method.configure(odd.shape[1], odd.shape[2] * 2, "forward")
    registered, _ = method.apply(odd, noise, None)
    assert leak_scores(registered, noise, odd)["excess"] < LEAK_THRESHOLD
