"""Per-frame and temporal metrics of a registered store (docs/metrics.md), streamed chunk by chunk."""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from orpam_pipeline import __version__
from orpam_pipeline.checks.frames import Samples
from orpam_pipeline.checks.run import update_checks
from orpam_pipeline.errors import OrpamError, StoreError
from orpam_pipeline.jsonsafe import json_safe
from orpam_pipeline.metrics import temporal_summary
from orpam_pipeline.report.chunk_scores import (
    UNREGISTERED_COLUMNS,
    ChunkScores,
    assemble,
    clear_scores,
    saved_chunks,
    saved_samples,
    load_unregistered,
    save_unregistered,
    score_arrays,
    scores_dir,
    unregistered_columns,
)
from orpam_pipeline.report.displacement import DisplacementSummary, summarise_displacement
from orpam_pipeline.report.html import render_report_html
from orpam_pipeline.report.rendered import FIGURES_DIR, RenderedFigure, check_figures, tidy_figures
from orpam_pipeline.store.damage import missing_chunks, unreadable_arrays, unreadable_images
from orpam_pipeline.store.files import atomic_write
from orpam_pipeline.store.layout import (
    DISPLACEMENT,
    FRAMES,
    MERGED,
    REGISTERED_EVEN,
    frames_per_chunk,
    get_array,
    has_array,
    mark_stage,
    now_iso,
    open_scan_store,
    resolve_store_path,
    stage_complete,
    store_root,
)
from orpam_pipeline.store.lock import store_lock
from orpam_pipeline.store.resume import clean_strays, fingerprint
from orpam_pipeline.store.stage import decide, stage_record

if TYPE_CHECKING:
    from orpam_pipeline.report.figures import Drawing

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
MAX_PROFILE_FRAMES = 256


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _physical_units(group: zarr.Group) -> dict[str, Any]:
    """What one pixel and one frame are, as far as the store knows ("pixels"/"frames" when it does not)."""
    physical = dict(group.attrs.get("physical") or {})
    pixel, interval = physical.get("pixel_um"), physical.get("frame_interval_s")
    return {"pixel_um": pixel, "frame_interval_s": interval, "space_unit": "micrometer" if pixel else "pixel",
            "time_unit": "second" if interval else "frame"}  # fmt: skip


def figure_context(group: zarr.Group) -> dict[str, Any]:
    """The report's ``scan``, ``frames`` and ``physical``: what the figures say besides their data."""
    return {"scan": group.attrs.get("scan", store_root(group).parent.name),
            "frames": int(get_array(group, FRAMES).shape[0]), "physical": _physical_units(group)}  # fmt: skip


def shown_frame(group: zarr.Group) -> dict[str, Any]:
    """The frame the report's images show, the middle one (``frame_index``), merged as ingested
    (``unregistered``) and as registered (``registered``)."""
    frames_z, merged_z = get_array(group, FRAMES), get_array(group, MERGED)
    mid = int(frames_z.shape[0]) // 2
    return {"frame_index": mid, "unregistered": np.asarray(frames_z[mid], dtype=np.float32),
            "registered": np.asarray(merged_z[mid], dtype=np.float32)}  # fmt: skip


REPORT_THREADS = 4
"""Most chunks scored at once: reading (blosc) and the filters release the GIL, so chunks use every core."""


def _score_chunk(arrays: tuple[zarr.Array, zarr.Array, zarr.Array], start: int, stop: int, first_line: str,
                 unregistered: bool) -> ChunkScores:  # fmt: skip
    """:func:`score_arrays` of frames ``start:stop`` read from the store."""
    frames_z, reg_z, merged_z = arrays
    return score_arrays(frames_z[start:stop], reg_z[start:stop], merged_z[start:stop], first_line, unregistered)


