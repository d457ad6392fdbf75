"""SAS-Net and SAS-Net-Flow inside the engine: checkpoints, chunking, a stored field, the leak check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.evaluate.leak import LEAK_THRESHOLD, leak_scores
from orpam_pipeline.geometry import split
from orpam_pipeline.models.checkpoint import save_checkpoint
from orpam_pipeline.models.sasnet import SASNet, SASNetConfig, SASNetFlow, SASNetFlowConfig
from orpam_pipeline.register import get_method
from orpam_pipeline.register.apply_displacement import apply_displacement
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.store.layout import get_array, has_array, open_scan_store
from tests.conftest import make_store
from tests.models.test_sasnet import randomise_heads

NETWORK = {"device": "cpu", "precision": "fp32", "batch_size": 1}


def _save(model: torch.nn.Module, path):
    save_checkpoint(path, model_config=model.config.to_dict(), model_state=model.state_dict())
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Small untrained models: SAS-Net, SAS-Net-Flow at identity, SAS-Net-Flow with random heads."""
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    with torch.no_grad():
        flow = randomise_heads(SASNetFlow(SASNetFlowConfig(base_channels=8, scene_blocks=1, max_displacement=3.0)))
        flow.intensity_head.weight.zero_()
        flow.intensity_head.bias.zero_()
    return {
        "sasnet": _save(SASNet(SASNetConfig(base_channels=8, scene_blocks=1, render_blocks=1, mlp_dim=32)), root / "s.pt"),
        "identity": _save(SASNetFlow(SASNetFlowConfig(base_channels=8, scene_blocks=1)), root / "i.pt"),
        "flow": _save(flow, root / "f.pt"),
    }


@pytest.mark.parametrize("method", ["sasnet", "sasnet-flow"])
def test_a_missing_default_checkpoint_is_a_one_line_error(tmp_path, small_sim, method):
    store = make_store(tmp_path, small_sim.frames[:2, :32, :32])
    with pytest.raises(OrpamError, match="checkpoint not found") as info:
        register_store(store, get_method(method, checkpoint=str(tmp_path / "absent.pt"), **NETWORK))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("method, key", [("sasnet", "sasnet"), ("sasnet-flow", "flow")])
def test_chunked_equals_whole(tmp_path, small_sim, checkpoints, method, key):
    frames = small_sim.frames[:7, :48, :40]
    results = []
    for chunk in (1, 3, 7):
        store = make_store(tmp_path / str(chunk), frames, chunk_frames=chunk)
        register_store(store, get_method(method, checkpoint=str(checkpoints[key]), **NETWORK))
        group = open_scan_store(store)
        results.append({k: get_array(group, k)[:] for k in ("registered_even", "merged", "displacement")
                        if has_array(group, k)})
    assert ("displacement" in results[0]) == (method == "sasnet-flow")
    for other in results[1:]:
        for k in other:
            np.testing.assert_array_equal(other[k], results[0][k])


def test_refuses_a_checkpoint_of_another_architecture(tmp_path, small_sim, checkpoints):
    store = make_store(tmp_path, small_sim.frames[:2, :32, :32])
    with pytest.raises(OrpamError, match="holds a sasnet-flow model"):
        register_store(store, get_method("sasnet", checkpoint=str(checkpoints["flow"]), **NETWORK))
    with pytest.raises(OrpamError, match="holds a sasnet model"):
        register_store(store, get_method("sasnet-flow", checkpoint=str(checkpoints["sasnet"]), **NETWORK))


def test_flow_stores_the_field_it_resampled_with(tmp_path, small_sim, checkpoints):
    frames = small_sim.frames[:4, :40, :45]
    store = make_store(tmp_path, frames, chunk_frames=2)
    info = register_store(store, get_method("sasnet-flow", checkpoint=str(checkpoints["flow"]), **NETWORK))
    group = open_scan_store(store)
    disp = get_array(group, "displacement")[:]
    assert info["displacement"] == "field" and disp.shape == split(frames)[1].shape and np.abs(disp).max() > 0.05
    expected = apply_displacement(frames, disp)[..., 1::2]
    np.testing.assert_allclose(get_array(group, "registered_even")[:], expected, atol=1e-4 * np.abs(frames).max(), rtol=0)


def test_flow_identical_halves_give_no_displacement(small_sim, checkpoints):
    """Untrained (identity) heads: zero displacement and the data itself; trained models: see the benchmark."""
    odd, _ = split(small_sim.frames[:2])
    method = get_method("sasnet-flow", checkpoint=str(checkpoints["identity"]), **NETWORK)
    registered, disp = method.apply(odd, odd.copy(), None)
    assert np.abs(disp).max() < 0.05
    np.testing.assert_allclose(registered, odd, atol=1e-4 * np.abs(odd).max(), rtol=0)


@pytest.mark.parametrize("method, key", [("sasnet-flow", "flow"), ("sasnet", "sasnet")])
def test_noise_in_the_backward_lines_does_not_leak(small_sim, checkpoints, method, key):
    """SAS-Net-Flow passes by construction (a warp and two numbers per frame). SAS-Net as published passes
    too, honestly: the fixed image reaches its renderer only through a style_dim vector pooled over the
    whole frame, which cannot say where the vessels are. (Its output is still synthesised, not resampled.)"""
    odd, _ = split(small_sim.frames[:4])
    noise = np.random.default_rng(0).normal(0.0, 1.0, odd.shape).astype(np.float32)
    registered, _ = get_method(method, checkpoint=str(checkpoints[key]), **NETWORK).apply(odd, noise, None)
    assert leak_scores(registered, noise, odd)["excess"] < LEAK_THRESHOLD
