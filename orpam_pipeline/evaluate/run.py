"""Every method on the same scans: papers' metrics, ground truth, leak check, artefact score, timing.

Each scan is ingested once into ``OUT/ingested/<scan>/scan.zarr``; each method registers its own copy
of that store, ``OUT/<method>/<scan>/scan.zarr`` (with ``report.json`` and ``report.html`` beside it,
exactly as ``orpam run`` writes them), through the real engine. A method or scan that fails is
recorded with a one-line reason and the evaluation goes on with the others.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from orpam_pipeline import __version__
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.evaluate.artefact import COMB_SIGMA_Y
from orpam_pipeline.evaluate.benchmark import BENCHMARK_SCANS, ensure_benchmark
from orpam_pipeline.evaluate.leak import LEAK_FRAMES, LEAK_THRESHOLD, leak_check
from orpam_pipeline.evaluate.scoring import find_truth, score_store, truth_problem
from orpam_pipeline.io import ScanEntry, open_scan
from orpam_pipeline.options import ScanOptions
from orpam_pipeline.pipeline import one_line, scans_under
from orpam_pipeline.register import METHODS, RegistrationMethod, accepted_settings, get_method
from orpam_pipeline.settings import setting
from orpam_pipeline.register.engine import register_store
from orpam_pipeline.report.scan_report import write_report
from orpam_pipeline.store.ingest import ingest_scan
from orpam_pipeline.store.layout import STORE_NAME, remove_tree
from orpam_pipeline.store.names import scan_folder



def _shipped(name: str) -> bool:
    """Whether a method runs with its default settings: not learned, or its default checkpoint is shipped."""
    cls = METHODS[name]
    if not cls.uses_network:
        return True
    return Path(getattr(cls().settings, "checkpoint", "")).is_file()


DEFAULT_METHODS = tuple(name for name in METHODS if _shipped(name))
"""Every registered method that runs out of the box (learned ones without a shipped checkpoint are left out)."""
INGESTED = "ingested"
BENCHMARK_DATA = "benchmark-data"
METRIC_KEYS = (
    "ncc_odd", "ssim_odd", "psnr_odd", "tncc_merged", "tncc_odd", "tncg",
    "ncc_truth", "psnr_truth", "disp_rms_px", "artefact",
    "leak_score", "leak_baseline", "leak_excess", "ms_per_frame",
)  # fmt: skip
EventFn = Callable[[str, dict[str, Any]], None]
"""Called as ``on_event(kind, details)`` with kind in scan, method, leak, failed."""


@dataclass
class EvaluateOptions(ScanOptions):
    """What to evaluate and how; ``settings`` go to every method that declares them (checkpoint, device, ...)."""

    methods: tuple[str, ...] = setting(DEFAULT_METHODS, "Methods to compare.")
    settings: dict[str, Any] = setting(default_factory=dict, help="Method settings, each given to the methods that have it.")
    max_frames: int | None = setting(None, "Use only the first N frames of each scan.")
    leak_frames: int = setting(LEAK_FRAMES, "Frames per scan for the leak check.")
    leak_threshold: float = setting(LEAK_THRESHOLD, "Largest allowed leak excess (NCC).")
    seed: int = setting(0, "Seed of the leak check's unrelated content.")


class _FirstFrames:
    """A scan source restricted to its first ``n`` frames (quacks like ``ScanSource`` for ingest)."""

    def __init__(self, source: Any, n: int) -> None:
        self._source = source
        self.name = source.name
        self.paths = source.paths
        self.shape = (n,) + tuple(source.shape[1:])

    def read(self, start: int, stop: int) -> np.ndarray:
        if not 0 <= start <= stop <= self.shape[0]:
            raise ValueError(f"frames {start}:{stop} out of range for {self.shape[0]} frames")
        return self._source.read(start, stop)

    def provenance(self) -> dict[str, Any]:
        return {**self._source.provenance(), "frames_used": self.shape[0]}


def machine_info() -> dict[str, Any]:
    """Where the timings were taken."""
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["torch"] = None
    return info


def make_method(name: str, settings: dict[str, Any]) -> RegistrationMethod:
    """A fresh method with the ``settings`` it declares (``line_profile`` reaches pcregnet-flow, not pcregnet)."""
    return get_method(name, **accepted_settings(name, settings))


def _report_metrics(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "ncc_odd": report["ncc_mean"], "ssim_odd": report["ssim_mean"], "psnr_odd": report["psnr_mean"],
        "tncc_merged": report["tncc_merged"], "tncc_odd": report["tncc_odd"], "tncg": report["tncg"],
    }  # fmt: skip


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None


def rank_agreement(artefact: dict[str, float | None], ncc_truth: dict[str, float | None]) -> dict[str, Any]:
    """How well the artefact score (lower is better) orders methods like ground-truth NCC (higher is better).

    Returns Spearman's rho between -artefact and NCC vs truth and the fraction of method pairs put in
    the same order, over the methods where both are defined.
    """
    names = [m for m in artefact if _finite(artefact[m]) is not None and _finite(ncc_truth.get(m)) is not None]
    if len(names) < 2:
        return {"methods": names, "spearman": None, "pairwise": None}
    a = np.array([-float(artefact[m]) for m in names])  # type: ignore[arg-type]
    t = np.array([float(ncc_truth[m]) for m in names])  # type: ignore[arg-type]
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    agree = sum(1 for i, j in pairs if np.sign(a[i] - a[j]) == np.sign(t[i] - t[j]))
    rho = stats.spearmanr(a, t).statistic if len(names) > 2 else float(np.sign(a[0] - a[1]) * np.sign(t[0] - t[1]))
    return {"methods": names, "spearman": _finite(rho), "pairwise": agree / len(pairs)}


def _evaluate_method(
    name: str, ingested: Path, out_dir: Path, scan: str, truth: Path | None, options: EvaluateOptions
) -> dict[str, Any]:
    """Register a copy of the ingested store with one method and score it."""
    target_dir = scan_folder(scan_folder(out_dir, name), scan)
    target = target_dir / STORE_NAME
    if target_dir.exists():
        remove_tree(target_dir)
    target_dir.mkdir(parents=True)
    shutil.copytree(ingested, target)
    info = register_store(target, make_method(name, options.settings))
    report, _, html = write_report(target)
    scores = score_store(target, truth)
    frames = int(report["frames"])
    leak = leak_check(
        ingested, lambda: make_method(name, options.settings), options.leak_frames, options.seed, options.leak_threshold,
        work_dir=out_dir,
    )  # fmt: skip
    return {
        "ok": True,
        "store": str(target),
        "report_html": str(html),
        **_report_metrics(report),
        "ncc_truth": scores["ncc_truth"],
        "psnr_truth": scores["psnr_truth"],
        "disp_rms_px": scores["disp_rms_px"],
        "artefact": scores["artefact"],
        "leak_score": leak["score"],
        "leak_baseline": leak["baseline"],
        "leak_excess": leak["excess"],
        "leak_passed": leak["passed"],
        "leak": leak,
        "register_seconds": info["seconds"],
        "ms_per_frame": 1000.0 * info["seconds"] / max(frames, 1),
        "params": info["params"],
        "per_frame": {**report["per_frame"], **scores["per_frame"]},
    }


def evaluate_scan(
    entry: ScanEntry, out_dir: Path, options: EvaluateOptions, on_event: EventFn | None = None
) -> dict[str, Any]:
    """Ingest one scan once and evaluate every method on it; failures are recorded, not raised."""
    emit = on_event or (lambda kind, details: None)
    result: dict[str, Any] = {"name": entry.name, "source": [str(p) for p in entry.paths], "methods": {}}
    try:
        with open_scan(entry, spec=options.read_spec()) as source:
            result["name"] = source.name
            n_total = int(source.shape[0])
            use = source
            if options.max_frames is not None and options.max_frames < n_total:
                use = _FirstFrames(source, int(options.max_frames))
            ingested = ingest_scan(
                use, out_dir / INGESTED, scan_lines=options.scan_lines, first_line=options.first_line,  # type: ignore[arg-type]
                chunk_frames=options.chunk_frames, overwrite=True, reverse_backward=options.reverse_backward,
            )  # fmt: skip
    except Exception as exc:  # one bad scan must not stop the evaluation
        result.update(ok=False, error=one_line(exc, entry.paths[0]))
        emit("failed", {"scan": entry.name, "error": result["error"]})
        return result
    import zarr

    from orpam_pipeline.store.layout import FRAMES, get_array

    shape = tuple(int(s) for s in get_array(zarr.open_group(ingested, mode="r"), FRAMES).shape)
    truth = find_truth(entry.paths)
    result.update(ok=True, frames=shape[0], frames_in_source=n_total, frame_shape=list(shape[1:]),
                  ingested=str(ingested), truth=None, truth_note=None)  # fmt: skip
    if truth is not None:
        if options.scan_lines != "columns" or options.first_line != "forward" or options.reverse_backward:
            result["truth_note"] = "truth ignored: it is in the simulator's geometry (columns, forward first)"
        else:
            problem = truth_problem(truth, *shape)
            if problem is None:
                result["truth"] = str(truth)
            else:
                result["truth_note"] = f"truth ignored: {problem}"
    emit("scan", {"scan": result["name"], "frames": shape[0], "truth": result["truth"]})
    truth_path = Path(result["truth"]) if result["truth"] else None
    for name in options.methods:
        try:
            metrics = _evaluate_method(name, ingested, out_dir, result["name"], truth_path, options)
        except Exception as exc:
            metrics = {"ok": False, "error": one_line(exc, Path(entry.paths[0]))}
            emit("failed", {"scan": result["name"], "method": name, "error": metrics["error"]})
        else:
            emit("method", {"scan": result["name"], "method": name, **{k: metrics[k] for k in METRIC_KEYS}})
        result["methods"][name] = metrics
    ok = {m: v for m, v in result["methods"].items() if v.get("ok")}
    result["artefact_vs_truth"] = (
        rank_agreement({m: v["artefact"] for m, v in ok.items()}, {m: v["ncc_truth"] for m, v in ok.items()})
        if truth_path is not None else None
    )  # fmt: skip
    return result


def summarise(scans: list[dict[str, Any]], methods: tuple[str, ...]) -> dict[str, Any]:
    """Per method: mean over scans and per-scan values of every metric, leak verdict, time per frame."""
    out: dict[str, Any] = {}
    for name in methods:
        rows = [(s["name"], s["methods"].get(name)) for s in scans if s.get("ok")]
        good = [(scan, m) for scan, m in rows if m and m.get("ok")]
        entry: dict[str, Any] = {"scans": len(good), "failed": [scan for scan, m in rows if not (m and m.get("ok"))]}
        for key in METRIC_KEYS:
            per = {scan: _finite(m.get(key)) for scan, m in good}
            vals = [v for v in per.values() if v is not None]
            entry[key] = {"mean": float(np.mean(vals)) if vals else None, "per_scan": per}
        seconds = sum(m["register_seconds"] for _, m in good)
        frames = sum(next(s["frames"] for s in scans if s["name"] == scan) for scan, _ in good)
        entry["ms_per_frame"]["overall"] = 1000.0 * seconds / frames if frames else None
        entry["leak_passed"] = bool(good) and all(m["leak_passed"] for _, m in good)
        entry["leak_excess_max"] = max((m["leak_excess"] for _, m in good), default=None)
        out[name] = entry
    return out


def evaluate(
    src: Path | None,
    out_dir: Path,
    options: EvaluateOptions,
    benchmark: bool = False,
    on_event: EventFn | None = None,
) -> dict[str, Any]:
    """Evaluate every method on the scans under ``src`` or, with ``benchmark``, on the held-out benchmark.

    Returns the JSON-able evaluation (per scan, aggregated, thresholds, machine, date, version); the
    caller writes it out with :func:`orpam_pipeline.evaluate.outputs.write_outputs`.
    """
    if not options.methods:
        raise OrpamError("no methods to evaluate")
    for name in options.methods:
        method = make_method(name, options.settings)
        checkpoint = method.settings.checkpoint if method.uses_network else None
        if checkpoint is not None and not Path(checkpoint).is_file():
            raise OrpamError(f"{checkpoint}: checkpoint of method {name!r} not found (pass --checkpoint or drop {name})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    bench_index = None
    if benchmark:
        bench_index = ensure_benchmark(out_dir / BENCHMARK_DATA)
        src = out_dir / BENCHMARK_DATA / "scans"
        entries = [ScanEntry(s["name"], (out_dir / BENCHMARK_DATA / s["scan"],)) for s in bench_index["scans"]]
    else:
        if src is None:
            raise OrpamError("give a source of scans, or --benchmark")
        entries = scans_under(Path(src), out_dir, options.variable, positions=options.positions)
    scans = [evaluate_scan(e, out_dir, options, on_event) for e in entries]
    if bench_index is not None:
        described = {s["name"]: s for s in bench_index["scans"]}
        for s in scans:
            b = described.get(s["name"], {})
            s["benchmark"] = {k: b.get(k) for k in ("description", "seed", "status", "scan_sha256")}
    agreements = [s["artefact_vs_truth"] for s in scans if s.get("ok") and s.get("artefact_vs_truth")]
    return {
        "package_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "source": str(src) if src is not None else None,
        "benchmark": bool(benchmark),
        "benchmark_scans": [s.name for s in BENCHMARK_SCANS] if benchmark else None,
        "methods": list(options.methods),
        "settings": options.settings,
        "max_frames": options.max_frames,
        "thresholds": {
            "leak_excess": options.leak_threshold,
            "leak_frames": options.leak_frames,
            "leak_seed": options.seed,
            "artefact_comb_sigma_y": COMB_SIGMA_Y,
        },
        "scans": scans,
        "summary": summarise(scans, tuple(options.methods)),
        "artefact_vs_truth": {
            "scans": len(agreements),
            "mean_spearman": _mean([a["spearman"] for a in agreements]),
            "mean_pairwise": _mean([a["pairwise"] for a in agreements]),
        },
        "seconds": round(time.perf_counter() - started, 2),
    }


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None
