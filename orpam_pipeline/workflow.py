"""Declarative workflows: the batch, temporal-report and training jobs labs repeat, as TOML files.

A workflow file names its kind, inputs, output folder, method or training settings and where to
compute (format: ``workflows/README.md``). Relative paths in the file are relative to the file's
folder; ``--set section.key=value`` overrides (paths there relative to the current directory) are
applied before anything runs. The resolved content, the file's sha256, the overrides and the package
version are written to ``workflow.json`` in the output folder and into every scan store it produces
(group attribute ``workflow``).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import math
import os
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from orpam_pipeline import __version__
from orpam_pipeline.remote.urls import filesystem, is_url, join
from orpam_pipeline.scheduling import compute_context
from orpam_pipeline.errors import OrpamError
from orpam_pipeline.options import ComputeOptions, RunOptions, ScanOptions
from orpam_pipeline.pipeline import ScanOutcome, one_line, run_batch
from orpam_pipeline.register.engine import ProgressFn
from orpam_pipeline.register.registry import DEFAULT_METHOD, trained_architecture
from orpam_pipeline.store.files import atomic_write
from orpam_pipeline.store.layout import now_iso, resolve_store_path

KINDS = ("batch", "temporal-report", "train")
RECORD = "workflow.json"
SUMMARY_METRICS = (
    "tncc_merged", "tncc_odd", "tncc_unregistered", "tncg", "tncg_unregistered", "ncc_mean", "ncc_mean_unregistered",
)  # fmt: skip

_WORKFLOW = {"kind", "name", "description"}
_SCAN_OPTIONS = {f.name for f in fields(ScanOptions)} | {"overwrite", "wait_for_locks", "strict", "figures"}
_COMPUTE = {f.name for f in fields(ComputeOptions)}
_TRAIN_EXTRA = {"method", "base_channels", "resume"}
METHOD_SETTINGS = None
"""Marker: the keys of ``[method]`` are ``name`` plus the chosen method's declared settings."""
SCHEMA: dict[str, dict[str, set[str] | None]] = {
    "batch": {"workflow": _WORKFLOW, "inputs": {"scans"}, "output": {"dir"}, "method": METHOD_SETTINGS,
              "options": _SCAN_OPTIONS, "compute": _COMPUTE},
    "temporal-report": {"workflow": _WORKFLOW, "inputs": {"scans", "stores"}, "output": {"dir"},
                        "method": METHOD_SETTINGS, "options": _SCAN_OPTIONS, "summary": {"metrics"},
                        "compute": _COMPUTE},
    "train": {"workflow": _WORKFLOW, "inputs": {"manifest"}, "output": {"dir"}, "train": None, "compute": _COMPUTE},
}  # fmt: skip
"""Sections and keys each kind accepts, named as the CLI names them (None: checked against a declaration)."""

LEGACY_KEYS = {
    ("compute", "address"): ("compute", "scheduler"),
    ("compute", "device"): ("train", "device"),
    ("model", "arch"): ("train", "method"),
    ("model", "base_channels"): ("train", "base_channels"),
    ("output", "resume"): ("train", "resume"),
    ("train", "amp"): ("train", "precision"),
    ("method", "profile"): ("method", "line_profile"),
}
"""Spellings of earlier releases -> today's (accepted with a note for one release)."""

_PATHS = {("inputs", "scans"), ("inputs", "stores"), ("inputs", "manifest"), ("output", "dir"), ("method", "checkpoint"), ("train", "init")}


@dataclass
class Workflow:
    """A loaded workflow: its file, the overrides given and the resolved settings (absolute paths)."""

    file: Path
    sha256: str
    overrides: list[str]
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    """Old spellings that were translated (say them to the user)."""

    @property
    def kind(self) -> str:
        return str(self.config["workflow"]["kind"])

    @property
    def output(self) -> Path | str:
        """The output folder, or its URL (object storage, batch workflows only)."""
        value = self.config["output"]["dir"]
        return str(value) if is_url(value) else Path(value)

    def record(self) -> dict[str, Any]:
        """What every output of the workflow records about it."""
        return {"file": str(self.file), "sha256": self.sha256, "overrides": list(self.overrides),
                "resolved": copy.deepcopy(self.config), "package_version": __version__}  # fmt: skip


@dataclass
class WorkflowHooks:
    """Optional progress callbacks (the CLI's progress bars)."""

    on_start: Callable[[int, int, str], None] | None = None
    progress: ProgressFn | None = None
    on_done: Callable[[ScanOutcome], None] | None = None
    on_train: Callable[[dict[str, Any]], None] | None = None


