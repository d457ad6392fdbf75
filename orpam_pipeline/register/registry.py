"""The registration methods this installation knows: one line per method, read by everything else.

The CLI (``--method``, ``--set``), ``orpam info``, workflows, ``orpam evaluate`` and ``orpam train``
all look methods up here. A new method is one module defining a :class:`RegistrationMethod` subclass
plus one line in :data:`BUILTIN` (or a call of :func:`register_method`, e.g. from a plugin or a test).
"""

from __future__ import annotations

from typing import Any

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.register.atdt import ATDTMethod
from orpam_pipeline.register.base import RegistrationMethod
from orpam_pipeline.register.baselines import CopyOdd, NoRegistration
from orpam_pipeline.register.eoir import EOIRMethod
from orpam_pipeline.register.pcregnet import PCRegNetMethod
from orpam_pipeline.register.pcregnet_flow import PCRegNetFlowMethod
from orpam_pipeline.register.phase import PhaseCorrelation
from orpam_pipeline.register.sasnet import SASNetFlowMethod, SASNetMethod
from orpam_pipeline.settings import parse_assignments

BUILTIN: tuple[type[RegistrationMethod], ...] = (
    NoRegistration,
    CopyOdd,
    PhaseCorrelation,
    PCRegNetMethod,
    PCRegNetFlowMethod,
    EOIRMethod,
    SASNetMethod,
    SASNetFlowMethod,
    ATDTMethod,
)
DEFAULT_METHOD = PhaseCorrelation.name
METHODS: dict[str, type[RegistrationMethod]] = {cls.name: cls for cls in BUILTIN}
"""Name -> method class, in the order ``orpam info`` lists them."""

RENAMED_SETTINGS = {"profile": "line_profile"}
"""Old setting names still accepted (with a warning) for one release."""


def register_method(cls: type[RegistrationMethod]) -> type[RegistrationMethod]:
    """Add a method class to the registry (usable as a decorator); a name already taken is an error."""
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise OrpamError(f"a registration method named {cls.name!r} already exists")
    METHODS[cls.name] = cls
    return cls


def unregister_method(name: str) -> None:
    """Remove a method added with :func:`register_method` (built-in methods stay)."""
    if any(cls.name == name for cls in BUILTIN):
        raise OrpamError(f"{name!r} is a built-in method")
    METHODS.pop(name, None)


def method_class(name: str) -> type[RegistrationMethod]:
    """The class registered as ``name``; a one-line error listing the known names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise OrpamError(f"unknown method {name!r} (known: {', '.join(METHODS)})") from None


def _renamed(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in settings.items():
        new = RENAMED_SETTINGS.get(key)
        if new is not None:
            import warnings

            warnings.warn(f"method setting {key!r} is now {new!r}", DeprecationWarning, stacklevel=3)
            key = new
        out[key] = value
    return out


def get_method(name: str, **settings: Any) -> RegistrationMethod:
    """A fresh instance of method ``name``; ``settings`` set fields of its settings (None = default)."""
    cls = method_class(name)
    settings = _renamed(name, {k: v for k, v in settings.items() if v is not None})
    if not settings:
        return cls()
    if cls.settings_type is None:
        raise OrpamError(f"method {name!r} takes no settings (got {', '.join(sorted(settings))})")
    try:
        return cls(cls.settings_type(**settings))
    except TypeError as exc:
        raise OrpamError(f"bad setting for method {name!r}: {exc}") from None


def accepted_settings(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``settings`` that method ``name`` declares (evaluate passes one set to many methods)."""
    from dataclasses import fields

    cls = method_class(name)
    known = {f.name for f in fields(cls.settings_type)} if cls.settings_type is not None else set()
    return {k: v for k, v in _renamed(name, settings).items() if k in known}


def parse_method_settings(name: str, pairs: list[str]) -> dict[str, Any]:
    """``--set key=value`` strings checked against method ``name``'s declared settings and typed."""
    return parse_assignments(method_class(name).settings_type, pairs, f"method {name!r}")


def trained_architecture(method: str) -> str:
    """The architecture whose weights ``orpam train --method METHOD`` learns; an error for methods without one."""
    arch = method_class(method).architecture
    if arch is None:
        trainable = ", ".join(n for n, c in METHODS.items() if c.architecture)
        raise OrpamError(f"method {method!r} has no network to train (trainable: {trainable})")
    return arch
