"""PCReg-Net-Flow inside the engine: a (T, Y, Xe) displacement is stored and the output is a warp of the data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import orpam_pipeline.register.pcregnet as pcr
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.geometry import split
from orpam_pipeline.models.checkpoint import save_checkpoint
from orpam_pipeline.models.pcregnet import PCRegNet, PCRegNetConfig
from orpam_pipeline.models.pcregnet_flow import PCRegNetFlow, PCRegNetFlowConfig
from orpam_pipeline.register import get_method
from orpam_pipeline.register.apply_displacement import apply_displacement
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.register.pcregnet_flow import FlowInferenceSettings, PCRegNetFlowMethod
from orpam_pipeline.store.layout import open_scan_store
from tests.conftest import make_store


@pytest.fixture(scope="module")
def flow_checkpoint(tmp_path_factory):
    """A tiny flow model with random displacement heads and an identity intensity head (gain 1, offset 0)."""
    torch.manual_seed(0)
    model = PCRegNetFlow(PCRegNetFlowConfig(base_channels=8, max_displacement=3.0))
    with torch.no_grad():
        for head in (model.coarse_head, model.residual_head):
            head.weight.normal_(0.0, 0.2)
            head.bias.fill_(0.1)
    path = tmp_path_factory.mktemp("ckpt") / "flow.pt"
    save_checkpoint(path, model_config=model.config.to_dict(), model_state=model.state_dict())
    return path


def _method(path) -> PCRegNetFlowMethod:
    return PCRegNetFlowMethod(FlowInferenceSettings(checkpoint=str(path), device="cpu", precision="fp32"))


def test_runs_in_the_engine_and_stores_a_field(tmp_path, small_sim, flow_checkpoint):
    frames = small_sim.frames[:5, :40, :45]
    store = make_store(tmp_path, frames, chunk_frames=2)
    info = register_store(store, _method(flow_checkpoint))
    group = open_scan_store(store)
    odd, even = split(frames)
    disp = group["displacement"][:]
    assert disp.shape == even.shape and disp.dtype == np.float32
    assert np.isfinite(disp).all() and np.abs(disp).max() > 0.05
    assert info["displacement"] == "field" and info["kind"] == "learned" and info["params"]["checkpoint_sha256"]
    np.testing.assert_array_equal(group["merged/0"][:][..., 0::2], odd)
    # with gain 1 and offset 0 the registered lines are the measured lines resampled at y + displacement
    expected = apply_displacement(frames, disp)[..., 1::2]
    scale = np.abs(frames).max()
    np.testing.assert_allclose(group["registered_even/0"][:], expected, atol=1e-4 * scale, rtol=0)


def test_shares_the_pcregnet_runner(flow_checkpoint):
    settings = FlowInferenceSettings(checkpoint=str(flow_checkpoint), device="cpu", precision="fp32")
    runner = pcr.get_runner(settings)
    assert runner is pcr.get_runner(pcr.InferenceSettings(checkpoint=str(flow_checkpoint), device="cpu", precision="fp32"))
    assert runner.arch == "pcregnet-flow"
    even = np.random.default_rng(0).random((3, 24, 10), dtype=np.float32)
    image, fields = runner.run(even, even[..., ::-1].copy(), ("displacement", "gain"))
    np.testing.assert_array_equal(image, runner(even, even[..., ::-1].copy()))
    assert fields["displacement"].shape == even.shape and np.allclose(fields["gain"], 1.0)


def test_default_checkpoint_is_the_flow_one():
    method = PCRegNetFlowMethod()
    assert method.settings.checkpoint.endswith("pcregnet-flow-sim.pt")
    assert method.name == "pcregnet-flow" and method.displacement == "field"


def test_refuses_a_pcregnet_checkpoint(tmp_path, small_sim):
    model = PCRegNet(PCRegNetConfig(base_channels=8))
    path = tmp_path / "pcregnet.pt"
    save_checkpoint(path, model_config=model.config.to_dict(), model_state=model.state_dict())
    store = make_store(tmp_path, small_sim.frames[:2, :32, :32])
    with pytest.raises(OrpamError, match="holds a pcregnet model") as info:
        register_store(store, _method(path))
    assert "\n" not in str(info.value)


def test_line_profile_is_the_median_field_and_still_a_warp(tmp_path, small_sim, flow_checkpoint):
    frames = small_sim.frames[:4, :40, :45]
    fields = []
    for profile in (False, True):
        store = make_store(tmp_path / str(profile), frames, chunk_frames=2)
        settings = FlowInferenceSettings(checkpoint=str(flow_checkpoint), device="cpu", precision="fp32", line_profile=profile)
        register_store(store, PCRegNetFlowMethod(settings))
        fields.append(open_scan_store(store)["displacement"][:])
        registered = open_scan_store(store)["registered_even/0"][:]
    field, profile_field = fields
    np.testing.assert_allclose(profile_field, np.broadcast_to(np.median(field, axis=-1, keepdims=True), field.shape),
                               atol=1e-6)
    assert np.ptp(field, axis=-1).max() > 0.05  # the random heads make a field that varies across lines
    expected = apply_displacement(frames, profile_field)[..., 1::2]
    np.testing.assert_allclose(registered, expected, atol=1e-4 * np.abs(frames).max(), rtol=0)


def test_line_profile_needs_a_flow_model(tiny_checkpoint):
    with pytest.raises(OrpamError, match="bad setting for method 'pcregnet'"):
        get_method("pcregnet", line_profile=True)
    runner = pcr.get_runner(pcr.InferenceSettings(checkpoint=str(tiny_checkpoint), device="cpu", precision="fp32"))
    with pytest.raises(OrpamError, match="needs a model that predicts a displacement"):
        runner.run(np.zeros((1, 16, 16), np.float32), np.zeros((1, 16, 16), np.float32), line_profile=True)


@pytest.mark.parametrize("profile", [False, True], ids=["field", "line-profile"])
@pytest.mark.parametrize("seed", [9101, 9102, 9103])
def test_shipped_checkpoint_recovers_a_known_displacement(tmp_path, seed, profile):
    """The shipped flow model, run by the engine on unseen simulated scenes, finds the true field within 0.25 px RMS.

    Seeds 9101-9103 are outside the training (100-111, 200-259) and benchmark (5000-5005) ranges;
    the displacement is a random offset + slope + sine profile with drift, 1.5-4.5 px in size.
    """
    from orpam_pipeline.simulate import SimulationParams, simulate

    sim = simulate(SimulationParams.randomised(seed, frames=6, height=256, width=256))
    store = make_store(tmp_path, sim.frames)
    register_store(store, PCRegNetFlowMethod(FlowInferenceSettings(device="cpu", precision="fp32", line_profile=profile)))
    found = open_scan_store(store)["displacement"][:]
    err = found - sim.displacement[:, :, None]
    rms = float(np.sqrt(np.mean(err**2)))
    assert rms < 0.25, f"displacement RMS error {rms:.3f} px (true field spans {np.ptp(sim.displacement):.2f} px)"