@dataclass
class WorkflowResult:
    kind: str
    output: Path | str
    record: Path | str
    outcomes: list[ScanOutcome] = field(default_factory=list)
    summary: dict[str, Path] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    train: Any = None

    @property
    def failed(self) -> list[str]:
        return [o.error or o.name for o in self.outcomes if not o.ok] + [r["error"] for r in self.rows if r.get("error")]


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` -> (["section", "key"], value); the value is read as TOML, else as a string."""
    key, sep, raw = text.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or len(parts) < 2 or not all(parts):
        raise OrpamError(f"--set {text!r}: expected section.key=value, e.g. output.dir=/tmp/out")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return parts, value


def _resolve_path(value: Any, base: Path, where: str) -> Any:
    if isinstance(value, list):
        return [_resolve_path(v, base, where) for v in value]
    if not isinstance(value, str) or not value:
        raise OrpamError(f"{where}: expected a path (string), got {value!r}")
    if is_url(value):
        return value.rstrip("/")
    path = Path(os.path.expanduser(value))
    return str(path if path.is_absolute() else Path(os.path.normpath(base / path)))


def _resolve_paths(config: dict[str, Any], base: Path, only: set[tuple[str, str]] | None = None) -> None:
    for section, key in _PATHS:
        if only is not None and (section, key) not in only:
            continue
        value = config.get(section, {}).get(key)
        if value is not None:
            config[section][key] = _resolve_path(value, base, f"{section}.{key}")


def _upgrade(config: dict[str, Any], file: Path) -> list[str]:
    """Translate the spellings of earlier releases in place; returns one note per translation."""
    notes = []
    for (old_section, old_key), (section, key) in LEGACY_KEYS.items():
        table = config.get(old_section)
        if isinstance(table, dict) and old_key in table:
            value = table.pop(old_key)
            if old_key == "amp":
                value = "fp32" if value == "off" else value
            config.setdefault(section, {}).setdefault(key, value)
            notes.append(f"{file}: [{old_section}] {old_key} is now [{section}] {key}")
    compute = config.get("compute", {})
    if isinstance(compute, dict) and "mode" in compute:
        mode = compute.pop("mode")
        if mode not in ("local", "workers", "scheduler"):
            raise OrpamError(f"{file}: [compute] mode must be local, workers or scheduler, not {mode!r}")
        if mode == "workers":
            compute.setdefault("workers", 2)
        else:
            compute.pop("workers", None)
        if mode != "scheduler":
            compute.pop("scheduler", None)
        notes.append(f"{file}: [compute] mode is gone; give workers = N or scheduler = ADDRESS (neither: local threads)")
    if isinstance(config.get("model"), dict) and not config["model"]:
        del config["model"]
    return notes


def _allowed(section: str, config: dict[str, Any], kind: str) -> set[str]:
    allowed = SCHEMA[kind][section]
    if allowed is not None:
        return allowed
    if section == "method":
        from orpam_pipeline.register import method_class
        from orpam_pipeline.settings import describe_settings

        cls = method_class(str(config.get("method", {}).get("name", DEFAULT_METHOD)))
        return {"name"} | {s.name for s in describe_settings(cls.settings_type)}
    from orpam_pipeline.train.config import TrainConfig

    return {f.name for f in fields(TrainConfig)} | _TRAIN_EXTRA


def _validate(config: dict[str, Any], file: Path) -> None:
    kind = config.get("workflow", {}).get("kind")
    if kind not in KINDS:
        raise OrpamError(f"{file}: [workflow] kind must be one of {', '.join(KINDS)}, not {kind!r}")
    schema = SCHEMA[kind]
    for section, values in config.items():
        if section not in schema:
            raise OrpamError(f"{file}: unknown section [{section}] for a {kind} workflow (known: {', '.join(schema)})")
        if not isinstance(values, dict):
            raise OrpamError(f"{file}: [{section}] must be a table")
        allowed = _allowed(section, config, kind)
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise OrpamError(f"{file}: unknown key(s) in [{section}]: {', '.join(unknown)} (known: {', '.join(sorted(allowed))})")
    if "dir" not in config.get("output", {}):
        raise OrpamError(f"{file}: [output] dir is required")
    compute = config.get("compute", {})
    if sum(bool(compute.get(k)) for k in ("scheduler", "workers", "cluster")) > 1:
        raise OrpamError(f"{file}: [compute] give one of scheduler, workers or cluster")
    cluster = compute.get("cluster")
    if cluster is not None:
        from orpam_pipeline.scheduling import CLUSTER_KINDS

        if not isinstance(cluster, dict) or cluster.get("kind") not in CLUSTER_KINDS:
            raise OrpamError(f"{file}: [compute] cluster must be a table whose kind is one of {', '.join(CLUSTER_KINDS)}")
    if kind == "train" and "manifest" not in config.get("inputs", {}):
        raise OrpamError(f"{file}: [inputs] manifest is required for a train workflow")
    if kind != "train" and not (config.get("inputs", {}).get("scans") or config.get("inputs", {}).get("stores")):
        raise OrpamError(f"{file}: [inputs] needs scans (or stores, for temporal-report)")


def load_workflow(file: Path | str, overrides: Sequence[str] = ()) -> Workflow:
    """Read, resolve and check a workflow file; ``overrides`` are ``section.key=value`` strings."""
    file = Path(file).absolute()
    try:
        data = file.read_bytes()
        config = tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise OrpamError(f"{file}: workflow file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OrpamError(f"{file}: not valid TOML ({exc})") from None
    _resolve_paths(config, file.parent)
    for text in overrides:
        keys, value = parse_override(text)
        table = config
        for k in keys[:-1]:
            table = table.setdefault(k, {})
            if not isinstance(table, dict):
                raise OrpamError(f"--set {text!r}: {k} is not a table")
        table[keys[-1]] = value
        if tuple(keys) in _PATHS:
            _resolve_paths(config, Path.cwd(), {(keys[0], keys[1])})
    for key in ("scans", "stores"):
        value = config.get("inputs", {}).get(key)
        if isinstance(value, str):
            config["inputs"][key] = [value]
    notes = _upgrade(config, file)
    _validate(config, file)
    return Workflow(file, hashlib.sha256(data).hexdigest(), list(overrides), config, notes)


def _compute(config: dict[str, Any]) -> Any:
    c = ComputeOptions(**config.get("compute", {}))
    return compute_context(scheduler=c.scheduler, workers=c.workers, threads_per_worker=c.threads_per_worker,
                           cluster=c.cluster)


def _run_options(config: dict[str, Any]) -> RunOptions:
    method = dict(config.get("method", {}))
    name = method.pop("name", DEFAULT_METHOD)
    return RunOptions(method=name, settings=method, **config.get("options", {}))


def _stamp_store(store: Path, record: dict[str, Any]) -> None:
    """Record the workflow in the store's group attributes."""
    import zarr

    from orpam_pipeline.store.lock import store_lock

    store = resolve_store_path(store)
    with store_lock(store.parent):
        zarr.open_group(store, mode="r+").attrs["workflow"] = record


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(value, indent=1, allow_nan=False, default=str))


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _batch(wf: Workflow, hooks: WorkflowHooks) -> list[ScanOutcome]:
    options = _run_options(wf.config)
    outcomes: list[ScanOutcome] = []
    record = wf.record()
    for src in wf.config["inputs"].get("scans", []):
        jobs = wf.config.get("compute", {}).get("jobs")
        where = src if is_url(src) else Path(src)
        for outcome in run_batch(where, wf.output, options, hooks.on_start, hooks.progress, hooks.on_done, jobs=jobs):
            if outcome.ok and outcome.store is not None:
                _stamp_store(outcome.store, record)
            outcomes.append(outcome)
    return outcomes


def _store_row(store: Path, record: dict[str, Any]) -> dict[str, Any]:
    """The report of an already registered store (made now when missing or stale)."""
    from orpam_pipeline.report.scan_report import current_report, write_report

    store = resolve_store_path(store)
    try:
        existing = current_report(store)
        report = (existing or write_report(store))[0]
        _stamp_store(store, record)
        return {"scan": store.parent.name, "store": str(store), "report": report}
    except Exception as exc:
        return {"scan": store.parent.name, "store": str(store), "error": one_line(exc, store)}


def _temporal(wf: Workflow, hooks: WorkflowHooks, result: WorkflowResult) -> None:
    record = wf.record()
    result.outcomes = _batch(wf, hooks) if wf.config["inputs"].get("scans") else []
    entries = [{"scan": o.name, "store": str(o.store), "report": o.report} for o in result.outcomes if o.ok]
    entries += [_store_row(Path(s), record) for s in wf.config["inputs"].get("stores", [])]
    metrics = list(wf.config.get("summary", {}).get("metrics", SUMMARY_METRICS))
    rows = []
    for e in entries:
        row: dict[str, Any] = {"scan": e["scan"], "store": e["store"]}
        if "error" in e:
            row["error"] = e["error"]
        else:
            report = e["report"]
            row.update(frames=report.get("frames"), method=report.get("method"))
            row.update({m: _finite(report.get(m)) for m in metrics})
        rows.append(row)
    good = [r for r in rows if "error" not in r]
    mean = {m: _mean([r.get(m) for r in good]) for m in metrics}
    result.rows = rows
    out = wf.output
    out.mkdir(parents=True, exist_ok=True)
    columns = ["scan", "store", "frames", "method", *metrics, "error"]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    writer.writerow({"scan": "mean", "frames": sum(r["frames"] or 0 for r in good), **mean})
    atomic_write(out / "summary.csv", text.getvalue())
    _write_json(out / "summary.json", {"metrics": metrics, "scans": rows, "mean": mean, "workflow": record})
    result.summary = {"csv": out / "summary.csv", "json": out / "summary.json"}


def _mean(values: list[Any]) -> float | None:
    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _train_job(manifest: str, out: str, train: dict[str, Any], progress: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """Training as one call, here or as a task on a cluster worker; ``train`` is the ``[train]`` table."""
    from orpam_pipeline.models.architectures import get_architecture
    from orpam_pipeline.train.trainer import TrainConfig, train as run_training

    train = dict(train)
    arch = get_architecture(trained_architecture(str(train.pop("method", "pcregnet"))))
    resume = bool(train.pop("resume", False))
    try:
        model_config = arch.config_class()(base_channels=int(train.pop("base_channels", 32)))
    except (TypeError, ValueError) as exc:
        raise OrpamError(f"[train] base_channels: {exc}") from None
    config = TrainConfig.from_dict(train)
    return run_training(manifest, out, config, model_config, resume=resume, progress=progress)


def _train(wf: Workflow, hooks: WorkflowHooks) -> Any:
    from orpam_pipeline.scheduling import active_client, placement
    from orpam_pipeline.models.checkpoint import export_model

    c = wf.config
    train = dict(c.get("train", {}))
    wf.output.mkdir(parents=True, exist_ok=True)
    _write_json(wf.output / RECORD, {**wf.record(), "started": now_iso(), "finished": None})
    client = active_client()
    if client is None:
        result = _train_job(c["inputs"]["manifest"], str(wf.output), train, progress=hooks.on_train)
    else:
        wants = {"GPU": 1.0} if str(train.get("device", "auto")).startswith(("cuda", "auto")) else {}
        future = client.submit(_train_job, c["inputs"]["manifest"], str(wf.output), train,
                               resources=placement(client, wants) or None, pure=False)  # fmt: skip
        result = future.result()
    export_model(result.best_checkpoint, wf.output / "model.pt")
    return result


def run_workflow(wf: Workflow, hooks: WorkflowHooks | None = None) -> WorkflowResult:
    """Run a loaded workflow on the compute it names; writes ``workflow.json`` into its output folder."""
    hooks = hooks or WorkflowHooks()
    started = now_iso()
    if isinstance(wf.output, str) and wf.kind != "batch":
        raise OrpamError(f"{wf.file}: [output] dir may be a URL for batch workflows only")
    record = join(wf.output, RECORD) if isinstance(wf.output, str) else wf.output / RECORD
    result = WorkflowResult(wf.kind, wf.output, record)
    with _compute(wf.config):
        if wf.kind == "batch":
            result.outcomes = _batch(wf, hooks)
        elif wf.kind == "temporal-report":
            _temporal(wf, hooks, result)
        else:
            result.train = _train(wf, hooks)
    outputs: dict[str, Any] = {"scans": [
        {"name": o.name, "ok": o.ok, "status": o.status, "store": o.store, "error": o.error} for o in result.outcomes
    ]}  # fmt: skip
    if result.summary:
        outputs["summary"] = {k: str(v) for k, v in result.summary.items()}
    if result.train is not None:
        outputs["train"] = {"best_checkpoint": str(result.train.best_checkpoint), "model": str(wf.output / "model.pt"),
                            "epochs_completed": result.train.epochs_completed}  # fmt: skip
    document = {**wf.record(), "started": started, "finished": now_iso(), "outputs": outputs}
    if isinstance(result.record, str):
        fs, path = filesystem(result.record)
        fs.pipe_file(path, json.dumps(document, indent=1, allow_nan=False, default=str).encode("utf-8"))
    else:
        _write_json(result.record, document)
    return result