def _ordered(pool: ThreadPoolExecutor, fn: Any, items: list[Any], ahead: int) -> Iterator[Any]:
    """``fn(*item)`` of every item, in order, with at most ``ahead`` running or waiting to be taken (flat memory)."""
    pending: deque[Any] = deque()
    for item in items:
        pending.append(pool.submit(fn, *item))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _score_store(group: zarr.Group, unregistered: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`~orpam_pipeline.report.chunk_scores.assemble` of every chunk read from the store and scored on up to ``REPORT_THREADS`` threads."""
    frames_z = get_array(group, FRAMES)
    arrays = (frames_z, get_array(group, REGISTERED_EVEN), get_array(group, MERGED))
    n_frames = frames_z.shape[0]
    first_line = group.attrs["conventions"]["first_line"]
    chunk = frames_per_chunk(frames_z)
    items = [(arrays, a, min(a + chunk, n_frames), first_line, unregistered) for a in range(0, n_frames, chunk)]
    threads = max(1, min(REPORT_THREADS, os.cpu_count() or 1, len(items)))
    with ThreadPoolExecutor(threads) as pool:
        return assemble(_ordered(pool, _score_chunk, items, threads))


def _score_files(group: zarr.Group) -> list[Path] | None:
    """The chunk score files the register stage saved for the current registration, in order; None when some
    chunk has none."""
    fp = (stage_record(group, "register") or {}).get("fingerprint")
    if not fp:
        return None
    chunks = -(-get_array(group, FRAMES).shape[0] // frames_per_chunk(group))
    return saved_chunks(scores_dir(store_root(group), fp), chunks)


def _saved_scores(group: zarr.Group, unregistered: bool) -> Iterator[ChunkScores] | None:
    """The chunk scores the register stage saved for the current registration, read one at a time; None when
    some chunk has none, or (``unregistered``) they lack the metrics of the frames as ingested."""
    paths = _score_files(group)
    if paths is None:
        return None
    return (_checked(ChunkScores.from_file(p), unregistered) for p in paths)


def _check_samples(store: Path) -> Samples | None:
    """The checks' sampled frames as the register stage kept them with its chunk scores (None: the checks read
    the store; also when a score file is damaged)."""
    try:
        group = zarr.open_group(store, mode="r")
        paths = _score_files(group)
        return None if paths is None else saved_samples(paths, int(get_array(group, FRAMES).shape[0]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _checked(scores: ChunkScores, unregistered: bool) -> ChunkScores:
    """``scores``, refused (ValueError: the store is scored instead) when they lack the unregistered metrics needed."""
    if unregistered and "ncc_unregistered" not in scores.per:
        raise ValueError("saved chunk scores without the unregistered metrics")
    return scores


def _scores(group: zarr.Group, unregistered: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-frame metrics and pair NCCs: from the register stage's saved chunk scores, else read and scored here."""
    try:
        saved = _saved_scores(group, unregistered)
        if saved is not None:
            return assemble(saved)
    except (OSError, ValueError, KeyError, TypeError):  # a damaged score file: score the store instead
        pass
    return _score_store(group, unregistered)


