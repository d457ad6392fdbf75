"""A figure as written beside the report (no matplotlib needed to read or embed it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from orpam_pipeline.store.files import OWN_PARTIAL, atomic_write

FIGURES_DIR = "figures"
"""Folder beside report.html holding every figure as ``<name>.png`` and ``<name>.svg``."""
FIGURE_MODES = ("all", "png", "none")
"""What a report draws (``--figures``): every figure as PNG and SVG (the page inlines plots as SVG), PNG only
(the page embeds PNGs), or nothing (report.json and a page with the numbers; ``orpam report`` draws them later)."""
CSS_PX_PER_INCH = 96


def check_figures(figures: str) -> str:
    """``figures`` when it is one of ``FIGURE_MODES``; a one-line error otherwise."""
    from orpam_pipeline.errors import OrpamError

    if figures not in FIGURE_MODES:
        raise OrpamError(f"--figures must be one of {', '.join(FIGURE_MODES)}, not {figures!r}")
    return figures


@dataclass(frozen=True)
class RenderedFigure:
    """One figure: PNG bytes, SVG text (None: not drawn as SVG), what it shows, and where its files are (None when not written)."""

    name: str
    kind: Literal["image", "plot"]
    caption: str
    png: bytes
    svg: str | None
    width_in: float
    png_path: Path | None = None
    svg_path: Path | None = None

    @property
    def css_width(self) -> int:
        """Width on the page in CSS pixels, so text appears at its point size."""
        return round(self.width_in * CSS_PX_PER_INCH)

    def written(self, folder: Path) -> RenderedFigure:
        """Write ``<name>.png`` (and ``.svg`` when drawn as SVG) into ``folder`` atomically; the figure with its paths."""
        folder.mkdir(parents=True, exist_ok=True)
        png_path, svg_path = folder / f"{self.name}.png", folder / f"{self.name}.svg"
        atomic_write(png_path, self.png)
        if self.svg is not None:
            atomic_write(svg_path, self.svg)
        return replace(self, png_path=png_path, svg_path=svg_path if self.svg is not None else None)


def tidy_figures(folder: Path, drawn: list[RenderedFigure]) -> None:
    """Remove figure files this report did not write (earlier reports' figures, an SVG now drawn as PNG only)
    and temporaries of killed writers.

    Call only while holding the scan folder's lock.
    """
    if not folder.is_dir():
        return
    keep = {p.name for f in drawn for p in (f.png_path, f.svg_path) if p is not None}
    for path in folder.iterdir():
        stale = path.suffix in (".png", ".svg") and path.name not in keep
        if path.is_file() and (stale or OWN_PARTIAL.match(path.name)):
            path.unlink(missing_ok=True)
