"""PCReg-Net as a registration method: batched inference, one model per process.

The method object carries only the checkpoint path and run settings, so it is cheap to hand to
dask tasks; the network itself is loaded the first time a process needs it (BatchNorm folded,
channels-last, on the chosen device) and kept in a process-wide cache, never pickled per task.
"""

from __future__ import annotations

import os
import threading
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.geometry import odd_matched
from orpam_pipeline.register.base import RegistrationMethod
from orpam_pipeline.settings import check_device, check_precision, setting

SHIPPED_CHECKPOINT = Path(__file__).resolve().parent.parent / "models" / "checkpoints" / "pcregnet-sim.pt"

CPU_BATCH_PIXELS = 1 << 16
"""Most half-frame pixels (frames × Y × W) in one CPU batch. On the CPU large batches are slower, not faster:
every activation of 16 half-frames of 256×128 is hundreds of MB, freshly mapped and page-faulted layer by
layer. Measured on the 2-core development machine (ms per frame, batch 16 → 2): PCReg-Net bf16 46 → 20,
PCReg-Net-Flow bf16 40 → 24, SAS-Net-Flow bf16 84 → 49, fp32 118 → 73 (PCReg-Net-Flow)."""

_CACHE: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()
_LOADS = [0]


@dataclass
class InferenceSettings:
    checkpoint: str = setting(str(SHIPPED_CHECKPOINT), "Checkpoint file (default: the shipped one).")
    device: str = setting("auto", "Where the network runs: auto (CUDA when available), cpu, cuda or cuda:N.")
    precision: str = setting("auto", "Numeric precision: auto, fp32, bf16 or fp16 (fp16 on CUDA only).")
    batch_size: int = setting(16, "Most frames per network batch (on the CPU a batch also holds at most 64 Ki pixels "
                                  "of half-frames: 2 frames of 256x256; on CUDA at most what fits in half the free "
                                  "memory, probed once per frame size).")  # fmt: skip

    def __post_init__(self) -> None:
        # Absolute, so worker processes with another working directory find the checkpoint.
        self.checkpoint = os.path.abspath(os.fspath(self.checkpoint))
        check_device(self.device)
        check_precision(self.precision)
        if int(self.batch_size) < 1:
            raise OrpamError(f"batch_size must be at least 1, not {self.batch_size}")


def resolve_device(device: str) -> str:
    """The torch device a setting names: ``auto`` becomes cuda or cpu; a missing CUDA device is an error."""
    import torch

    check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise OrpamError(f"device {device!r} requested but no such CUDA device is available")
    return device


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_precision(precision: str, device: str) -> str:
    """The precision a setting names on ``device``: ``auto`` becomes bf16 where it is fast, else fp16/fp32."""
    import torch

    check_precision(precision)
    on_cuda = device.startswith("cuda")
    if precision == "auto":
        if on_cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if precision == "fp16" and not on_cuda:
        raise OrpamError("fp16 inference needs a CUDA device; use bf16 or fp32 on the CPU")
    return precision


_THREADS: list[int] = []


def _default_threads() -> int:
    """torch's intra-op thread count before any runner changed it (``OMP_NUM_THREADS`` or the cores)."""
    import torch

    if not _THREADS:
        _THREADS.append(torch.get_num_threads())
    return _THREADS[0]


