"""The small interface every registration method implements.

The engine hands a method blocks of whole frames already split into forward (``odd``, fixed) and
backward (``even``, moving) columns. A method that needs a whole-sequence estimate declares
``plan_width > 0``: the engine first runs :meth:`RegistrationMethod.measure` on every block (a cheap
reduction to ``plan_width`` numbers per frame), gives the gathered ``(T, plan_width)`` table to
:meth:`RegistrationMethod.plan`, which returns a per-frame parameter table, and passes the rows of
that table belonging to each block to :meth:`RegistrationMethod.apply`. Per-frame tables keep the
work independent of the chunking, so chunked and whole-array runs give identical results.

What :meth:`RegistrationMethod.apply` reports may depend on the plan (``phase`` reports a field only
when lines jump): the engine asks :meth:`RegistrationMethod.displacement_kind` after the plan and
sizes the ``displacement`` array from its answer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np

DisplacementKind = Literal["none", "profile", "field"]


class RegistrationMethod(ABC):
    """Registers backward (even) lines onto forward (odd) lines, a block of frames at a time.

    A method declares itself entirely in its class: ``name``, ``kind``, ``description``, what it
    reports (``displacement``), its settings dataclass (``settings_type``, fields made with
    :func:`orpam_pipeline.settings.setting`) and whether it runs a network (``uses_network``, with
    the ``architecture`` it trains). The registry (:mod:`orpam_pipeline.register.registry`) lists the
    classes; the CLI, ``orpam info``, workflows, evaluate and training read these declarations.
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    description: ClassVar[str] = ""
    displacement: ClassVar[DisplacementKind] = "none"
    """What :meth:`apply` reports by default: nothing, a (t, Y) profile along the fast axis, or a (t, Y, Xe) field."""
    settings_type: ClassVar[type | None] = None
    """Dataclass of the method's settings (None: it has none)."""
    uses_network: ClassVar[bool] = False
    """Runs a network: takes a checkpoint, a device and a precision, and is preloaded once per worker."""
    architecture: ClassVar[str | None] = None
    """Network architecture (``orpam_pipeline.models.architectures``) that ``orpam train --method`` trains."""

    plan_width: int = 0
    """Numbers per frame that :meth:`measure` returns; 0 means no first pass."""

    def __init__(self, settings: Any = None) -> None:
        cls = type(self).settings_type
        self.settings = settings if settings is not None or cls is None else cls()

    def describe(self) -> dict[str, Any]:
        """What ``orpam info`` shows about the method (network methods add their checkpoint)."""
        from orpam_pipeline.settings import describe_settings

        return {"name": self.name, "kind": self.kind, "description": self.description,
                "displacement": self.displacement, "uses_network": self.uses_network,
                "settings": [vars(s) for s in describe_settings(self.settings_type)]}  # fmt: skip

    def configure(self, height: int, width: int, first_line: str) -> None:
        """Called once with the frame geometry before any block is processed."""

    def params(self) -> dict[str, Any]:
        """JSON-able parameters recorded in the store."""
        return {}

    def resources(self) -> dict[str, float]:
        """Cluster resources each block needs (e.g. ``{"GPU": 1}``); honoured where a cluster advertises them."""
        return {}

    def preload(self, threads: int = 1) -> None:
        """Load what :meth:`apply` needs once per worker process (models), using up to ``threads`` threads."""

    def measure(self, odd: np.ndarray, even: np.ndarray) -> np.ndarray:
        """First pass: per-frame statistics, shape ``(t, plan_width)``."""
        raise NotImplementedError

    def plan(self, stats: np.ndarray) -> np.ndarray:
        """Turn the whole sequence's statistics into a per-frame parameter table ``(T, K)``."""
        raise NotImplementedError

    def displacement_kind(self) -> DisplacementKind:
        """What :meth:`apply` reports for the current plan; asked after :meth:`plan` (default: ``displacement``)."""
        return type(self).displacement

    @abstractmethod
    def apply(
        self, odd: np.ndarray, even: np.ndarray, plan_rows: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Return ``(registered_even, displacement)`` for one block; displacement may be None."""

    def plan_summary(self, plan: np.ndarray) -> dict[str, Any]:
        """Small JSON-able digest of the plan for the store attributes."""
        return {}
