"""``orpam run`` with sources and/or outputs in object storage: discover, stage, process, upload.

Per scan (on whichever worker holds it): take the remote folder's lease (:mod:`.lock`); if its
manifest says it was made from the same source object with the same options, skip it; else download
the source to the staging area, run :func:`orpam_pipeline.pipeline.process_scan` there (an
interrupted earlier run on this machine is continued chunk by chunk), record the source's URL in the
store, upload the folder with its manifest last (:mod:`.sync`) and delete the staged copies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import zarr

from orpam_pipeline.errors import OrpamError, one_line
from orpam_pipeline.io.discover import ScanEntry, discover_scans, unique_entries
from orpam_pipeline.io.readers import is_supported
from orpam_pipeline.options import RunOptions
from orpam_pipeline.remote.lock import RemoteLockBusy, check_held, remote_lock
from orpam_pipeline.remote.sync import download_file, read_manifest, upload_folder
from orpam_pipeline.remote.urls import filesystem, is_url, join, redact
from orpam_pipeline.scheduling import ProgressFn, map_scans
from orpam_pipeline.store.layout import STORE_NAME

CACHE_ENV = "ORPAM_CACHE_DIR"


def default_cache() -> Path:
    """Where scans are staged: ``$ORPAM_CACHE_DIR``, else ``~/.cache/orpam``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "orpam")


@dataclass(frozen=True)
class RemoteScan:
    """One scan: its safe name and where its file is (a URL, or a local path when only the output is remote)."""

    name: str
    location: str
    original: str | None = None


def discover_remote(src: str, storage_options: dict[str, Any] | None, out: str | None = None) -> list[RemoteScan]:
    """Every supported object under ``src`` as a scan of its own, named by its relative path without
    suffix (``a/b/scan1.mat`` -> ``a_b_scan1``); hidden names and anything under ``out`` are left out.
    Folders of 2-D frame files are not grouped into one scan here (that needs each file's header)."""
    fs, root = filesystem(src, storage_options)
    fs.invalidate_cache(root)
    if not fs.exists(root):
        raise OrpamError(f"{redact(src)}: no such object or prefix")
    if fs.isfile(root):
        keys = [root]
        base = root.rsplit("/", 1)[0]
    else:
        keys = sorted(fs.find(root))
        base = root.rstrip("/")
    out_root = filesystem(out, storage_options)[1].rstrip("/") + "/" if out and is_url(out) else None
    entries = []
    for key in keys:
        rel = key[len(base):].lstrip("/")
        parts = rel.split("/")
        if any(p.startswith(".") for p in parts) or not is_supported(Path(parts[-1])):
            continue
        if out_root is not None and (key + "/").startswith(out_root):
            continue
        stem = Path(parts[-1]).stem
        name = "_".join([*parts[:-1], stem])
        url = f"{src.split('://', 1)[0]}://{key}"
        entries.append((ScanEntry(name, (Path(parts[-1]),)), Path(parts[-1]).suffix.lower().lstrip("."), url))
    if not entries:
        raise OrpamError(f"{redact(src)}: no scan files found")
    named = unique_entries([(e, suffix) for e, suffix, _ in entries])
    return [RemoteScan(n.name, url, n.original) for n, (_, _, url) in zip(named, entries)]


def _identity(fs: Any, path: str) -> dict[str, Any]:
    """What identifies a source object's content without reading it: size and ETag (or mtime)."""
    info = fs.info(path)
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("mtime") or info.get("LastModified")
    return {"size": int(info.get("size") or 0), "etag": str(tag).strip('"') if tag is not None else None}


