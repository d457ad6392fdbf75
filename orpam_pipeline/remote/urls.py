"""Telling URLs from paths, opening their filesystem, and naming them without secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from orpam_pipeline.errors import OrpamError

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def is_url(value: str | Path | None) -> bool:
    """True for ``scheme://…`` other than ``file://`` (a local path stays a path)."""
    if value is None or isinstance(value, Path):
        return False
    match = _SCHEME.match(str(value))
    return bool(match) and match.group(1).lower() not in ("file", "local")


def as_location(value: str | Path) -> str | Path:
    """A command-line location: the URL as text, or a :class:`Path` (``file://`` prefixes dropped)."""
    text = str(value)
    if is_url(text):
        return text.rstrip("/")
    return Path(text.removeprefix("file://"))


def redact(url: str) -> str:
    """``url`` without a ``user:password@`` part, for messages and records."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1", str(url))


def parse_storage_options(pairs: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """``--storage-option key=value`` pairs as fsspec keyword arguments.

    Values are read as JSON when they parse (``true``, ``3``, ``{"a": 1}``), else kept as text; a key
    with dots (``client_kwargs.endpoint_url=…``) fills a nested dictionary.
    """
    options: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, raw = str(pair).partition("=")
        if not sep or not key.strip():
            raise OrpamError(f"--storage-option {pair.split('=')[0]!r}: expected KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        where = options
        *parents, leaf = key.strip().split(".")
        for part in parents:
            where = where.setdefault(part, {})
            if not isinstance(where, dict):
                raise OrpamError(f"--storage-option {key}: {part} is given both as a value and as a group")
        where[leaf] = value
    return options


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` and the path inside it. Credentials come from the options or the
    usual environment and configuration files (``AWS_*``, ``~/.aws``); they are never printed."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:
        raise OrpamError(f"{redact(url)}: this URL needs an extra package ({exc}); for s3:// install s3fs "
                         "(pip install 'orpam-pipeline[s3]')") from None  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise OrpamError(f"{redact(url)}: cannot open its storage: {exc}") from None


def join(url: str, *parts: str) -> str:
    """``url`` with ``parts`` appended, ``/``-separated."""
    return "/".join([url.rstrip("/"), *(p.strip("/") for p in parts)])
