"""Copy one scan from its source file(s) into a zarr store, a chunk of frames at a time, resumably.

The store skeleton (group attributes with an incomplete ``ingest`` stage record and its parameter
fingerprint, and the empty ``frames`` array, plus ``depth_map`` when a depth axis is reduced) is built
under a hidden temporary name and renamed into place, so the final path only ever holds a store that
says what it is. Frames (and depth maps) are then written into the final store chunk by chunk, each
chunk followed by its completion marker; the stage is marked complete only after the last chunk. The
thread that reads the source hands each chunk to a few writer threads (compression and ``fsync``
overlap the next read), at most :func:`write_threads` chunks in flight. A rerun with the same source
and parameters continues where an interrupted run stopped (or starts afresh when asked for another
chunking; a complete store keeps its own); different ones are refused unless ``overwrite``. Sources are opened read-only and never touched.
Checks of the axes (``checks/axes.py``) run alongside and record their warnings before completion.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr

from orpam_pipeline import __version__
from orpam_pipeline.checks import Finding, record_warnings
from orpam_pipeline.cores import usable_cores
from orpam_pipeline.checks.axes import UnnamedAxesProbe, ingest_checks
from orpam_pipeline.errors import ScanError, StoreError
from orpam_pipeline.geometry import FirstLine, fixed_parity
from orpam_pipeline.io import ScanSource
from orpam_pipeline.io.axes import swap_lines
from orpam_pipeline.io.physical import store_physical
from orpam_pipeline.memory import check_memory
from orpam_pipeline.store.files import partial_path
from orpam_pipeline.store.layout import (
    DEPTH_MAP,
    FRAMES,
    LAYOUT_ATTR,
    LAYOUT_VERSION,
    STORE_NAME,
    auto_chunk_frames,
    check_layout,
    create_frame_array,
    image_levels,
    mark_stage,
    now_iso,
    remove_tree,
    write_image,
)
from orpam_pipeline.store.ngff import default_levels
from orpam_pipeline.store.lock import store_lock
from orpam_pipeline.store.names import scan_folder
from orpam_pipeline.store.resume import ChunkMarkers, clean_strays, clear_state, fingerprint
from orpam_pipeline.store.stage import decide

ScanLines = Literal["columns", "rows"]
IngestState = Literal["created", "resumed", "complete"]
MIN_LINES = 2
MIN_LINE_LENGTH = 4
MAX_WRITE_THREADS = 4


@dataclass(frozen=True)
class IngestResult:
    """Where the store is and what this call did: wrote it anew, continued it, or found it complete."""

    store: Path
    state: IngestState
    chunks: int
    chunks_written: int


def ingest_params(source: ScanSource, scan_lines: str, first_line: str, reverse_backward: bool = False) -> dict[str, Any]:
    """What the ingested frames depend on: the source bytes and how they are read (not the chunking).

    ``reverse_backward`` is recorded only when set, so stores made before the option keep their fingerprint.
    """
    prov = dict(source.provenance())
    prov.pop("name", None)
    files = [{"name": Path(f["path"]).name, "size": f["size"], "sha256": f["sha256"]} for f in prov.pop("files")]
    params = {**prov, "files": files, "scan_lines": scan_lines, "first_line": first_line}
    if reverse_backward:
        params["reverse_backward"] = True
    return params


def flip_backward(block: np.ndarray, first_line: FirstLine) -> np.ndarray:
    """Frames ``(t, Y, X)`` with the backward columns flipped along Y (for ``--reverse-backward``)."""
    out = np.array(block, copy=True)
    moving = 1 - fixed_parity(first_line)
    out[:, :, moving::2] = out[:, ::-1, moving::2]
    return out


def _existing_record(target: Path) -> dict[str, Any] | None:
    """The ingest record of a store at ``target``: None when there is no store, ``{}`` when it has none.

    A store of another layout is refused (``--overwrite`` removes it before this is asked).
    """
    if not target.exists():
        return None
    try:
        group = zarr.open_group(target, mode="r")
    except Exception:  # zarr raises several types for damaged metadata
        return {}
    record = dict(group.attrs.get("stages", {})).get("ingest")
    if record:
        check_layout(group, target)
    return dict(record) if record else {}


def _create_skeleton(
    target: Path, attrs: dict[str, Any], shape: tuple[int, int, int], chunk: int, depth_map: bool = False, levels: int = 0
) -> None:
    """Build group attributes and the empty arrays aside, then move them into place at once."""
    partial = partial_path(target)
    try:
        group = zarr.open_group(partial, mode="w")
        group.attrs.update(attrs)
        create_frame_array(group, FRAMES, shape, chunk, levels=levels)
        if depth_map:
            create_frame_array(group, DEPTH_MAP, shape, chunk, levels=levels)
        clear_state(target)
        partial.rename(target)
    except BaseException:
        remove_tree(partial)
        raise


def ingest(
    source: ScanSource,
    out_dir: Path,
    *,
    scan_lines: ScanLines = "columns",
    first_line: FirstLine = "forward",
    chunk_frames: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    reverse_backward: bool = False,
    scale: dict[str, Any] | None = None,
    levels: int | None = None,
    on_chunk: Callable[[int, np.ndarray, str], None] | None = None,
) -> IngestResult:
    """Write (or continue writing) ``source`` to ``out_dir/<scan name>/scan.zarr``.

    ``reverse_backward`` flips the backward columns along Y (after any ``scan_lines`` transposition),
    for acquisitions that store backward lines in scan order. ``levels`` lower-resolution levels of
    every image are written for viewers (default: ``store.ngff.default_levels``). ``on_chunk(index,
    frames, first_line)`` sees every chunk this call writes, as stored, once it is written.
    """
    fixed_parity(first_line)
    if scan_lines not in ("columns", "rows"):
        raise ValueError(f"scan_lines must be 'columns' or 'rows', not {scan_lines!r}")
    target = scan_folder(Path(out_dir), source.name) / STORE_NAME

    n_frames, rows, cols = source.shape
    height, width = (rows, cols) if scan_lines == "columns" else (cols, rows)
    where = source.paths[0] if len(source.paths) == 1 else source.paths[0].parent
    first_line = _first_line(source, first_line, where)
    if width < MIN_LINES or height < MIN_LINE_LENGTH:
        raise ScanError(
            where,
            f"frames of {height}x{width} (Y x X) are too small: need at least {MIN_LINE_LENGTH} rows and "
            f"{MIN_LINES} lines (check --scan-lines)",
        )
    levels = default_levels(height, width) if levels is None else int(levels)
    if levels < 0:
        raise StoreError(target, f"--levels must be 0 or more, not {levels}")
    chunk = int(chunk_frames or auto_chunk_frames((height, width), n_frames))
    chunk = max(1, min(chunk, n_frames))
    depth_map = getattr(source, "reduction", None) is not None and hasattr(source, "read_maps")
    arrays = 2 if depth_map else 1
    check_memory(where, arrays * chunk * height * width * 4, f"a chunk of {chunk} frames of {height}x{width}")
    n_chunks = -(-n_frames // chunk)

    with store_lock(target.parent):
        clean_strays(target)
        if overwrite and target.exists():
            remove_tree(target)
            clear_state(target)
        params = ingest_params(source, scan_lines, first_line, reverse_backward)
        if scale:
            params["scale"] = dict(scale)
        if levels:
            params["levels"] = levels
        fp = fingerprint(params)
        record = _existing_record(target)
        decision = decide("ingest", record, fp, params, overwrite=overwrite, path=target, chunk_frames=chunk)
        markers = ChunkMarkers(target, "ingest")
        if decision == "complete":
            kept = int((record or {}).get("chunks", n_chunks))  # its own chunking, maybe not the one asked for
            if progress is not None:
                progress(kept, kept)
            return IngestResult(target, "complete", kept, 0)
        if decision == "fresh" and record is not None:  # a partial store chunked otherwise
            remove_tree(target)
            clear_state(target)
        extra: dict[str, Any] = {"depth_map": True} if depth_map else {}
        if levels:
            extra["levels"] = levels
        if decision == "fresh":
            attrs = {
                "scan": source.name,
                LAYOUT_ATTR: LAYOUT_VERSION,
                "source": _source_attrs(source, scan_lines),
                "conventions": {
                    "scan_lines": scan_lines,
                    "first_line": first_line,
                    "fast_axis": "y",
                    "frame_axes": ["t", "y", "x"],
                    "transposed_on_ingest": scan_lines == "rows",
                    "reverse_backward": bool(reverse_backward),
                },
                "package_version": __version__,
                "created": now_iso(),
                "stages": {"ingest": {"complete": False, "updated": now_iso(), "fingerprint": fp,
                                      "params": params, "chunk_frames": chunk, "chunks": n_chunks, **extra}},
            }  # fmt: skip
            physical = _physical(source, scan_lines, scale)
            if physical is not None:
                attrs["physical"] = physical
            _create_skeleton(target, attrs, (n_frames, height, width), chunk, depth_map, levels)
        group = zarr.open_group(target, mode="r+")
        frames = image_levels(group, FRAMES)
        depths = image_levels(group, DEPTH_MAP) if depth_map else None
        done = markers.done()
        written = 0
        try:
            findings, probe = ingest_checks(source)
            findings = [*findings, *_source_findings(source)]
            writers = write_threads()
            with ThreadPoolExecutor(writers, thread_name_prefix="orpam-ingest-write") as pool, _cancel_on_error(pool):
                inflight: deque[Future[None]] = deque()
                for index in range(n_chunks):
                    start, stop = index * chunk, min((index + 1) * chunk, n_frames)
                    if index in done:
                        _feed_stored(probe, frames[0], start, stop, scan_lines)
                        continue
                    if depths is not None:
                        block, depth = source.read_maps(start, stop)
                    else:
                        block, depth = source.read(start, stop), None
                    if probe is not None and probe.wants(start):
                        probe.feed(start, block)
                    if scan_lines == "rows":
                        block = block.transpose(0, 2, 1)
                        depth = None if depth is None else depth.transpose(0, 2, 1)
                    if reverse_backward:
                        block = flip_backward(block, first_line)
                        depth = None if depth is None else flip_backward(depth, first_line)
                    inflight.append(pool.submit(_write_chunk, frames, depths, markers, index, start, stop, block, depth))
                    if on_chunk is not None:
                        on_chunk(index, block, first_line)
                    written += _settle(inflight, writers, progress, len(done) + written, n_chunks)
                written += _settle(inflight, 0, progress, len(done) + written, n_chunks)
        except ScanError:
            remove_tree(target)
            clear_state(target)
            raise
        except OSError as exc:
            raise StoreError(
                target, f"writing frames failed ({exc.strerror or exc}); fix the cause and rerun to continue"
            ) from None
        _record(group, findings, probe)
        mark_stage(group, "ingest", True, frames=n_frames, chunk_frames=chunk, fingerprint=fp, params=params,
                   chunks=n_chunks, **extra)  # fmt: skip
        markers.clear()
    return IngestResult(target, "resumed" if decision == "resume" else "created", n_chunks, written)


def _source_attrs(source: ScanSource, scan_lines: str) -> dict[str, Any]:
    """Provenance for the group attributes, with ``axes``: the stored axes' names as they were read."""
    prov = dict(source.provenance())
    used = getattr(source, "axes_used", None)
    if used:
        prov["axes"] = swap_lines(used) if scan_lines == "rows" else used
    return prov


