"""Atomic file writes: a temporary ``.<name>.partial-<pid>`` beside the target, then one rename.

A killed writer leaves at most such a temporary behind, never a half-written target;
:func:`orpam_pipeline.store.resume.clean_strays` recognises the name (:data:`OWN_PARTIAL`) and removes it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

OWN_PARTIAL = re.compile(r"^\..+\.partial-\d+$")
"""Names of this package's temporaries (see :func:`partial_path`)."""


def partial_path(target: Path) -> Path:
    """The temporary name beside ``target`` that this process writes before renaming it into place."""
    target = Path(target)
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, no newline translation) to ``path`` so that it is whole or absent."""
    path = Path(path)
    tmp = partial_path(path)
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
