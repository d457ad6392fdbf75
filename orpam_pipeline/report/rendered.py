"""A figure as written beside the report (no matplotlib needed to read or embed it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

FIGURES_DIR = "figures"
"""Folder beside report.html holding every figure as ``<name>.png`` and ``<name>.svg``."""
CSS_PX_PER_INCH = 96


@dataclass(frozen=True)
class RenderedFigure:
    """One figure: PNG bytes, SVG text, what it shows, and where its files are (None when not written)."""

    name: str
    kind: Literal["image", "plot"]
    caption: str
    png: bytes
    svg: str
    width_in: float
    png_path: Path | None = None
    svg_path: Path | None = None

    @property
    def css_width(self) -> int:
        """Width on the page in CSS pixels, so text appears at its point size."""
        return round(self.width_in * CSS_PX_PER_INCH)


def tidy_figures(folder: Path, keep: set[str]) -> None:
    """Remove figure files of earlier reports that this one did not draw, and temporaries of killed writers.

    Call only while holding the scan folder's lock.
    """
    from orpam_pipeline.store.files import OWN_PARTIAL

    if not folder.is_dir():
        return
    for path in folder.iterdir():
        stale = path.suffix in (".png", ".svg") and path.stem not in keep
        if path.is_file() and (stale or OWN_PARTIAL.match(path.name)):
            path.unlink(missing_ok=True)
