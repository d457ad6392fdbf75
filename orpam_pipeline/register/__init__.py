"""Registration methods behind one interface, and the engine that streams them over a store."""

from __future__ import annotations

from collections.abc import Callable

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.register.base import RegistrationMethod
from orpam_pipeline.register.baselines import CopyOdd, NoRegistration
from orpam_pipeline.register.phase import PhaseCorrelation

METHODS: dict[str, Callable[[], RegistrationMethod]] = {
    NoRegistration.name: NoRegistration,
    CopyOdd.name: CopyOdd,
    PhaseCorrelation.name: PhaseCorrelation,
}
DEFAULT_METHOD = PhaseCorrelation.name


def get_method(name: str) -> RegistrationMethod:
    """A fresh instance of the registration method called ``name``."""
    try:
        factory = METHODS[name]
    except KeyError:
        known = ", ".join(sorted(METHODS))
        raise OrpamError(f"unknown method {name!r} (known: {known})") from None
    return factory()


__all__ = ["METHODS", "DEFAULT_METHOD", "RegistrationMethod", "get_method"]