def _physical(source: ScanSource, scan_lines: str, scale: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``physical`` group attribute: the depth scale when the source reduces a depth axis and knows it,
    what the source itself states (pixel size, frame interval; io/physical.py) turned like the frames
    (``scan_lines``), and the user's ``scale`` (``--pixel-size``, ``--frame-interval``), which wins."""
    if callable(getattr(source, "physical", None)):
        found = source.physical()
    else:
        reduction = getattr(source, "reduction", None)
        found = None if reduction is None else reduction.physical()
    return store_physical(found, scale, rows=scan_lines == "rows")


def _source_findings(source: ScanSource) -> list[Finding]:
    """Warnings the reader found (a point scan without backward lines), if the source has any."""
    found = getattr(source, "findings", None)
    return list(found()) if callable(found) else []


def _first_line(source: ScanSource, given: str, where: Path) -> FirstLine:
    """The direction of column 0: the source's own where it knows it (point scans), else ``given``.

    ``--first-line`` defaults to forward, so only an explicit ``backward`` can contradict the source.
    """
    known = getattr(source, "first_line", None)
    if known is None:
        return given  # type: ignore[return-value]
    if given == "backward" and known == "forward":
        raise ScanError(where, "--first-line backward contradicts the positions: the first line runs toward increasing "
                               "fast-axis positions (forward); leave --first-line out for point scans")  # fmt: skip
    return known  # type: ignore[return-value]


def _feed_stored(probe: UnnamedAxesProbe | None, frames: zarr.Array, start: int, stop: int, scan_lines: str) -> None:
    """Feed the probe frames an interrupted run already wrote (read back from the store)."""
    if probe is None or not probe.wants(start):
        return
    block = np.asarray(frames[start:stop])
    probe.feed(start, block.transpose(0, 2, 1) if scan_lines == "rows" else block)


def write_threads() -> int:
    """Chunks ingest compresses and writes at a time, on threads beside the one reading the source:
    compression and ``fsync`` release the GIL, so these overlap the reading and each other."""
    return min(MAX_WRITE_THREADS, usable_cores())


def _write_chunk(frames: list[zarr.Array], depths: list[zarr.Array] | None, markers: ChunkMarkers, index: int,
                 start: int, stop: int, block: np.ndarray, depth: np.ndarray | None) -> None:  # fmt: skip
    """Write one chunk of frames (and depth maps), then mark it done."""
    write_image(frames, start, stop, block)
    if depths is not None:
        write_image(depths, start, stop, depth)
    markers.mark(index)


@contextmanager
def _cancel_on_error(pool: ThreadPoolExecutor) -> Iterator[None]:
    """On an error or an interrupt, drop the chunk writes not yet started; those under way finish (and are marked)."""
    try:
        yield
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise


def _settle(inflight: deque[Future[None]], keep: int, progress: Callable[[int, int], None] | None, finished: int,
            total: int) -> int:  # fmt: skip
    """Wait for the oldest chunk writes until at most ``keep`` are in flight (taking any already done
    too), reporting each; how many finished. A write's error is raised here, in the reading thread."""
    settled = 0
    while inflight and (len(inflight) > keep or inflight[0].done()):
        inflight.popleft().result()
        settled += 1
        if progress is not None:
            progress(finished + settled, total)
    return settled


def _record(group: zarr.Group, findings: list[Finding], probe: UnnamedAxesProbe | None) -> None:
    """Record the axes checks' warnings (nothing is written when there are none)."""
    found = findings + (probe.findings() if probe is not None else [])
    if found:
        record_warnings(group, "ingest", found)


def ingest_scan(source: ScanSource, out_dir: Path, **options: Any) -> Path:
    """Write ``source`` to ``out_dir/<scan name>/scan.zarr`` (options as in :func:`ingest`); return the store path."""
    return ingest(source, out_dir, **options).store
