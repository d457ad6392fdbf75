"""The network architectures, one line each: name -> module, config class and model class.

Kept free of torch: the CLI lists and validates names without importing it; the classes are
imported on first use. A registration method names the architecture it runs (and that
``orpam train --method`` trains) in its ``architecture`` attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

from orpam_pipeline.errors import OrpamError


@dataclass(frozen=True)
class Architecture:
    """Where an architecture's config and model classes live."""

    name: str
    module: str
    config: str
    model: str
    displacement: bool = True
    """Whether the network predicts a displacement (fields ``displacement``, ``coarse_displacement``)."""

    def config_class(self) -> Any:
        return getattr(import_module(self.module), self.config)

    def model_class(self) -> Any:
        return getattr(import_module(self.module), self.model)


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("pcregnet", "orpam_pipeline.models.pcregnet", "PCRegNetConfig", "PCRegNet", displacement=False),
        Architecture("pcregnet-flow", "orpam_pipeline.models.pcregnet_flow", "PCRegNetFlowConfig", "PCRegNetFlow"),
        Architecture("eoir", "orpam_pipeline.models.eoir", "EOIRConfig", "EOIR"),
        Architecture("sasnet", "orpam_pipeline.models.sasnet", "SASNetConfig", "SASNet", displacement=False),
        Architecture("sasnet-flow", "orpam_pipeline.models.sasnet", "SASNetFlowConfig", "SASNetFlow"),
        Architecture("atdt", "orpam_pipeline.models.atdt", "ATDTConfig", "ATDT"),
    )
}
DEFAULT_ARCH = "pcregnet"
"""What a stored config without an ``arch`` key is (checkpoints from before PCReg-Net-Flow)."""


def get_architecture(name: str) -> Architecture:
    """The architecture called ``name``; a one-line error naming the known ones otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise OrpamError(f"unknown architecture {name!r} (known: {', '.join(ARCHITECTURES)})") from None
