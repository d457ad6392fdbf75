"""The batch page: ``OUT/index.html`` and ``OUT/index.json``, one row per scan of an output folder.

Rows come from every scan folder whose report is complete for its current registration (so scans
of earlier runs stay listed) and from the outcomes of the run that just ended (failed and busy
scans, which have no report to read). Layout and keys: docs/batch.md.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import numpy as np

from orpam_pipeline.jsonsafe import json_safe
from orpam_pipeline.store.files import atomic_write
from orpam_pipeline.store.layout import MERGED, STORE_NAME, get_array, now_iso, open_scan_store

if TYPE_CHECKING:
    from orpam_pipeline.pipeline import ScanOutcome

INDEX_VERSION = 1
INDEX_HTML = "index.html"
INDEX_JSON = "index.json"
THUMB_SIZE = 160
"""Largest side of a thumbnail, in pixels."""
THUMB_SHOWN = 120
"""Largest side of a thumbnail on the page, in CSS pixels (sharper on high-density screens)."""
THUMB_WINDOW = (1.0, 99.5)
"""Percentiles of the middle frame mapped to black and white (robust to a few hot pixels)."""
METRIC_KEYS = ("method", "frames", "frame_shape", "tncc_merged", "tncc_odd", "tncg", "ncc_mean", "ssim_mean")

RowStatus = Literal["ok", "failed", "busy"]


@dataclass
class BatchRow:
    """One scan on the page: its completed report (if any) and what this run did with it (if anything)."""

    name: str
    status: RowStatus = "ok"
    run_status: str | None = None
    error: str | None = None
    source: str | None = None
    renamed_from: str | None = None
    folder: Path | None = None
    report: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)


def completed_reports(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Folder name -> report.json of every scan folder in ``out_dir`` whose report matches its store.

    Links and hidden folders are left out (a planted link must not pull another tree into the page);
    a folder that cannot be read (damaged, or being rewritten) is left out rather than failing the page.
    """
    from orpam_pipeline.report.scan_report import current_report

    found: dict[str, dict[str, Any]] = {}
    for folder in sorted(Path(out_dir).iterdir()):
        if folder.name.startswith(".") or folder.is_symlink() or not (folder / STORE_NAME).is_dir():
            continue
        try:
            existing = current_report(folder / STORE_NAME)
        except Exception:  # an unreadable store has no report to list
            continue
        if existing is not None:
            found[folder.name] = existing[0]
    return found


def collect_rows(out_dir: Path, outcomes: Iterable[ScanOutcome] = ()) -> list[BatchRow]:
    """Every completed report under ``out_dir`` plus this run's outcomes, sorted by name.

    This run decides a scan's status (a ``--strict`` failure keeps its report; a busy scan keeps the
    report an earlier run left); scans this run did not touch are ``ok``.
    """
    out_dir = Path(out_dir)
    rows = {name: BatchRow(name, folder=out_dir / name, report=report, warnings=list(report.get("warnings") or []))
            for name, report in completed_reports(out_dir).items()}  # fmt: skip
    for o in outcomes:
        name = o.store.parent.name if o.store is not None else o.name
        row = rows.setdefault(name, BatchRow(name))
        row.run_status, row.source, row.renamed_from = o.status, str(o.source), o.renamed_from
        if not o.ok:
            row.status, row.error = ("busy" if o.status == "busy" else "failed"), o.error
        if row.report is None and o.report is not None and (o.store is not None or o.location is not None):
            row.report, row.folder = o.report, None if o.store is None else o.store.parent
            row.warnings = list(o.report.get("warnings") or [])
        if row.report is None:
            row.warnings = list(o.warnings)
    return sorted(rows.values(), key=lambda r: (r.name.casefold(), r.name))


