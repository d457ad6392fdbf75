"""``orpam inspect``: what a file or directory holds, what the readers will do with it, a guess of its
axes and the ``orpam run`` command line that reads it right.

Only headers, small values and bounded samples are read (``io/survey.py``, ``io/axes_guess.py``).
The result is one JSON-able dict (docs/inspect.md); the CLI prints it or dumps it with ``--json``.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ScanError
from ._base import one_line, plan_frames
from .axes_guess import AxesGuess, guess_axes
from .discover import ScanEntry, discover_scans
from .grid import GridError, build_grid
from .physical import stated
from .pointscan import aline_axes, as_table, find_pair
from .readers import inspect_file
from .survey import ArrayInfo, FileSurvey, fill_ranges, physical, survey_file

OUT_PLACEHOLDER = "OUT"


def _user_perm(layout_perm: tuple[int, ...], reader: str) -> tuple[int, ...]:
    """The user-order axis of each pipeline axis (a v7.3 file's stored axes are MATLAB's reversed)."""
    n = len(layout_perm)
    return tuple(n - 1 - p for p in layout_perm) if reader == "mat-v7.3" else tuple(layout_perm)


def _candidate(survey: FileSurvey) -> ArrayInfo | None:
    """The largest numeric array with at least two axes longer than 1 (when the reader needs --variable)."""
    pool = [a for a in survey.arrays if a.numeric and sum(1 for s in a.shape if s > 1) >= 2]
    return max(pool, key=lambda a: int(np.prod(a.shape)), default=None)


def _conventional(perm: tuple[int, ...], ndim: int) -> str:
    """Letters the readers assume without options: pipeline ``(T, Y, X)`` or ``(Y, X)``."""
    letters = [""] * ndim
    for a, name in zip(perm, ("t", "y", "x") if ndim == 3 else ("y", "x")):
        letters[a] = name
    return "".join(letters) if all(letters) else ""


def _suggest(guess: AxesGuess, conventional: str, perm: tuple[int, ...], variable: str | None) -> dict[str, Any]:
    """The options of the suggested command, and the equivalents of today's readers."""
    options: dict[str, Any] = {}
    if variable is not None:
        options["variable"] = variable
    letters = guess.letters
    if "?" in letters or letters == conventional:
        return options
    swapped = conventional.translate(str.maketrans("xy", "yx")) if conventional else ""
    if "z" not in letters and letters == swapped:
        options["scan_lines"] = "rows"
        return options
    options["axes"] = letters
    if "z" in letters:
        depth = letters.index("z")
        rest = "".join(letters[a] for a in perm if a != depth)
        if rest in ("tyx", "yx", "txy", "xy"):
            options["depth_axis"] = perm.index(depth)
            if rest.endswith("xy"):
                options["scan_lines"] = "rows"
    return options


def _command(path: Path, options: dict[str, Any], axes: bool = True) -> str:
    """The ``orpam run`` line for ``options``: ``--axes`` names every axis (docs/inspect.md); with
    ``axes=False`` the same with ``--depth-axis`` (pipeline order) and ``--scan-lines``."""
    parts = ["orpam", "run", str(path), OUT_PLACEHOLDER]
    if "variable" in options:
        parts += ["--variable", str(options["variable"])]
    if "positions" in options:
        parts += ["--positions", str(options["positions"])]
    if axes and "axes" in options:
        parts += ["--axes", str(options["axes"])]
    else:
        if options.get("depth_axis") is not None:
            parts += ["--depth-axis", str(options["depth_axis"])]
        if options.get("scan_lines") == "rows":
            parts += ["--scan-lines", "rows"]
    return " ".join(shlex.quote(p) for p in parts)


