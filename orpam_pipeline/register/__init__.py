"""Registration methods behind one interface, and the engine that streams them over a store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.register.base import RegistrationMethod
from orpam_pipeline.register.baselines import CopyOdd, NoRegistration
from orpam_pipeline.register.pcregnet import InferenceSettings, PCRegNetMethod
from orpam_pipeline.register.pcregnet_flow import FlowInferenceSettings, PCRegNetFlowMethod
from orpam_pipeline.register.phase import PhaseCorrelation, PhaseSettings

METHODS: dict[str, Callable[..., RegistrationMethod]] = {
    NoRegistration.name: NoRegistration,
    CopyOdd.name: CopyOdd,
    PhaseCorrelation.name: PhaseCorrelation,
    PCRegNetMethod.name: PCRegNetMethod,
    PCRegNetFlowMethod.name: PCRegNetFlowMethod,
}
SETTINGS: dict[str, type] = {
    PhaseCorrelation.name: PhaseSettings,
    PCRegNetMethod.name: InferenceSettings,
    PCRegNetFlowMethod.name: FlowInferenceSettings,
}
DEFAULT_METHOD = PhaseCorrelation.name


def get_method(name: str, **options: Any) -> RegistrationMethod:
    """A fresh instance of the method called ``name``; ``options`` set fields of its settings."""
    try:
        factory = METHODS[name]
    except KeyError:
        known = ", ".join(sorted(METHODS))
        raise OrpamError(f"unknown method {name!r} (known: {known})") from None
    options = {k: v for k, v in options.items() if v is not None}
    if not options:
        return factory()
    settings_cls = SETTINGS.get(name)
    if settings_cls is None:
        raise OrpamError(f"method {name!r} takes no options (got {', '.join(sorted(options))})")
    try:
        return factory(settings_cls(**options))
    except TypeError as exc:
        raise OrpamError(f"bad option for method {name!r}: {exc}") from None


__all__ = ["METHODS", "DEFAULT_METHOD", "RegistrationMethod", "get_method"]
