"""Field-name checks shared by the settings dataclasses that are rebuilt from plain dicts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any


def field_names(cls: Any) -> set[str]:
    """Names of the fields of a dataclass (type or instance)."""
    return {f.name for f in fields(cls)}


def unknown_keys(cls: Any, keys: Iterable[str]) -> list[str]:
    """Sorted keys that are not fields of ``cls`` (so a typo in a config surfaces instead of vanishing)."""
    return sorted(set(keys) - field_names(cls))