def run_key(options: RunOptions, source: dict[str, Any]) -> str:
    """sha256 of the source object's identity and the options that shape the outputs."""
    opts = {k: v for k, v in asdict(options).items() if k not in ("overwrite", "wait_for_locks", "strict")}
    text = json.dumps({"source": source, "options": opts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def source_identity(scan: RemoteScan, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    """Size and ETag of a source object (size and modification time of a local source file)."""
    if is_url(scan.location):
        return _identity(*filesystem(scan.location, storage_options))
    stat = Path(scan.location).stat()
    return {"size": stat.st_size, "etag": str(stat.st_mtime_ns)}


def _stage_source(scan: RemoteScan, identity: dict[str, Any], storage_options: dict[str, Any] | None,
                  where: Path) -> Path:
    """The source as a local file: downloaded into ``where`` unless a copy of the same ``identity`` is there."""
    if not is_url(scan.location):
        return Path(scan.location)
    fs, key = filesystem(scan.location, storage_options)
    target = where / key.rsplit("/", 1)[-1]
    stamp = target.with_name(f".{target.name}.identity.json")
    if not (target.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == identity):
        download_file(fs, key, target)
        stamp.write_text(json.dumps(identity))
    return target


def staging_root(cache: Path, out: str) -> Path:
    """This output URL's own staging folder under the cache."""
    return cache / "staging" / hashlib.sha256(out.encode()).hexdigest()[:16]


def _record_origin(store: Path, staged: Path, url: str) -> None:
    """Name the source by its URL in the store (the staged copy is deleted after the upload)."""
    group = zarr.open_group(store, mode="r+")
    source = dict(group.attrs.get("source") or {})
    files = [dict(f) for f in source.get("files") or []]
    for f in files:
        if Path(f.get("path", "")).name == staged.name:
            f["path"] = url
            f.pop("path_bytes_hex", None)
    source["files"] = files
    group.attrs["source"] = source


def _report_of(fs: Any, folder: str) -> dict[str, Any] | None:
    try:
        return json.loads(fs.cat_file(f"{folder}/report.json").decode("utf-8"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None


def process_remote_scan(scan: RemoteScan, out: str, options: RunOptions, storage_options: dict[str, Any] | None,
                        cache: Path, progress: ProgressFn | None = None, ingest_only: bool = False) -> Any:
    """One scan from its (remote or local) source to a folder under the output URL ``out``; failures come
    back in the outcome, never as exceptions."""
    from orpam_pipeline.pipeline import ScanOutcome, ingest_entry, process_scan, worker_method

    started = time.perf_counter()
    folder_url = join(out, scan.name)
    stage = staging_root(cache, out)
    local_out, local_src = stage / "out", stage / "sources" / scan.name

    def shown(text: str) -> str:
        """A message naming the output folder by its URL, not by its staged copy."""
        return text.replace(str(local_out / scan.name), redact(folder_url))

    def failed(exc: BaseException) -> ScanOutcome:
        text = shown(one_line(exc, Path(scan.name)))
        return ScanOutcome(scan.name, redact(scan.location), False, time.perf_counter() - started, error=text,
                           status="busy" if isinstance(exc, RemoteLockBusy) else "failed")  # fmt: skip

    try:
        fs, folder = filesystem(folder_url, storage_options)
        fs.invalidate_cache(folder)
        with remote_lock(fs, folder, wait=float("inf") if options.wait_for_locks else 0.0, url=folder_url) as held:
            identity = source_identity(scan, storage_options)
            key = run_key(options, {"url": redact(scan.location), **identity}) + ("-ingest" if ingest_only else "")
            manifest = read_manifest(fs, folder)
            if manifest is not None and manifest.get("run_key") == key:
                report = _report_of(fs, folder)
                return ScanOutcome(scan.name, redact(scan.location), True, time.perf_counter() - started,
                                   report=report, status="skipped", location=redact(folder_url),
                                   warnings=list((report or {}).get("warnings") or []))  # fmt: skip
            if manifest is not None and not options.overwrite:
                raise OrpamError(f"{redact(folder_url)}: made with other parameters or another source; rerun with "
                                 "--overwrite to replace it")  # fmt: skip
            staged = _stage_source(scan, identity, storage_options, local_src)
            entry = ScanEntry(scan.name, (staged,))
            if ingest_only:
                outcome = ingest_entry(entry, local_out, options, progress)
            else:
                outcome = process_scan(entry, local_out, options, progress, worker_method(options))
            if outcome.store is None:
                outcome.error = shown(outcome.error or "")
                outcome.source, outcome.seconds = redact(scan.location), time.perf_counter() - started
                return outcome
            if is_url(scan.location):
                _record_origin(outcome.store, staged, redact(scan.location))
            upload_folder(outcome.store.parent, fs, folder,
                          {"run_key": key, "source": {"url": redact(scan.location), **identity}, "scan": scan.name},
                          check=lambda: check_held(held, fs, folder, folder_url))  # fmt: skip
        shutil.rmtree(local_out / scan.name, ignore_errors=True)
        shutil.rmtree(local_src, ignore_errors=True)
        outcome.source, outcome.location = redact(scan.location), redact(folder_url)
        outcome.store = outcome.report_html = None  # the staged copy is gone; ``location`` says where it is
        outcome.seconds = time.perf_counter() - started
        return outcome
    except Exception as exc:  # one bad scan must not stop the batch
        return failed(exc)


def run_remote_batch(src: str, out: str, options: RunOptions, on_start: Callable[[int, int, str], None] | None = None,
                     progress: ProgressFn | None = None, on_done: Callable[[Any], None] | None = None, *,
                     ingest_only: bool = False, jobs: int | None = None,
                     storage_options: dict[str, Any] | None = None, cache_dir: Path | None = None) -> list[Any]:
    """:func:`orpam_pipeline.pipeline.run_batch` where ``src`` or ``out`` is a URL."""
    from orpam_pipeline.pipeline import ScanOutcome, worker_method

    if not is_url(out):
        raise OrpamError(f"{redact(src)}: a URL source needs a URL output too (the scans are staged and uploaded); "
                         "copy the sources locally to write a local output")  # fmt: skip
    if not ingest_only:
        worker_method(options)
    cache = Path(cache_dir) if cache_dir is not None else default_cache()
    if is_url(src):
        scans = discover_remote(src, storage_options, out)
    else:
        entries = discover_scans(Path(src), variable=options.variable, raw=options.read_spec().raw,
                                 positions=options.positions)  # fmt: skip
        if any(len(e.paths) != 1 for e in entries):
            raise OrpamError(f"{src}: folders of frame files go to object storage one scan per file; stack them first")
        scans = [RemoteScan(e.name, str(e.paths[0].resolve()), e.original) for e in entries]

    def one(scan: RemoteScan, report: ProgressFn | None) -> Any:
        outcome = process_remote_scan(scan, out, options, storage_options, cache, report, ingest_only)
        outcome.renamed_from = scan.original
        return outcome

    def lost(scan: RemoteScan, exc: BaseException) -> Any:
        return ScanOutcome(scan.name, redact(scan.location), False, 0.0, error=f"{redact(scan.location)}: {exc}")

    return map_scans(one, scans, [s.name for s in scans], jobs=jobs, on_start=on_start, on_done=on_done,
                     on_lost=lost, progress=progress, always_tasks=True)  # fmt: skip


def write_remote_index(out: str, outcomes: list[Any], storage_options: dict[str, Any] | None,
                       cache_dir: Path | None = None) -> str:
    """``OUT/index.html`` and ``index.json`` for a batch in object storage (rows from this run's outcomes;
    no thumbnails: the scans' stores are not kept locally). Returns the page's URL."""
    from orpam_pipeline.report.batch import write_batch_index

    cache = Path(cache_dir) if cache_dir is not None else default_cache()
    local = staging_root(cache, out) / "index"
    json_path, html_path = write_batch_index(local, outcomes, label=redact(out))
    fs, root = filesystem(out, storage_options)
    for path in (json_path, html_path):
        fs.pipe_file(f"{root}/{path.name}", path.read_bytes())
    return join(redact(out), html_path.name)


__all__ = ["RemoteScan", "discover_remote", "process_remote_scan", "run_remote_batch", "write_remote_index",
           "default_cache", "STORE_NAME"]
