"""On the CPU a network batch holds at most ``CPU_BATCH_PIXELS`` half-frame pixels (small batches run
faster there); the frames come out the same as one frame at a time. On CUDA a batch fits in half the free memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orpam_pipeline.register import get_method
from orpam_pipeline.register.pcregnet import CPU_BATCH_PIXELS, InferenceSettings, frames_that_fit, get_runner


def test_cpu_batches_are_capped_by_pixels_and_by_the_setting():
    runner = get_runner(get_method("pcregnet", device="cpu", precision="fp32").settings)
    assert runner.batch_for(256, 128) == CPU_BATCH_PIXELS // (256 * 128) == 2
    assert runner.batch_for(1024, 512) == 1
    assert runner.batch_for(32, 16) == 16  # the setting's 16 is the most


def test_batched_frames_equal_frames_one_at_a_time(small_sim):
    frames = np.asarray(small_sim.frames, dtype=np.float32)[:5]
    odd, even = frames[..., 0::2], frames[..., 1::2]
    batched = get_method("pcregnet", device="cpu", precision="fp32").apply(odd, even, None)[0]
    single = get_method("pcregnet", device="cpu", precision="fp32", batch_size=1).apply(odd, even, None)[0]
    assert np.abs(batched - single).max() < 1e-5 * float(np.abs(single).max())


def test_loading_a_network_flushes_denormals_in_torchs_worker_threads():
    """The flag is per thread and torch's intra-op workers keep the one they started with, so the runner sets
    it before its model's first operations start them (PCReg-Net-Flow's fp32 path ran 4x slower without)."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from orpam_pipeline.register import get_method\n"
        "from orpam_pipeline.register.pcregnet import get_runner\n"
        "get_runner(get_method('pcregnet', device='cpu', precision='fp32').settings)\n"
        "y = torch.full((4_000_000,), 1e-39) * 1.0\n"  # split over the worker threads
        "print(int((y != 0).sum()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0"


def test_chunk_threads_run_cpu_networks_on_one_thread_each_with_the_main_threads_numbers(small_sim):
    """Off the main thread a CPU network runs on one intra-op thread, without the lock (chunks side by side);
    the frames agree with the main thread's (torch's usual thread count) to float32 rounding."""
    import threading

    import torch

    frames = np.asarray(small_sim.frames, dtype=np.float32)[:4]
    odd, even = frames[..., 0::2], frames[..., 1::2]
    method = get_method("pcregnet", device="cpu", precision="fp32")
    runner = get_runner(method.settings)
    main = method.apply(odd, even, None)[0]
    assert torch.get_num_threads() == runner.threads
    seen: dict[str, object] = {}

    def chunk_thread() -> None:
        with runner.lock:  # held elsewhere: a chunk thread does not wait for it
            seen["out"] = method.apply(odd, even, None)[0]
        seen["threads"] = torch.get_num_threads()

    worker = threading.Thread(target=chunk_thread)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive() and seen["threads"] == 1
    assert np.abs(seen["out"] - main).max() <= 1e-6 * float(np.ptp(main))


def test_a_cuda_batch_takes_at_most_half_the_free_memory():
    gib = 2**30
    assert frames_that_fit(80 * gib, 100 * 2**20, 16) == 16  # small frames: the setting's most
    assert frames_that_fit(8 * gib, gib, 16) == 4  # 2048x2048-sized activations: what fits in half
    assert frames_that_fit(gib, 3 * gib, 16) == 1  # never fewer than one frame
    assert frames_that_fit(gib, 0, 16) == 16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_cuda_probe_picks_a_batch_that_runs():
    runner = get_runner(InferenceSettings(device="cuda"))
    step = runner.batch_for(256, 128)
    assert 1 <= step <= runner.batch_size
    moving = np.random.default_rng(0).random((step + 1, 256, 128), dtype=np.float32)
    assert runner(moving, moving).shape == moving.shape