def _shrink(frame: np.ndarray, size: int) -> np.ndarray:
    """Block means so that no side exceeds ``size`` (small frames are kept as they are)."""
    factor = max(1, math.ceil(max(frame.shape) / size))
    if factor == 1:
        return frame
    h, w = (frame.shape[0] // factor) * factor, (frame.shape[1] // factor) * factor
    if h == 0 or w == 0:  # one side much shorter than the other: subsample instead
        return frame[::factor, ::factor]
    return frame[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def thumbnail_png(store: Path, size: int = THUMB_SIZE) -> bytes:
    """8-bit grey PNG of the merged middle frame (index ``T // 2``), at most ``size`` pixels a side, grey levels
    windowed linearly to :data:`THUMB_WINDOW` percentiles (written with Pillow: an index of a batch drawn
    without figures never imports matplotlib)."""
    from PIL import Image

    merged = get_array(open_scan_store(store, mode="r"), MERGED)
    image = _shrink(np.asarray(merged[merged.shape[0] // 2], dtype=np.float64), size)
    finite = image[np.isfinite(image)]
    lo, hi = np.percentile(finite, THUMB_WINDOW) if finite.size else (0.0, 1.0)
    if not hi > lo:
        hi = lo + 1.0
    grey = np.clip((np.nan_to_num(image, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
    buffer = io.BytesIO()
    Image.fromarray(np.round(grey * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The key numbers of one report.json, under its own key names."""
    physical = report.get("physical") or {}
    return {**{k: report.get(k) for k in METRIC_KEYS}, "displacement_px": report.get("displacement_px"),
            "pixel_um": physical.get("pixel_um"), "frame_interval_s": physical.get("frame_interval_s")}  # fmt: skip


def _link(row: BatchRow, file: str) -> str | None:
    return None if row.report is None else f"{row.name}/{file}"


def index_document(out_dir: Path, rows: Sequence[BatchRow], label: str | None = None) -> dict[str, Any]:
    """The content of index.json (docs/batch.md)."""
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "failed", "busy")}
    scans = [{"name": r.name, "status": r.status, "run_status": r.run_status, "error": r.error, "source": r.source,
              "renamed_from": r.renamed_from, "report_html": _link(r, "report.html"),
              "report_json": _link(r, "report.json"), "report_created": (r.report or {}).get("created"),
              "metrics": None if r.report is None else _metrics(r.report), "warnings": r.warnings}
             for r in rows]  # fmt: skip
    return json_safe({"version": INDEX_VERSION, "created": now_iso(), "out": label or str(Path(out_dir).resolve()),
                      "counts": {"scans": len(rows), **counts}, "scans": scans})  # fmt: skip


def _text(value: Any) -> str:
    """HTML-escaped text; undecodable file-name bytes (lone surrogates) shown as ``\\udcXX``."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return escape(text, quote=True)


def _num(value: Any, digits: int = 4) -> tuple[str, str]:
    """``(shown, sort key)`` of a number; ``n/a`` (sorted last) when absent."""
    if value is None:
        return "n/a", ""
    return f"{value:.{digits}f}", repr(float(value))


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #222; line-height: 1.35; }
h1 { font-size: 1.5em; margin: 0 0 0.2em; }
p.summary { margin: 0 0 1em; color: #444; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; vertical-align: top; }
thead th { background: #f2f2f2; position: sticky; top: 0; cursor: pointer; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { min-width: 10em; max-width: 22em; overflow-wrap: anywhere; }
td.thumb img { display: block; image-rendering: pixelated; border: 1px solid #999; background: #000; }
.badge { display: inline-block; font-size: 0.8em; padding: 0 0.5em; border-radius: 0.8em; color: #fff; }
.badge.ok { background: #2e7d32; } .badge.failed { background: #c62828; } .badge.busy { background: #b26a00; }
tr.row-failed td { background: #fdecea; } tr.row-busy td { background: #fff4e0; }
.reason { font-family: ui-monospace, monospace; font-size: 0.85em; overflow-wrap: anywhere; max-width: 60em; }
td.warn { color: #b3261e; font-size: 0.85em; min-width: 14em; max-width: 28em; }
td.warn code { font-weight: bold; }
.small { font-size: 0.8em; color: #555; }
"""

_SORT_JS = """
document.querySelectorAll("thead th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var up = th.dataset.dir !== "up"; th.dataset.dir = up ? "up" : "down";
    function key(r) {
      for (var k = 0, at = 0; k < r.cells.length; at += r.cells[k].colSpan, k++) {
        var c = r.cells[k];
        if (at === col && c.colSpan === 1) { return c.dataset.v !== undefined ? c.dataset.v : c.textContent; }
        if (at + c.colSpan > col) { return ""; }
      }
      return "";
    }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      if (x === "" || y === "") { return x === y ? 0 : (x === "" ? 1 : -1); }
      var d = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return up ? d : -d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

_COLUMNS = ("scan", "middle frame (merged)", "method", "frames", "frame (Y × X)", "TNCC merged", "TNCC odd-only",
            "TNCG", "NCC mean", "SSIM mean", "displacement (px) mean [min, max]", "warnings")  # fmt: skip


_NO_REPORT = '<span class="small">no report</span>'


def _cell(shown: str, key: str | None = None, cls: str = "n") -> str:
    sort = "" if key is None else f' data-v="{escape(key, quote=True)}"'
    return f'<td class="{cls}"{sort}>{shown}</td>'


def _row_html(row: BatchRow, thumbnail: bytes | None) -> str:
    """One ``<tr>``: every value from the row escaped; links percent-encoded, then escaped."""
    head = f'<span class="badge {row.status}">{row.status}</span> '
    if row.report is not None:
        href = escape(quote(row.name) + "/report.html", quote=True)
        head += f'<a class="scan" href="{href}">{_text(row.name)}</a>'
    else:
        head += f'<span class="scan">{_text(row.name)}</span>'
    if row.renamed_from is not None:
        head += f'<div class="small">named from {_text(repr(row.renamed_from))}</div>'
    reason = f'<div class="reason">{_text(row.error)}</div>' if row.error else ""
    if row.report is not None:
        head += reason
    cells = [_cell(head, row.name, "name")]
    if thumbnail is not None:
        h, w = _png_size(thumbnail)
        scale = THUMB_SHOWN / max(h, w)
        img = (f'<img src="data:image/png;base64,{base64.b64encode(thumbnail).decode("ascii")}" '
               f'width="{round(w * scale)}" height="{round(h * scale)}" alt="middle frame of {_text(row.name)}">')  # fmt: skip
        cells.append(_cell(img, "", "thumb"))
    else:
        cells.append(_cell("", "", "thumb"))
    r = row.report
    if r is None:
        cells.append(f'<td colspan="{len(_COLUMNS) - 3}">{reason or _NO_REPORT}</td>')
    else:
        shape = r.get("frame_shape") or ["?", "?"]
        physical = r.get("physical") or {}
        size = f"{shape[0]} × {shape[1]}"
        if physical.get("pixel_um"):
            size += f'<div class="small">{_pixel_text(physical["pixel_um"])}</div>'
        cells += [_cell(_text(r.get("method")), str(r.get("method")), ""), _cell(_text(r.get("frames")), str(r.get("frames"))),
                  _cell(size, str(shape[0] * shape[1]) if all(isinstance(s, int) for s in shape) else "")]  # fmt: skip
        cells += [_cell(*_num(r.get(k))) for k in ("tncc_merged", "tncc_odd", "tncg", "ncc_mean", "ssim_mean")]
        disp = r.get("displacement_px")
        if disp:
            mean, key = _num(disp.get("mean"), 2)
            cells.append(_cell(f"{mean} [{_num(disp.get('min'), 2)[0]}, {_num(disp.get('max'), 2)[0]}]", key))
        else:
            cells.append(_cell("—", ""))
    warns = "".join(f"<div><code>{_text(w.get('code'))}</code>: {_text(w.get('message'))}</div>" for w in row.warnings)
    cells.append(_cell(warns, str(len(row.warnings)), "warn"))
    return f'<tr class="row-{row.status}">' + "".join(cells) + "</tr>"


def _pixel_text(pixel: Any) -> str:
    """A pixel size as recorded (``{y, x}`` in µm, or one number) for the page."""
    if isinstance(pixel, dict):
        y, x = pixel.get("y"), pixel.get("x")
        return f"{_text(y)} µm/pixel" if y == x else f"{_text(y)} × {_text(x)} µm/pixel (Y × X)"
    return f"{_text(pixel)} µm/pixel"


def _png_size(png: bytes) -> tuple[int, int]:
    """``(height, width)`` from a PNG's header."""
    return int.from_bytes(png[20:24], "big"), int.from_bytes(png[16:20], "big")


def render_index_html(document: dict[str, Any], rows: Sequence[BatchRow], thumbnails: dict[str, bytes]) -> str:
    """The self-contained page: inline CSS and images, an optional inline sort script, nothing loaded."""
    counts = document["counts"]
    out = Path(document["out"])
    summary = (f"{counts['scans']} scans: {counts['ok']} ok, {counts['failed']} failed, {counts['busy']} busy "
               f"(being written by another process). Written {_text(document['created'])}. Click a column to sort.")  # fmt: skip
    head = "".join(f"<th>{_text(c)}</th>" for c in _COLUMNS)
    body = "\n".join(_row_html(r, thumbnails.get(r.name)) for r in rows)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>orpam batch: {_text(out.name)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>orpam batch: {_text(out.name)}</h1>\n<p class=\"summary\">{_text(out)}<br>{summary}</p>\n"
        f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>\n"
        f"<script>{_SORT_JS}</script>\n</body></html>\n"
    )


def write_batch_index(out_dir: Path, outcomes: Iterable[ScanOutcome] = (), label: str | None = None) -> tuple[Path, Path]:
    """Write ``OUT/index.json`` and ``OUT/index.html`` atomically; returns their paths.

    A scan whose thumbnail cannot be read is listed without one; ``label`` names the output in the page
    when it is not ``out_dir`` itself (a URL the page is uploaded to).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = collect_rows(out_dir, outcomes)
    thumbnails: dict[str, bytes] = {}
    for row in rows:
        if row.report is None or row.folder is None:
            continue
        try:
            thumbnails[row.name] = thumbnail_png(row.folder / STORE_NAME)
        except Exception:  # a missing picture must not cost the page
            pass
    document = index_document(out_dir, rows, label)
    json_path, html_path = out_dir / INDEX_JSON, out_dir / INDEX_HTML
    atomic_write(json_path, json.dumps(document, indent=1, allow_nan=False))
    atomic_write(html_path, render_index_html(document, rows, thumbnails))
    return json_path, html_path
