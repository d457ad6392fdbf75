"""Groups of command-line parameters that several commands share, declared once.

Typer reads a command's parameters from its signature, so options shared by ``run``, ``ingest``,
``register`` and ``evaluate`` would otherwise be written out in each. A :class:`Group` holds them
once; :func:`with_groups` puts a group's parameters into a command's signature in place of one
parameter of that name, and hands the command the group's values as one dict.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

FROM_GROUP: Any = None
"""Placeholder default of a command parameter that :func:`with_groups` replaces by a group."""


@dataclass(frozen=True)
class Group:
    """Named parameters (an ``Annotated`` type with its Typer option, and a default) shared by commands."""

    params: tuple[inspect.Parameter, ...]

    @classmethod
    def of(cls, **params: tuple[Any, Any]) -> Group:
        """``Group.of(name=(Annotated[...], default), ...)``, in the order the options show in ``--help``."""
        return cls(tuple(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
                         for name, (annotation, default) in params.items()))  # fmt: skip

    def __add__(self, other: Group) -> Group:
        return Group(self.params + other.params)


def with_groups(**groups: Group) -> Callable[[F], F]:
    """Replace each parameter named like a keyword of ``groups`` by that group's parameters.

    The command then receives, in that parameter, a dict of the group's values by name.
    """

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        params: list[inspect.Parameter] = []
        for param in signature.parameters.values():
            if param.name in groups:
                params.extend(groups[param.name].params)
            else:
                params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY) if params and
                              params[-1].kind is inspect.Parameter.KEYWORD_ONLY else param)  # fmt: skip

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            for name, group in groups.items():
                kwargs[name] = {p.name: kwargs.pop(p.name) for p in group.params}
            return fn(*args, **kwargs)

        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command  # type: ignore[return-value]

    return decorate
