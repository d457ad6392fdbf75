"""``ReadSpec``: how a file's array becomes frames, apart from the file itself.

Which variable, how its axes are named (``--axes``, or the older ``--depth-axis``), how a depth axis
is reduced, for headerless binary files their dtype, shape and order, and for point scans the name
of the positions table (``--positions``). Built from the options
(``ScanOptions.read_spec``) and rebuilt from a store's ingest record (``orpam repair``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import OrpamError
from .axes import check_axes
from .binary import RawLayout
from .reduce import Reduction


@dataclass(frozen=True)
class ReadSpec:
    """Everything the readers need besides the path; the defaults read files as earlier releases did."""

    variable: str | None = None
    axes: str | None = None
    depth_axis: int | None = None
    reduction: Reduction = field(default_factory=Reduction)
    raw: RawLayout | None = None
    positions: str | None = None

    def __post_init__(self) -> None:
        if self.positions is not None and (self.axes is not None or self.depth_axis is not None):
            flag = "--axes" if self.axes is not None else "--depth-axis"
            raise OrpamError(f"--positions places every A-line on the grid its positions define; {flag} does not "
                             "apply (the depth axis is the one that does not count the A-lines)")  # fmt: skip
        if self.axes is not None:
            object.__setattr__(self, "axes", check_axes(self.axes))
            if self.depth_axis is not None:
                raise OrpamError("--axes replaces --depth-axis: name the depth axis z in --axes instead of combining them")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ReadSpec:
        """The spec an ingest record's parameters were read with."""
        raw = None
        if params.get("reader") == "binary":
            order = params.get("order", "C")
            stored = tuple(int(s) for s in params["source_shape"])
            raw = RawLayout(dtype=params["source_dtype"], shape=stored[::-1] if order == "F" else stored, order=order)
        reduction = Reduction.from_params(params["map"]) if params.get("map") else Reduction()
        return cls(variable=params.get("variable"), axes=params.get("axes"), depth_axis=params.get("depth_axis"),
                   reduction=reduction, raw=raw, positions=params.get("positions"))  # fmt: skip
