"""Registration methods behind one interface, and the engine that streams them over a store."""

from orpam_pipeline.register.base import RegistrationMethod
from orpam_pipeline.register.registry import (
    DEFAULT_METHOD,
    METHODS,
    accepted_settings,
    get_method,
    method_class,
    parse_method_settings,
    register_method,
    unregister_method,
)

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "RegistrationMethod",
    "accepted_settings",
    "get_method",
    "method_class",
    "parse_method_settings",
    "register_method",
    "unregister_method",
]
