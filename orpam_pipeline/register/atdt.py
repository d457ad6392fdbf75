"""AT-Net + multi-scale DT-Net as a registration method: an affine-then-deformable field along Y.

The network (``models.atdt``) outputs a resampling of the backward lines (no intensity transform:
its MI loss does not ask for one); the runner maps it into the forward lines' units with the frame's
normalisation, as for every learned method. ``displacement`` (t, Y, Xe) is stored, following
``registered_even[t, y, j] = even[t, y + displacement[t, y, j], j]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orpam_pipeline.register.pcregnet_flow import FlowInferenceSettings, PCRegNetFlowMethod
from orpam_pipeline.settings import setting

SHIPPED_ATDT_CHECKPOINT = Path(__file__).resolve().parent.parent / "models" / "checkpoints" / "atdt-sim.pt"


@dataclass
class ATDTSettings(FlowInferenceSettings):
    """:class:`FlowInferenceSettings` whose default checkpoint is the shipped AT-Net/DT-Net model."""

    checkpoint: str = setting(str(SHIPPED_ATDT_CHECKPOINT), "Checkpoint file (default: the shipped one).")


class ATDTMethod(PCRegNetFlowMethod):
    """AT-Net + multi-scale DT-Net (docs/atdt.md), constrained to shift/scale/shear along Y then a field."""

    name = "atdt"
    kind = "learned"
    description = "AT-Net + multi-scale DT-Net: Y shift/scale/shear, then a 3-scale U-Net cascade field (MI loss)"
    settings_type = ATDTSettings
    architecture = "atdt"
