"""Errors the command line prints as one line, without a traceback."""

from __future__ import annotations

from pathlib import Path


class OrpamError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole message."""


class ScanError(OrpamError):
    """A scan (or one of its files) that cannot be read or used."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class StoreError(OrpamError):
    """A zarr store that is missing, incomplete, or already present."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
