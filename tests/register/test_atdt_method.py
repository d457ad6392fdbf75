"""AT-Net + DT-Net inside the engine: checkpoints, chunking, the stored field is the warp, the leak check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.evaluate.leak import LEAK_THRESHOLD, leak_scores
from orpam_pipeline.geometry import split
from orpam_pipeline.models.atdt import ATDT, ATDTConfig
from orpam_pipeline.models.checkpoint import save_checkpoint
from orpam_pipeline.register import get_method
from orpam_pipeline.register.apply_displacement import apply_displacement
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.store.layout import get_array, open_scan_store
from tests.conftest import make_store
from tests.models.test_atdt import randomise_heads

NETWORK = {"device": "cpu", "precision": "fp32", "batch_size": 1}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    out = {}
    for name, model in (("identity", ATDT(ATDTConfig(base_channels=8))),
                        ("random", randomise_heads(ATDT(ATDTConfig(base_channels=8, max_update=1.0)), scale=0.1))):
        out[name] = root / f"{name}.pt"
        save_checkpoint(out[name], model_config=model.config.to_dict(), model_state=model.state_dict())
    return out


def test_a_missing_checkpoint_is_a_one_line_error(tmp_path, small_sim):
    store = make_store(tmp_path, small_sim.frames[:2, :32, :32])
    with pytest.raises(OrpamError, match="checkpoint not found") as info:
        register_store(store, get_method("atdt", checkpoint=str(tmp_path / "absent.pt"), **NETWORK))
    assert "\n" not in str(info.value)


def test_chunked_equals_whole_and_the_output_is_the_stored_warp(tmp_path, small_sim, checkpoints):
    frames = small_sim.frames[:7, :48, :40]
    results = []
    for chunk in (1, 3, 7):
        store = make_store(tmp_path / str(chunk), frames, chunk_frames=chunk)
        info = register_store(store, get_method("atdt", checkpoint=str(checkpoints["random"]), **NETWORK))
        group = open_scan_store(store)
        results.append([get_array(group, k)[:] for k in ("registered_even", "merged", "displacement")])
    for other in results[1:]:
        for a, b in zip(other, results[0]):
            np.testing.assert_array_equal(a, b)
    registered, _, disp = results[0]
    assert info["displacement"] == "field" and np.abs(disp).max() > 0.05
    expected = apply_displacement(frames, disp)[..., 1::2]
    np.testing.assert_allclose(registered, expected, atol=1e-4 * np.abs(frames).max(), rtol=0)


def test_line_profile_without_an_intensity_transform(small_sim, checkpoints):
    odd, even = split(small_sim.frames[:2, :40, :40])
    method = get_method("atdt", checkpoint=str(checkpoints["random"]), line_profile=True, **NETWORK)
    registered, disp = method.apply(odd, even, None)
    np.testing.assert_array_equal(disp, np.broadcast_to(disp[..., :1], disp.shape))
    assert np.isfinite(registered).all()


def test_identical_halves_give_no_displacement(small_sim, checkpoints):
    """Untrained (identity) heads: zero displacement; trained models: see the benchmark."""
    odd, _ = split(small_sim.frames[:2])
    registered, disp = get_method("atdt", checkpoint=str(checkpoints["identity"]), **NETWORK).apply(odd, odd.copy(), None)
    assert np.abs(disp).max() < 0.05
    np.testing.assert_allclose(registered, odd, atol=1e-4 * np.abs(odd).max(), rtol=0)


def test_noise_in_the_backward_lines_does_not_leak(small_sim, checkpoints):
    odd, _ = split(small_sim.frames[:4])
    noise = np.random.default_rng(0).normal(0.0, 1.0, odd.shape).astype(np.float32)
    registered, _ = get_method("atdt", checkpoint=str(checkpoints["random"]), **NETWORK).apply(odd, noise, None)
    assert leak_scores(registered, noise, odd)["excess"] < LEAK_THRESHOLD
