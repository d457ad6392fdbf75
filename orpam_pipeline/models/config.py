"""What every network configuration shares: plain-dict (de)serialisation for code-free checkpoints."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, TypeVar

from orpam_pipeline.fieldnames import unknown_keys

C = TypeVar("C", bound="ModelConfig")


class ModelConfig:
    """Base of the architectures' config dataclasses (each a ``@dataclass`` with an ``arch`` field)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields, safe to store in a checkpoint."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build from :meth:`to_dict` output; unknown keys are an error so typos surface."""
        unknown = unknown_keys(cls, data)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
        return cls(**data)