def _suggestion(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    """The suggested command, and its spelling with ``--depth-axis`` where that says the same."""
    out: dict[str, Any] = {"options": options, "command": _command(path, options)}
    if "axes" in options and "depth_axis" in options:
        out["equivalent"] = _command(path, options, axes=False)
    return out


def _reading(path: Path, variable: str | None, depth_axis: int | None) -> dict[str, Any]:
    """What the readers do with the file given ``variable`` and ``depth_axis``: frames and frame shape, or why not."""
    try:
        layout = inspect_file(path, variable)
        plan = plan_frames(path, layout.pipeline_shape, depth_axis)
    except ScanError as exc:
        return {"ok": False, "error": exc.reason}
    return {"ok": True, "reader": layout.reader, "variable": layout.variable, "frames": plan.shape[0],
            "frame_shape": list(plan.shape[1:]), "depth_axis": depth_axis}  # fmt: skip


def inspect_file_report(path: Path, variable: str | None = None) -> dict[str, Any]:
    """The inspection of one file (keys in docs/inspect.md)."""
    path = Path(path)
    survey = survey_file(path)
    fill_ranges(survey)
    report: dict[str, Any] = {
        "path": str(path),
        "format": survey.kind,
        "order": survey.order,
        "arrays": [a.to_dict() for a in survey.arrays],
        "metadata": survey.metadata,
        "physical": sorted(k for k in survey.metadata if physical(k)),
    }
    as_is = _reading(path, variable, None)
    pair = find_pair([(a.name, a.shape, a.numeric) for a in survey.arrays if a.name is not None])
    if pair is not None and variable in (None, pair[1]):
        point = _point_scan(path, survey, pair, variable, as_is)
        if "error" not in point["point_scan"]:
            report.update(point)
            return report
        report["point_scan"] = point["point_scan"]  # named, but the suggestion stays the readers' own
    chosen_name = as_is.get("variable") if as_is["ok"] else variable
    need_variable = variable
    if not as_is["ok"] and variable is None:
        best = _candidate(survey)
        if best is not None and best.name is not None and "--variable" in as_is["error"]:
            chosen_name = need_variable = best.name
    try:
        layout = inspect_file(path, chosen_name)
    except ScanError as exc:
        report.update(scan=None, reading=as_is, axes=None, suggestion=None, error=exc.reason)
        return report
    info = next((a for a in survey.arrays if (a.name or None) == (layout.variable or None)), None)
    shape = info.shape if info is not None else tuple(layout.source_shape)
    perm = _user_perm(layout.perm, layout.reader)
    guess = guess_axes(lambda index: survey.read(layout.variable, index), shape, perm)
    options = _suggest(guess, _conventional(perm, len(shape)), perm, need_variable)
    report.update(
        scan={"variable": layout.variable, "shape": list(shape),
              "dtype": info.dtype if info else str(layout.source_dtype)},  # fmt: skip
        stated=stated(layout),
        reading=as_is,
        axes=guess.to_dict(),
        frames=_frames(guess.letters, shape),
        suggestion=_suggestion(path, options),
    )
    return report


def _point_scan(
    path: Path, survey: FileSurvey, pair: tuple[str, str, int, bool], variable: str | None, as_is: dict[str, Any]
) -> dict[str, Any]:
    """A positions table ``(N, 2|3)`` beside A-lines ``(N, Z)``: the grid the positions give, and ``--positions``."""
    positions, alines, n, alone = pair
    info = next(a for a in survey.arrays if a.name == alines)
    fit = aline_axes(info.shape, n)
    assert fit is not None
    found: dict[str, Any] = {"positions": positions, "alines": alines, "count": n}
    frames = None
    try:
        table = survey.read(positions, tuple(slice(None) for _ in range(2)))
        if table is None:
            raise GridError("the positions are too large to read here")
        grid = build_grid(as_table(table))
        found.update({k: v for k, v in grid.record().items() if k in ("pattern", "first_line", "frames_from", "step")})
        frames = {"frames": grid.frames, "frame_shape": [grid.rows, grid.cols], "depth": int(info.shape[fit[1]])}
    except Exception as exc:  # a table that cannot be read or gives no grid is named, not fatal
        found["error"] = str(exc) if isinstance(exc, GridError) else f"cannot read the positions: {one_line(exc)}"
    options: dict[str, Any] = {} if alone and variable is None else {"variable": alines}
    options["positions"] = positions
    return {"scan": {"variable": alines, "shape": list(info.shape), "dtype": info.dtype}, "reading": as_is,
            "axes": None, "point_scan": found, "frames": frames, "suggestion": _suggestion(path, options)}  # fmt: skip


def _frames(letters: str, shape: tuple[int, ...]) -> dict[str, Any] | None:
    """Frames, frame shape ``[Y, X]`` (lines as columns) and depth samples the guessed axes give."""
    if "y" not in letters or "x" not in letters:
        return None
    size = dict(zip(letters, shape))
    return {"frames": int(size.get("t", 1)), "frame_shape": [int(size["y"]), int(size["x"])],
            "depth": int(size["z"]) if "z" in size else None}  # fmt: skip


def _frames_dir_report(entry: ScanEntry, variable: str | None) -> dict[str, Any]:
    """A directory of 2-D frame files: the first file in detail, the stack's axes from a few files."""
    first = inspect_file_report(entry.paths[0], variable)
    report: dict[str, Any] = {"files": len(entry.paths), "first_file": first}
    if first.get("scan") is None:
        return report
    layout = inspect_file(entry.paths[0], first["scan"]["variable"])
    shape = tuple(first["scan"]["shape"])

    def read(index: tuple[slice, ...]) -> np.ndarray | None:
        picks = range(len(entry.paths))[index[0]]
        parts = []
        for i in picks:
            one = survey_file(entry.paths[i]).read(layout.variable, index[1:])
            if one is None:
                return None
            parts.append(np.asarray(one))
        return np.stack(parts)

    perm2 = _user_perm(layout.perm, layout.reader)
    guess = guess_axes(read, (len(entry.paths), *shape), (0, *(p + 1 for p in perm2)), allow_depth=False)
    per_file = guess.letters[1:]
    options: dict[str, Any] = {}
    if first["suggestion"] and "variable" in first["suggestion"]["options"]:
        options["variable"] = first["suggestion"]["options"]["variable"]
    if guess.lines == "rows":
        options["scan_lines"] = "rows"
    report.update(axes={**guess.to_dict(), "letters_per_file": per_file}, suggestion={"options": options},
                  frames=_frames(guess.letters, (len(entry.paths), *shape)))  # fmt: skip
    return report


def inspect_path(path: Path, variable: str | None = None) -> dict[str, Any]:
    """Inspect a scan file or every scan under a directory (keys in docs/inspect.md)."""
    path = Path(path)
    if not path.exists():
        raise ScanError(path, "no such file or directory")
    scans = []
    for entry in discover_scans(path, variable=variable):
        item: dict[str, Any] = {"name": entry.name, "paths": [str(p) for p in entry.paths[:3]],
                                "files": len(entry.paths)}  # fmt: skip
        try:
            if len(entry.paths) == 1:
                item.update(inspect_file_report(entry.paths[0], variable))
            else:
                item.update(_frames_dir_report(entry, variable))
        except ScanError as exc:
            item["error"] = exc.reason
        where = entry.paths[0] if len(entry.paths) == 1 else entry.paths[0].parent
        options = (item.get("suggestion") or {}).get("options")
        if options is not None:
            item["suggestion"] = _suggestion(where, options)
        scans.append(item)
    result: dict[str, Any] = {"path": str(path), "kind": "directory" if path.is_dir() else "file", "scans": scans}
    if path.is_dir():
        every = [s.get("suggestion") for s in scans]
        if every and all(every) and all(s["options"] == every[0]["options"] for s in every):
            result["command"] = _command(path, every[0]["options"])
    elif scans and scans[0].get("suggestion"):
        result["command"] = scans[0]["suggestion"]["command"]
    return result
