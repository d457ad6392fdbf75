"""Run the checks a store is due for and record their warnings in it.

Each group of checks runs once per result it looks at: the store's group attribute ``checked``
maps ``frames`` to the ingest fingerprint and ``registration`` to the register fingerprint they ran
on, so a rerun that skips a complete stage does not check it again, and a new registration is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zarr

from orpam_pipeline.checks import Finding, record_warnings, recorded_warnings
from orpam_pipeline.checks.frames import STAGE as FRAMES_STAGE
from orpam_pipeline.checks.frames import Samples, check_frames
from orpam_pipeline.checks.registration import STAGE as REGISTRATION_STAGE
from orpam_pipeline.checks.registration import check_registration
from orpam_pipeline.store.layout import resolve_store_path
from orpam_pipeline.store.lock import store_lock
from orpam_pipeline.store.stage import stage_record

CHECKED_ATTR = "checked"
_CHECKS = ((FRAMES_STAGE, "ingest", check_frames), (REGISTRATION_STAGE, "register", check_registration))


def _fingerprint(group: zarr.Group, stage: str) -> str | None:
    """The fingerprint of ``stage`` when it is complete, else None."""
    record = stage_record(group, stage) or {}
    return record.get("fingerprint") if record.get("complete") else None


def update_checks(store: Path, samples: Samples | None = None) -> list[Finding]:
    """Check what the store's complete stages produced (when not already checked) and return every
    recorded warning, those of ingest included. ``samples``: the sampled frames as the register stage
    kept them (:data:`~orpam_pipeline.checks.frames.Samples`), so that no check reads the store for them."""
    store = resolve_store_path(store)
    with store_lock(store.parent):
        group = zarr.open_group(store, mode="r+")
        checked: dict[str, Any] = dict(group.attrs.get(CHECKED_ATTR, {}))
        for name, stage, check in _CHECKS:
            fp = _fingerprint(group, stage)
            if fp is None:
                if name in checked:
                    record_warnings(group, name, [])
                    checked.pop(name)
                continue
            if checked.get(name) != fp:
                record_warnings(group, name, check(group, samples))
                checked[name] = fp
        if dict(group.attrs.get(CHECKED_ATTR, {})) != checked:
            group.attrs[CHECKED_ATTR] = checked
        return recorded_warnings(group)


def store_warnings(store: Path) -> list[Finding]:
    """The warnings recorded in a store, without running anything."""
    return recorded_warnings(zarr.open_group(resolve_store_path(store), mode="r"))
