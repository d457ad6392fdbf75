"""Declared settings: dataclass fields that carry their help, and ``key=value`` text parsed by their type.

Method settings (and other option groups) are dataclasses whose fields are made with :func:`setting`,
so one declaration gives the type, the default and the help that the CLI's ``--set``, ``orpam info``,
workflows and evaluate all read. Also the two value sets every command shares: devices and precisions.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from orpam_pipeline.errors import OrpamError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""Numeric precision of a network, for inference and training alike."""
DEVICES = ("auto", "cpu", "cuda", "cuda:N")
"""Where a network runs: ``auto`` picks CUDA when there is one."""
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def check_device(value: str) -> str:
    """``value`` when it names a device (auto, cpu, cuda, cuda:N); a one-line error otherwise."""
    if not isinstance(value, str) or not _DEVICE.match(value):
        raise OrpamError(f"device must be one of {', '.join(DEVICES)}, not {value!r}")
    return value


def check_precision(value: str) -> str:
    """``value`` when it is one of :data:`PRECISIONS`; a one-line error otherwise."""
    if value not in PRECISIONS:
        raise OrpamError(f"precision must be one of {', '.join(PRECISIONS)}, not {value!r}")
    return value


def setting(default: Any = MISSING, help: str = "", *, default_factory: Any = MISSING) -> Any:
    """A dataclass field that carries its help text (read by :func:`describe_settings`)."""
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class SettingInfo:
    """One declared setting: name, type as text, default and help."""

    name: str
    type: str
    default: Any
    help: str


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_text(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " | ".join(_type_text(a) for a in typing.get_args(tp))
    return "none" if tp is type(None) else getattr(tp, "__name__", str(tp))


def describe_settings(cls: type | None) -> list[SettingInfo]:
    """The declared settings of a settings dataclass (an empty list for None)."""
    if cls is None:
        return []
    hints = _hints(cls)
    out = []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else None
        out.append(SettingInfo(f.name, _type_text(hints[f.name]), default, f.metadata.get("help", "")))
    return out


def parse_value(text: str, tp: Any, name: str) -> Any:
    """Text from the command line read as type ``tp`` (bool, int, float, str, or an optional of one)."""
    options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    if type(None) in options and text.strip().lower() in ("none", "null", ""):
        return None
    for kind in (o for o in options if o is not type(None)):
        lowered = text.strip().lower()
        if kind is bool:
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            continue
        try:
            return kind(text.strip()) if kind in (int, float) else kind(text)
        except (TypeError, ValueError):
            continue
    raise OrpamError(f"setting {name}: cannot read {text!r} as {_type_text(tp)}")


def parse_assignments(cls: type | None, pairs: list[str], owner: str) -> dict[str, Any]:
    """``["key=value", ...]`` checked against the settings of ``cls`` and read by their declared types."""
    hints = _hints(cls) if cls is not None else {}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise OrpamError(f"--set {pair!r}: expected key=value")
        if key not in hints:
            known = ", ".join(sorted(hints)) or "none"
            raise OrpamError(f"--set {pair!r}: {owner} has no setting {key!r} (settings: {known})")
        out[key] = parse_value(raw, hints[key], key)
    return out
