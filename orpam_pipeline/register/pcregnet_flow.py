"""PCReg-Net-Flow as a registration method: a displacement field along Y plus smooth gain and offset.

Inference goes through the same runner as ``pcregnet`` (process-wide cache, BatchNorm folding,
channels-last, autocast); this module only asks it for the displacement as well and checks that the
checkpoint holds the flow architecture. The registered image is one resampling of the measured
backward lines (``gain · warp(even, d) + offset``, in the fixed image's units), and the stored
``displacement`` (t, Y, Xe) in pixels follows the engine's convention
``registered_even[t, y, j] ≈ even[t, y + displacement[t, y, j], j]`` (exact up to gain and offset).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.geometry import odd_matched
from orpam_pipeline.register.pcregnet import InferenceSettings, PCRegNetMethod, get_runner
from orpam_pipeline.settings import setting

SHIPPED_FLOW_CHECKPOINT = (
    Path(__file__).resolve().parent.parent / "models" / "checkpoints" / "pcregnet-flow-sim.pt"
)


@dataclass
class FlowInferenceSettings(InferenceSettings):
    """:class:`InferenceSettings` whose default checkpoint is the shipped PCReg-Net-Flow model."""

    checkpoint: str = setting(str(SHIPPED_FLOW_CHECKPOINT), "Checkpoint file (default: the shipped one).")
    # For scanners whose forward/backward offset depends only on the position along the fast axis
    # (the usual galvo raster) the field's variation across lines is estimation noise, which the
    # median removes (on simulated scans it was most of the error).
    line_profile: bool = setting(
        False, "Use the field's median along the lines, one displacement profile per row (still one warp)."
    )


class PCRegNetFlowMethod(PCRegNetMethod):
    """PCReg-Net-Flow: reports a (t, Y, Xe) displacement field and resamples the measured lines once."""

    name = "pcregnet-flow"
    kind = "learned"
    description = "PCReg-Net-Flow: PCReg-Net modules predicting a displacement field along Y + smooth gain/offset"
    displacement = "field"
    settings_type = FlowInferenceSettings
    architecture = "pcregnet-flow"

    def apply(self, odd: np.ndarray, even: np.ndarray, plan_rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        runner = get_runner(self.settings)
        if runner.arch != self.architecture:
            raise OrpamError(
                f"{self.settings.checkpoint}: holds a {runner.arch} model; method {self.name} needs a "
                f"{self.architecture} checkpoint"
            )
        moving = np.asarray(even, dtype=np.float32)
        registered, fields = runner.run(moving, odd_matched(odd, even.shape[-1]), ("displacement",),
                                        line_profile=self.settings.line_profile)
        return registered, fields["displacement"]
