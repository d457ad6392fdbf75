"""What one pixel and one frame are in a report: micrometres and seconds when the store knows them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


def _positive(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


@dataclass(frozen=True)
class Units:
    """Pixel pitch (µm, ``x`` is the line pitch of a full frame) and frame interval (s); None when unknown."""

    pixel_y_um: float | None = None
    pixel_x_um: float | None = None
    frame_interval_s: float | None = None

    @classmethod
    def from_physical(cls, physical: Mapping[str, Any] | None) -> Units:
        """From the store's ``physical`` attribute or report.json's ``physical`` key."""
        physical = physical or {}
        pixel = physical.get("pixel_um")
        y = x = None
        if isinstance(pixel, Mapping):
            y, x = _positive(pixel.get("y")), _positive(pixel.get("x"))
        elif pixel is not None:
            y = x = _positive(pixel)
        return cls(y, x, _positive(physical.get("frame_interval_s")))

    @property
    def timed(self) -> bool:
        return self.frame_interval_s is not None

    def times(self, indices: np.ndarray) -> np.ndarray:
        """Frame indices as the time axis shows them: seconds when the interval is known, else indices."""
        t = np.asarray(indices, dtype=np.float64)
        return t * self.frame_interval_s if self.frame_interval_s is not None else t

    @property
    def time_label(self) -> str:
        return "time (s)" if self.timed else "frame"

    def displacement_um(self, px: float) -> float | None:
        """A displacement along Y (pixels) in µm, when the pixel height is known."""
        return px * self.pixel_y_um if self.pixel_y_um is not None else None


def nice_length(target: float) -> float:
    """The largest 1, 2 or 5 × 10^k not above ``target`` (a scale bar's length)."""
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"a scale bar needs a positive length, got {target}")
    power = 10.0 ** math.floor(math.log10(target))
    return max(m * power for m in (1.0, 2.0, 5.0) if m * power <= target * (1 + 1e-12))


def format_um(length: float) -> str:
    """A scale bar label: ``50 µm``, ``0.5 µm``, ``2 mm``."""
    if length >= 1000:
        return f"{length / 1000:g} mm"
    return f"{length:g} µm"