class _Runner:
    """A loaded, folded network on one device; callable on numpy blocks of frames.

    Shared by every learned method: ``run`` returns the final image (in the fixed image's units) and
    any of the fields a PCReg-Net-Flow model reports (in pixels, or unitless gains), ``__call__`` only
    the image.

    On the CPU, calls from the engine's chunk threads run side by side, each on one intra-op thread;
    calls from the main thread (and every CUDA call) take the lock and torch's usual thread count.
    torch's OpenMP teams started from other threads than the main one ran a network slower on two
    threads than on one (AT/DT-Net 2.2x, PCReg-Net 1.2x), so one chunk's network per core is what uses
    the cores: the register stage of AT/DT-Net went from 16.7 to 36.0 frames/s on two cores.
    """

    def __init__(self, settings: InferenceSettings) -> None:
        import torch

        from orpam_pipeline.models.checkpoint import config_arch, load_model
        from orpam_pipeline.models.fold import fold_batchnorm

        # Flushing denormals is a per-thread CPU flag, and torch's intra-op worker threads keep the flag
        # they were started with: set it before the model is loaded, whose operations start the pool.
        # Without it in the workers PCReg-Net-Flow's fp32 path ran 4x slower (281 vs 70 ms per frame).
        torch.set_flush_denormal(True)
        self.threads = _default_threads()
        self.torch = torch
        self.device = resolve_device(settings.device)
        self.device_type = torch.device(self.device).type
        self.precision = resolve_precision(settings.precision, self.device)
        self.batch_size = max(1, int(settings.batch_size))
        model, meta = load_model(settings.checkpoint, device="cpu")
        self.meta = meta
        self.arch = config_arch(meta["model_config"])
        self.model = fold_batchnorm(model).eval().to(self.device).to(memory_format=torch.channels_last)
        self.lock = threading.RLock()
        self._cuda_batches: dict[tuple[int, int], int] = {}

    def _autocast(self):
        torch = self.torch
        if self.precision == "fp32":
            return torch.autocast(self.device_type, enabled=False)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device_type, dtype=dtype)

    def __call__(self, moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        return self.run(moving, fixed)[0]

    def batch_for(self, height: int, width: int) -> int:
        """Frames per batch of ``height × width`` half-frames: ``batch_size``, and on the CPU at most
        ``CPU_BATCH_PIXELS`` pixels."""
        if self.device_type == "cuda":
            return self._cuda_batch(height, width)
        return max(1, min(self.batch_size, CPU_BATCH_PIXELS // max(1, height * width)))

    def _cuda_batch(self, height: int, width: int) -> int:
        """``batch_size`` or fewer, as :func:`frames_that_fit` the free GPU memory; probed once per frame size.

        The probe runs the network on two frames of zeros and takes half the growth of the allocator's
        peak as one frame's share (activations, workspace), so large frames cannot run out of memory.
        """
        key = (height, width)
        with self.lock:
            if key not in self._cuda_batches:
                torch = self.torch
                torch.cuda.synchronize(self.device)
                base = torch.cuda.memory_allocated(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
                with torch.inference_mode(), self._autocast():
                    probe = torch.zeros((2, 1, height, width), device=self.device)
                    probe = probe.contiguous(memory_format=torch.channels_last)
                    self.model(probe, probe)
                torch.cuda.synchronize(self.device)
                per_frame = (torch.cuda.max_memory_allocated(self.device) - base) // 2
                free, _ = torch.cuda.mem_get_info(self.device)
                self._cuda_batches[key] = frames_that_fit(int(free), int(per_frame), self.batch_size)
            return self._cuda_batches[key]

    def run(
        self, moving: np.ndarray, fixed: np.ndarray, fields: tuple[str, ...] = (), line_profile: bool = False
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Final image of (t, Y, W) ``moving`` onto ``fixed``, plus the named model fields as (t, Y, W) float32.

        ``line_profile`` (flow models): the displacement becomes its median along W for every row and
        the final image is recomputed as ``gain · warp(moving, profile) + offset``.
        """
        from orpam_pipeline.models.architectures import get_architecture

        if line_profile and not get_architecture(self.arch).displacement:
            raise OrpamError(f"a line profile needs a model that predicts a displacement (pcregnet-flow), not {self.arch}")
        from orpam_pipeline.models.normalise import denormalise, normalise_pair

        torch = self.torch
        m, f, scale = normalise_pair(moving, fixed)
        out = np.empty(moving.shape, dtype=np.float32)
        extra = {name: np.empty(moving.shape, dtype=np.float32) for name in fields}
        cuda = self.device_type == "cuda"
        if not cuda:
            # Denormal activations make CPU convolutions many times slower; flushing them to zero
            # changes outputs far below float32 resolution of the images. The setting is process-wide
            # and other code (training) switches it off, so it is set on every call: results then do
            # not depend on what ran before in the process.
            torch.set_flush_denormal(True)
        side_by_side = not cuda and threading.current_thread() is not threading.main_thread()
        torch.set_num_threads(1 if side_by_side else self.threads)
        with (nullcontext() if side_by_side else self.lock), torch.inference_mode(), self._autocast():
            step = self.batch_for(*moving.shape[-2:])
            for start in range(0, m.shape[0], step):
                stop = min(start + step, m.shape[0])
                mt = torch.from_numpy(np.ascontiguousarray(m[start:stop, None]))
                ft = torch.from_numpy(np.ascontiguousarray(f[start:stop, None]))
                if cuda:
                    mt, ft = mt.pin_memory(), ft.pin_memory()
                mt = mt.to(self.device, non_blocking=cuda).contiguous(memory_format=torch.channels_last)
                ft = ft.to(self.device, non_blocking=cuda).contiguous(memory_format=torch.channels_last)
                outputs = self.model(mt, ft)
                if line_profile:
                    outputs = _with_line_profile(mt, outputs)
                out[start:stop] = outputs[0][:, 0].float().cpu().numpy()
                for name, dest in extra.items():
                    dest[start:stop] = outputs[2][name][:, 0].float().cpu().numpy()
        return denormalise(out, scale), extra


CUDA_MEMORY_SHARE = 0.5
"""Share of the GPU's free memory one batch's activations may take (the rest: the allocator's slack, other work)."""


def frames_that_fit(free_bytes: int, per_frame_bytes: int, most: int) -> int:
    """Frames per batch whose activations take at most ``CUDA_MEMORY_SHARE`` of ``free_bytes``: 1 to ``most``."""
    if per_frame_bytes <= 0:
        return max(1, most)
    return max(1, min(most, int(free_bytes * CUDA_MEMORY_SHARE) // per_frame_bytes))


def _with_line_profile(moving: Any, outputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """Flow outputs with the displacement replaced by its per-row median along the lines (float32)."""
    import torch

    from orpam_pipeline.models.warp import warp_rows

    final, coarse, fields = outputs
    if "displacement_x" in fields:
        raise OrpamError("a line profile is not defined for models with a cross-axis displacement")
    with torch.autocast(moving.device.type, enabled=False):
        d = fields["displacement"].float()
        ranked = d.sort(dim=-1).values
        w = d.shape[-1]
        median = 0.5 * (ranked[..., (w - 1) // 2] + ranked[..., w // 2])  # numpy's median for even w too
        profile = median[..., None].expand_as(d).contiguous()
        warped = warp_rows(moving[:, :1].float().contiguous(), profile)
        final = warped
        if "gain" in fields:  # models without an intensity transform (atdt) output the warp itself
            final = fields["gain"].float() * warped + fields["offset"].float()
    return final, coarse, {**fields, "displacement": profile}


def get_runner(settings: InferenceSettings) -> _Runner:
    """The process-wide runner for these settings, loaded on first use."""
    key = (str(Path(settings.checkpoint).resolve()), settings.device, settings.precision)
    with _LOCK:
        runner = _CACHE.get(key)
        if runner is None:
            if not Path(settings.checkpoint).is_file():
                raise OrpamError(f"{settings.checkpoint}: checkpoint not found")
            runner = _CACHE[key] = _Runner(settings)
            _LOADS[0] += 1
        runner.batch_size = max(1, int(settings.batch_size))
    return runner


def runner_loads() -> int:
    """How many runners this process has loaded from checkpoint files (cache misses of :func:`get_runner`)."""
    return _LOADS[0]


class PCRegNetMethod(RegistrationMethod):
    """PCReg-Net (docs/pcregnet.md): outputs registered pixels, not a displacement."""

    name = "pcregnet"
    kind = "learned"
    description = "PCReg-Net: coarse U-Net + contrast-guided refinement U-Net (pixel output)"
    settings_type = InferenceSettings
    uses_network = True
    architecture = "pcregnet"

    def __init__(self, settings: InferenceSettings | None = None) -> None:
        super().__init__(settings)
        self._sha256: str | None = None

    def describe(self) -> dict[str, Any]:
        """The declaration plus the checkpoint: path, sha256, architecture and parameter count."""
        entry = super().describe()
        entry["checkpoint"] = self.settings.checkpoint
        entry["checkpoint_sha256"] = self.checkpoint_sha256()
        entry["parameters"] = 0
        if entry["checkpoint_sha256"] is not None:
            from orpam_pipeline.models.checkpoint import build_model, config_arch, load_checkpoint
            from orpam_pipeline.models.pcregnet import count_parameters

            config = load_checkpoint(self.settings.checkpoint)["model_config"]
            entry["arch"] = config_arch(config)
            entry["parameters"] = count_parameters(build_model(config))
        return entry

    def checkpoint_sha256(self) -> str | None:
        from orpam_pipeline.io import sha256_file

        path = Path(self.settings.checkpoint)
        if self._sha256 is None and path.is_file():
            self._sha256 = sha256_file(path)
        return self._sha256

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self.settings)
        out["checkpoint_sha256"] = self.checkpoint_sha256()
        out["resolved_device"] = resolve_device(self.settings.device)
        out["resolved_precision"] = resolve_precision(self.settings.precision, out["resolved_device"])
        return out

    def resources(self) -> dict[str, float]:
        """One GPU per block when inference runs on CUDA (``auto`` resolves where the command runs)."""
        return {"GPU": 1} if resolve_device(self.settings.device).startswith("cuda") else {}

    def preload(self, threads: int = 1) -> None:
        """Load the runner into this process's cache; a CUDA model is skipped where no GPU is visible.

        ``threads`` needs no setting here: a worker's task threads run their CPU networks side by side on
        one intra-op thread each (:class:`_Runner`), so the worker's threads are the network's.
        """
        import torch

        if self.settings.device.startswith("cuda") and not torch.cuda.is_available():
            return
        get_runner(self.settings)

    def apply(self, odd, even, plan_rows):
        runner = get_runner(self.settings)
        return runner(np.asarray(even, dtype=np.float32), odd_matched(odd, even.shape[-1])), None
