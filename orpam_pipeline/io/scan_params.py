"""Scan parameters a file carries beside its data: step (pixel) size, units of the positions, sampling rate,
frame interval.

Found by name among the file's small values as ``io/survey.py`` lists them: MATLAB struct fields as
``scan_params.step_size``, HDF5 attributes as ``path@name``, small ``.npz`` members and datasets by
name. Only the last part of a name counts, lower-cased with ``_`` and other separators removed, and a
unit suffix (``_um``, ``_mm``, ``_mhz``, ``_hz``, ...) gives the unit. Without a unit suffix a step is
taken in micrometres (metres below 0.001), a sampling rate by its size (Hz from 1e5, MHz from 20,
GHz below). The first match in sorted name order wins; every value used is recorded with its name.

The frame interval (:func:`find_frame_interval`) comes from a time (``frame_interval``, ``dt``, ...;
seconds unless a unit suffix ``_s``, ``_ms``, ``_us``, ``_ns`` says otherwise: time suffixes need the
``_`` because names such as ``fs`` end in a letter that reads as one) or from a frame rate (``fps``,
``frame_rate``; Hz unless ``_khz``/``_mhz``). A time below :data:`MIN_FRAME_INTERVAL_S` is not a frame
interval (a digitiser's sample interval is also often called ``dt``) and is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_UNIT = re.compile(r"^(?P<base>.*?)_?(?P<unit>mhz|ghz|khz|hz|msps|gsps|sps|um|µm|micron|microns|mm|nm)$")
RATE_NAMES = frozenset({"fs", "fsamp", "fsampling", "samplingrate", "samplerate", "samplingfrequency", "samplingfreq",
                        "samplefrequency", "samplefreq", "adcrate", "daqrate", "digitizerrate", "digitiserrate",
                        "srate", "samplingratemhz"})  # fmt: skip
STEP_NAMES = frozenset({"step", "stepsize", "scanstep", "scanstepsize", "pixelsize", "pixel", "spacing", "pitch",
                        "gridstep", "stepsz", "dstep"})  # fmt: skip
AXIS_STEP = re.compile(r"^(?:(?:d|step|stepsize|pixelsize|pixel|spacing|pitch|scanstep)(?P<a>[xy])|"
                       r"(?P<b>[xy])(?:step|stepsize|pixelsize|spacing|pitch|scanstep))$")  # fmt: skip
UNIT_NAMES = frozenset({"unit", "units", "posunit", "posunits", "positionunit", "positionunits", "stageunit",
                        "stageunits", "positionsunit", "positionsunits"})  # fmt: skip
LENGTH_UM = {"um": 1.0, "µm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0, "micrometers": 1.0,
             "micrometre": 1.0, "micrometres": 1.0, "mm": 1000.0, "millimeter": 1000.0, "millimeters": 1000.0,
             "nm": 1e-3, "m": 1e6}  # fmt: skip
_TIME_UNIT = re.compile(r"^(?P<base>.+?)_(?P<unit>s|sec|secs|seconds|ms|msec|us|µs|usec|ns|min)$")
INTERVAL_NAMES = frozenset({"frameinterval", "finterval", "frametime", "frameperiod", "framedt", "dt",
                            "timeinterval", "timeincrement", "timestep", "tstep", "dtframe", "framedelay"})  # fmt: skip
FRAME_RATE_NAMES = frozenset({"framerate", "fps", "framefrequency", "framefreq", "framespersecond"})
TIME_S = {"s": 1.0, "sec": 1.0, "secs": 1.0, "seconds": 1.0, "ms": 1e-3, "msec": 1e-3, "us": 1e-6, "µs": 1e-6,
          "usec": 1e-6, "ns": 1e-9, "min": 60.0}  # fmt: skip
MIN_FRAME_INTERVAL_S = 1e-4
"""Shortest time taken as a frame interval (a 10 kHz frame rate, beyond any OR-PAM scanner)."""
RATE_MHZ = {"mhz": 1.0, "msps": 1.0, "ghz": 1000.0, "gsps": 1000.0, "khz": 1e-3, "hz": 1e-6, "sps": 1e-6}


@dataclass(frozen=True)
class Found:
    """One parameter: its value in the pipeline's unit, the name it was found under and the value there."""

    value: float
    name: str
    stored: Any

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "from": self.name, "stored": self.stored}


def _last(name: str) -> str:
    return re.split(r"[./@]", name)[-1].lower()


def _number(value: Any) -> float | None:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value > 0 and value == value and value != float("inf") else None


def _split(name: str) -> tuple[str, str | None]:
    """Base name without separators, and the unit suffix (or None)."""
    last = _last(name)
    match = _UNIT.match(last)
    base, unit = (match["base"], match["unit"]) if match and match["base"] else (last, None)
    return re.sub(r"[^a-z0-9]", "", base), unit


