"""Errors the command line prints as one line, without a traceback."""

from __future__ import annotations

import errno
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


def one_line(exc: BaseException, where: Path) -> str:
    """A single-line description of any failure, naming the file."""
    if isinstance(exc, OrpamError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        target = exc.filename or where
        text = (f"{target}: cannot write there ({exc.strerror}); choose an output folder you can write to, "
                "or fix its permissions")  # fmt: skip
    else:
        text = f"{where}: unexpected {type(exc).__name__}: {exc}"
    return " ".join(str(text).split())