def compute_report(store: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(report, figures)``: the report.json content and the arrays the HTML page shows.

    The metrics of the frames as ingested depend only on the ingest, so they are computed once and kept
    in the store (``UNREGISTERED_CACHE``); each report then scores only the registered arrays. Chunks
    come scored from the register stage where it saved them (``chunk_scores``), else read here.
    """
    group = open_scan_store(store, mode="r")
    if not stage_complete(group, "register"):
        raise StoreError(store_root(group), "registration did not complete; run `orpam register` first")
    frames_z = get_array(group, FRAMES)
    n_frames, height, width = frames_z.shape
    chunk = frames_per_chunk(frames_z)
    cached = load_unregistered(group, n_frames)
    flat, pair_flat = _scores(group, unregistered=cached is None)
    for name in ("merged", "unregistered", "odd"):
        pair_flat.setdefault(name, np.zeros(0))
    if cached is None:
        save_unregistered(store_root(group), group, unregistered_columns(flat, pair_flat))
    else:
        flat.update({k: cached[k] for k in UNREGISTERED_COLUMNS[:3]})
        pair_flat.update(unregistered=cached["pair_ncc_unregistered"], odd=cached["pair_ncc_odd"])
    flat = {k: flat[k] for k in ("ncc", "ssim", "psnr", "ncc_unregistered", "ssim_unregistered", "psnr_unregistered")}
    reg_t = temporal_summary(pair_flat["odd"], pair_flat["merged"])
    unreg_t = temporal_summary(pair_flat["odd"], pair_flat["unregistered"])
    registration = dict(group.attrs.get("registration", {}))
    root = store_root(group)
    context = figure_context(group)
    report: dict[str, Any] = {
        "scan": context["scan"],
        "store": str(root),
        "frames": context["frames"],
        "frame_shape": [int(height), int(width)],
        "method": registration.get("method"),
        "method_params": registration.get("params", {}),
        "ncc_mean": _nanmean(flat["ncc"]),
        "ssim_mean": _nanmean(flat["ssim"]),
        "psnr_mean": _nanmean(flat["psnr"]),
        "ncc_mean_unregistered": _nanmean(flat["ncc_unregistered"]),
        "ssim_mean_unregistered": _nanmean(flat["ssim_unregistered"]),
        "psnr_mean_unregistered": _nanmean(flat["psnr_unregistered"]),
        "tncc_merged": reg_t["tncc"],
        "tncc_unregistered": unreg_t["tncc"],
        "tncc_odd": reg_t["tncc_odd"],
        "tncg": reg_t["tncg"],
        "tncg_unregistered": unreg_t["tncg"],
        "tncg_signed": reg_t["tncg_signed"],
        "tncg_signed_unregistered": unreg_t["tncg_signed"],
        "undefined_frames": int(np.isnan(flat["ncc"]).sum()),
        "per_frame": {
            **{k: v.tolist() for k, v in flat.items()},
            "pair_ncc_merged": pair_flat["merged"].tolist(),
            "pair_ncc_unregistered": pair_flat["unregistered"].tolist(),
            "pair_ncc_odd": pair_flat["odd"].tolist(),
        },
        "physical": context["physical"],
        "package_version": __version__,
        "created": now_iso(),
        "notes": (
            "Intra-frame metrics compare registered backward lines with forward lines (docs/metrics.md); they also "
            "reward copying the forward lines. Use `orpam evaluate` with ground truth to judge registration. "
            "null means undefined (constant frame) or infinite (identical images)."
        ),
    }
    for name in ("ncc", "ssim", "psnr"):
        report[f"{name}_unregistered"] = report[f"{name}_mean_unregistered"]

    figures: dict[str, Any] = {**shown_frame(group), "displacement": None, "truth_displacement": None}
    mid = report["frame_shown"] = figures["frame_index"]
    if has_array(group, DISPLACEMENT):
        picks = np.unique(np.linspace(0, n_frames - 1, min(n_frames, MAX_PROFILE_FRAMES)).astype(int))
        summary = summarise_displacement(get_array(group, DISPLACEMENT), n_frames, chunk, frame=mid, keep=picks)
        profiles = np.stack([np.asarray(p, dtype=np.float32) for p in summary.kept])
        if profiles.ndim == 3:
            profiles = profiles.mean(axis=2)
        figures["displacement"] = summary
        report["displacement_px"] = {
            "mean": float(profiles.mean()),
            "min": float(profiles.min()),
            "max": float(profiles.max()),
            "frames_sampled": int(picks.size),
        }
        report["displacement_per_frame"] = {**summary.per_frame(), "field": summary.field}
    report["truth"], figures["truth_displacement"] = _truth(store, group, (n_frames, height, width), mid, chunk)
    return report, figures


def _truth(
    store: Path, group: zarr.Group, shape: tuple[int, int, int], frame: int, chunk: int
) -> tuple[dict[str, Any] | None, DisplacementSummary | None]:
    """report.json's ``truth`` (None without a truth beside the scan's source) and the true displacement."""
    from orpam_pipeline.report.truth import true_displacement, truth_for_store, truth_scores

    truth, note = truth_for_store(group, shape)
    if truth is not None:
        try:
            scores = {**truth_scores(store, truth), "note": None}
            return scores, summarise_displacement(true_displacement(truth), shape[0], chunk, frame=frame)
        except Exception as exc:  # a damaged truth store is reported, never fatal (as in `orpam evaluate`)
            note = f"truth {truth} ignored: cannot score it ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    if note is None:
        return None, None
    unused = {"store": None, "note": note, "ncc_truth": None, "psnr_truth": None, "disp_rms_px": None, "per_frame": {}}
    return unused, None


def _report_params(group: zarr.Group, figures: str = "all") -> dict[str, Any]:
    """The report depends on the registered store (the register stage's fingerprint) and on the figures drawn
    (recorded only when not all, so reports drawn before the option keep their fingerprint)."""
    params: dict[str, Any] = {"register": (stage_record(group, "register") or {}).get("fingerprint")}
    if figures != "all":
        params["figures"] = figures
    return params


def current_report(store: Path, figures: str = "all") -> tuple[dict[str, Any], Path, Path] | None:
    """The report already written for the store's current registration with these figures, or None when it
    must be (re)made."""
    group = open_scan_store(store, mode="r")
    params = _report_params(group, check_figures(figures))
    root = store_root(group)
    if decide("report", stage_record(group, "report"), fingerprint(params), params, overwrite=True, path=root) != "complete":
        return None
    out_dir = root.parent
    json_path, html_path = out_dir / REPORT_JSON, out_dir / REPORT_HTML
    if not (json_path.is_file() and html_path.is_file()):
        return None
    try:
        report = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report, json_path, html_path


def warm_figures() -> threading.Thread:
    """Start the figure workers (they import the plotting code, about a CPU-second) on a background thread while
    a run ingests its first scan; where there are none, import the plotting code here instead, for the calling
    thread to draw with.

    Only the start or the import runs there (Python's import lock makes a report that needs it meanwhile
    wait for it); nothing is drawn off the caller's thread. Join the thread before the process ends.
    """
    thread = threading.Thread(target=_import_figures, name="orpam-warm-figures", daemon=True)
    thread.start()
    return thread


def _import_figures() -> None:
    try:
        from orpam_pipeline.report.figure_workers import PRELOAD, start

        if not start():
            for module in PRELOAD:
                __import__(module)
    except Exception:  # the report imports it again and says what is wrong
        pass


def _draw_figures(report: dict[str, Any], data: dict[str, Any], folder: Path, figures: str,
                  early: Drawing | None = None) -> list[RenderedFigure]:  # fmt: skip
    """Draw and write the figures ``figures`` asks for (matplotlib is imported here, only when a report draws),
    taking those ``early`` drew with the same arguments from there."""
    drawn: list[RenderedFigure] = []
    if figures != "none":
        from orpam_pipeline.report.figures import build_figures

        drawn = build_figures(report, data, folder, svg=figures == "all", early=early)
    tidy_figures(folder, drawn)
    return drawn


def write_report(store: Path, figures: str = "all", early: Drawing | None = None) -> tuple[dict[str, Any], Path, Path]:
    """Compute the report of ``store`` and write report.json and report.html beside it.

    The checks the store is due for run first (``checks.run``); ``warnings`` holds every recorded one.
    ``figures`` (``FIGURE_MODES``): draw every figure as PNG and SVG, as PNG only, or none. ``early``: figures
    drawn while the store registered (``report.early_figures``), used where they are the report's own.
    """
    check_figures(figures)
    store = resolve_store_path(store)
    with store_lock(store.parent):
        clean_strays(store)
        try:
            group = open_scan_store(store, mode="r")
            damaged = unreadable_images(store, group) + unreadable_arrays(store, group)
            if damaged:
                raise StoreError(store, f"damaged metadata of {', '.join(damaged)}; `orpam repair` rewrites it")
            missing = missing_chunks(store, group)
            if missing:
                raise StoreError(store, f"{missing[0]} ({len(missing)} missing in all); `orpam repair` recomputes them")
            report, data = compute_report(store)
            report["warnings"] = [w.to_dict() for w in update_checks(store, _check_samples(store))]
        except OrpamError:
            raise
        except Exception as exc:  # damaged metadata or chunk bytes surface as several zarr/codec errors
            text = " ".join(str(exc).split())[:160]
            raise StoreError(store, f"cannot read the store ({type(exc).__name__}: {text}); `orpam verify` "
                                    "locates the damage and `orpam repair` recomputes it") from None
        root = Path(report["store"])
        out_dir = root.parent
        safe = json_safe(report)
        json_path = out_dir / REPORT_JSON
        html_path = out_dir / REPORT_HTML
        drawn = _draw_figures(safe, data, out_dir / FIGURES_DIR, figures, early)
        safe["figures_drawn"] = figures
        safe["figures"] = {f.name: {"png": f"{FIGURES_DIR}/{f.name}.png",
                                    **({"svg": f"{FIGURES_DIR}/{f.name}.svg"} if f.svg is not None else {}),
                                    "caption": f.caption} for f in drawn}  # fmt: skip
        html = render_report_html(safe, drawn)
        atomic_write(json_path, json.dumps(safe, indent=1, allow_nan=False))
        atomic_write(html_path, html)
        group = zarr.open_group(root, mode="r+")
        params = _report_params(group, figures)
        mark_stage(group, "report", True, json=str(json_path), html=str(html_path), fingerprint=fingerprint(params))
        clear_scores(root)
    return safe, json_path, html_path
