"""Checks that catch wrong settings: each finding is a warning with a stable code and a message that
names the option to change. Warnings are kept in the store's group attribute ``warnings`` (a list of
``{"code", "message", "stage"}``), shown in the terminal, in ``report.json`` under ``warnings`` and at
the top of ``report.html``; ``--strict`` turns them into a failure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

WARNINGS_ATTR = "warnings"


@dataclass(frozen=True)
class Finding:
    """One warning: ``code`` is stable (tests and scripts match it), ``message`` says what to change."""

    code: str
    message: str
    stage: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def recorded_warnings(group: Any) -> list[Finding]:
    """The warnings recorded in a store's group attributes."""
    return [Finding(**w) for w in group.attrs.get(WARNINGS_ATTR, [])]


def record_warnings(group: Any, stage: str, findings: list[Finding]) -> None:
    """Replace the warnings of ``stage`` in the group attributes by ``findings`` (others are kept)."""
    kept = [w for w in group.attrs.get(WARNINGS_ATTR, []) if w.get("stage") != stage]
    group.attrs[WARNINGS_ATTR] = kept + [f.to_dict() for f in findings]