def _rate_mhz(value: float, unit: str | None) -> float:
    if unit in RATE_MHZ:
        return value * RATE_MHZ[unit]
    return value / 1e6 if value >= 1e5 else value if value >= 20 else value * 1000.0


def _length_um(value: float, unit: str | None) -> float:
    if unit in LENGTH_UM:
        return value * LENGTH_UM[unit]
    return value * 1e6 if value < 1e-3 else value


def find_scan_params(metadata: dict[str, Any]) -> dict[str, Found]:
    """``sampling_rate_mhz``, ``step_um`` (both axes), ``step_x_um``/``step_y_um`` (stage x / y) and
    ``positions_unit_um`` (micrometres per positions unit) found in ``metadata``."""
    found: dict[str, Found] = {}

    def keep(key: str, value: float, name: str, stored: Any) -> None:
        if key not in found:
            found[key] = Found(round(value, 9), name, stored)

    for name in sorted(metadata):
        stored = metadata[name]
        base, unit = _split(name)
        if isinstance(stored, str):
            if base in UNIT_NAMES and stored.strip().lower() in LENGTH_UM:
                keep("positions_unit_um", LENGTH_UM[stored.strip().lower()], name, stored)
            continue
        value = _number(stored)
        if value is None:
            continue
        if base in RATE_NAMES and unit not in LENGTH_UM:
            keep("sampling_rate_mhz", _rate_mhz(value, unit), name, stored)
        elif unit not in RATE_MHZ and base in STEP_NAMES:
            keep("step_um", _length_um(value, unit), name, stored)
        elif unit not in RATE_MHZ and (axis := AXIS_STEP.match(base)):
            keep(f"step_{axis['a'] or axis['b']}_um", _length_um(value, unit), name, stored)
    return found


def pixel_um(found: dict[str, Found], step: tuple[float, float], fast: int) -> tuple[dict[str, float], str] | None:
    """Micrometres per pixel along (y, x) and where that came from, or None when the file does not say.

    ``step`` is the grid step along (y, x) in positions units; ``fast`` the positions column along the
    lines (column 0 is stage x, column 1 stage y). A units attribute of the positions scales the
    steps; otherwise per-axis step fields apply, then one step for both axes when the grid is square.
    """
    if "positions_unit_um" in found:
        unit = found["positions_unit_um"]
        return {"y": step[0] * unit.value, "x": step[1] * unit.value}, f"positions x {unit.name}"
    stage = ("x", "y") if fast == 0 else ("y", "x")
    per_axis = [found.get(f"step_{a}_um") for a in stage]
    if all(per_axis):
        y, x = per_axis
        assert y is not None and x is not None
        return {"y": y.value, "x": x.value}, f"{y.name}, {x.name}"
    single = found.get("step_um")
    if single is not None and abs(step[0] - step[1]) <= 0.02 * max(step):
        return {"y": single.value, "x": single.value}, single.name
    return None


def _time_split(name: str) -> tuple[str, str | None]:
    """Base name without separators and a time unit suffix (``_s``, ``_ms``, ...), or the plain split."""
    match = _TIME_UNIT.match(_last(name))
    if match is None:
        return _split(name)
    return re.sub(r"[^a-z0-9]", "", match["base"]), match["unit"]


def _interval_s(name: str, value: float) -> float | None:
    """Seconds per frame a value under ``name`` states, or None when the name is not a frame time or rate."""
    base, unit = _time_split(name)
    if base in INTERVAL_NAMES and (unit is None or unit in TIME_S):
        return value * TIME_S.get(unit or "s", 1.0)
    if base in FRAME_RATE_NAMES and (unit is None or unit in RATE_MHZ):
        return 1.0 / (value * RATE_MHZ[unit] * 1e6) if unit else 1.0 / value
    return None


def find_frame_interval(metadata: dict[str, Any]) -> Found | None:
    """The time between frames (seconds) found in ``metadata``: a frame interval, else a frame rate inverted.

    Kept apart from :func:`find_scan_params`, whose result point scans record in their provenance.
    """
    for name in sorted(metadata):
        value = _number(metadata[name])
        seconds = None if value is None else _interval_s(name, value)
        if seconds is not None and seconds >= MIN_FRAME_INTERVAL_S:
            return Found(round(seconds, 12), name, metadata[name])
    return None


def file_pixel_um(found: dict[str, Found]) -> tuple[Found, Found] | None:
    """The step along a file's own y (rows) and x (columns), from per-axis names or one step for both."""
    y, x = found.get("step_y_um"), found.get("step_x_um")
    if y is not None and x is not None:
        return y, x
    single = found.get("step_um")
    return None if single is None else (single, single)
