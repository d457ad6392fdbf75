"""PCReg-Net inside the engine: loaded once per process, small tasks, precision within tolerance."""

import pickle

import numpy as np
import pytest
import torch

import orpam_pipeline.register.pcregnet as pcr
from orpam_pipeline.geometry import split
from orpam_pipeline.metrics import ncc_frames
from orpam_pipeline.register import get_method
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.store.layout import open_scan_store
from tests.conftest import make_store


def test_runs_in_the_engine_and_writes_the_spec_arrays(tmp_path, small_sim, tiny_checkpoint):
    frames = small_sim.frames[:5, :, :45]
    store = make_store(tmp_path, frames, chunk_frames=2)
    info = register_store(store, get_method("pcregnet", checkpoint=str(tiny_checkpoint), device="cpu"))
    group = open_scan_store(store)
    odd, even = split(frames)
    assert group["registered_even/0"].shape == even.shape
    np.testing.assert_array_equal(group["merged/0"][:][..., 0::2], odd)
    assert np.isfinite(group["registered_even/0"][:]).all()
    assert "displacement" not in group
    assert info["params"]["checkpoint_sha256"] and info["kind"] == "learned"


def test_model_is_loaded_once_per_process_and_not_pickled_into_tasks(tmp_path, small_sim, tiny_checkpoint, monkeypatch):
    pcr._CACHE.clear()
    loads = []
    real = pcr._Runner.__init__

    def counting(self, settings):
        loads.append(settings.checkpoint)
        real(self, settings)

    monkeypatch.setattr(pcr._Runner, "__init__", counting)
    method = get_method("pcregnet", checkpoint=str(tiny_checkpoint), device="cpu")
    store = make_store(tmp_path, small_sim.frames[:6], chunk_frames=1)
    register_store(store, method)
    register_store(store, get_method("pcregnet", checkpoint=str(tiny_checkpoint), device="cpu"))
    assert len(loads) == 1
    assert len(pickle.dumps(method)) < 2048


def test_reduced_precision_changes_ncc_by_less_than_a_thousandth(small_sim):
    """bf16 autocast with the shipped (trained) model, against fp32 on the same frames."""
    odd, even = split(small_sim.frames[:6])
    fixed = odd[..., : even.shape[-1]]
    ckpt = str(pcr.SHIPPED_CHECKPOINT)
    outs = {
        p: pcr.get_runner(pcr.InferenceSettings(checkpoint=ckpt, device="cpu", precision=p))(even, fixed)
        for p in ("fp32", "bf16")
    }
    diff = np.abs(ncc_frames(outs["bf16"], fixed) - ncc_frames(outs["fp32"], fixed))
    assert diff.max() < 1e-3, diff.max()


def test_missing_checkpoint_is_a_one_line_error(tmp_path, small_sim):
    from orpam_pipeline.errors import OrpamError

    store = make_store(tmp_path, small_sim.frames[:2])
    with pytest.raises(OrpamError, match="checkpoint not found"):
        register_store(store, get_method("pcregnet", checkpoint=str(tmp_path / "none.pt"), device="cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(small_sim, tiny_checkpoint):
    odd, even = split(small_sim.frames[:4])
    fixed = odd[..., : even.shape[-1]]
    cpu = pcr.get_runner(pcr.InferenceSettings(checkpoint=str(tiny_checkpoint), device="cpu", precision="fp32"))
    gpu = pcr.get_runner(pcr.InferenceSettings(checkpoint=str(tiny_checkpoint), device="cuda", precision="bf16"))
    diff = np.abs(ncc_frames(gpu(even, fixed), fixed) - ncc_frames(cpu(even, fixed), fixed))
    assert diff.max() < 1e-3
