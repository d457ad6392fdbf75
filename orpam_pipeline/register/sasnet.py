"""SAS-Net (pixel output, as published) and SAS-Net-Flow (a displacement field) as registration methods.

Both run through the shared runner of ``register.pcregnet`` (normalisation by the fixed frame's robust
range, batching, autocast, process-wide cache). ``sasnet`` re-renders the backward lines' scene under
the forward lines' appearance: its output is synthesised, there is no displacement to store.
``sasnet-flow`` stores the (t, Y, Xe) displacement it resampled the backward lines with
(``registered_even[t, y, j] ≈ even[t, y + displacement[t, y, j], j]`` up to one gain and offset per frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.geometry import odd_matched
from orpam_pipeline.register.pcregnet import InferenceSettings, PCRegNetMethod, get_runner
from orpam_pipeline.register.pcregnet_flow import FlowInferenceSettings, PCRegNetFlowMethod
from orpam_pipeline.settings import setting

CHECKPOINTS = Path(__file__).resolve().parent.parent / "models" / "checkpoints"
SHIPPED_SASNET_CHECKPOINT = CHECKPOINTS / "sasnet-sim.pt"
SHIPPED_SASNET_FLOW_CHECKPOINT = CHECKPOINTS / "sasnet-flow-sim.pt"


@dataclass
class SASNetSettings(InferenceSettings):
    """:class:`InferenceSettings` whose default checkpoint is the shipped SAS-Net model."""

    checkpoint: str = setting(str(SHIPPED_SASNET_CHECKPOINT), "Checkpoint file (default: the shipped one).")


@dataclass
class SASNetFlowSettings(FlowInferenceSettings):
    """:class:`FlowInferenceSettings` whose default checkpoint is the shipped SAS-Net-Flow model."""

    checkpoint: str = setting(str(SHIPPED_SASNET_FLOW_CHECKPOINT), "Checkpoint file (default: the shipped one).")


def check_arch(method: PCRegNetMethod, arch: str) -> None:
    """A one-line error when the loaded checkpoint holds another architecture than the method runs."""
    if arch != method.architecture:
        raise OrpamError(
            f"{method.settings.checkpoint}: holds a {arch} model; method {method.name} needs a "
            f"{method.architecture} checkpoint"
        )


class SASNetMethod(PCRegNetMethod):
    """SAS-Net as published (docs/sasnet.md): a re-rendered image, no displacement."""

    name = "sasnet"
    kind = "learned"
    description = "SAS-Net: scene/appearance factorisation, AdaIN re-rendering (pixel output)"
    settings_type = SASNetSettings
    architecture = "sasnet"

    def apply(self, odd: np.ndarray, even: np.ndarray, plan_rows: np.ndarray | None) -> tuple[np.ndarray, None]:
        runner = get_runner(self.settings)
        check_arch(self, runner.arch)
        return runner(np.asarray(even, dtype=np.float32), odd_matched(odd, even.shape[-1])), None


class SASNetFlowMethod(PCRegNetFlowMethod):
    """SAS-Net-Flow (docs/sasnet.md): scene features give a displacement, appearances one gain/offset per frame."""

    name = "sasnet-flow"
    kind = "learned"
    description = "SAS-Net-Flow: displacement along Y from scene features + per-frame gain/offset from appearances"
    settings_type = SASNetFlowSettings
    architecture = "sasnet-flow"
