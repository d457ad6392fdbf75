"""The report's per-chunk metrics, computed where a chunk is in memory anyway and kept until the report.

The register stage scores each chunk right after writing it (the frames, registered even lines and
merged frames are all in memory then) and saves the result beside the store, in
``.orpam/<store>/scores-<register fingerprint>/<chunk>.npz``, before marking the chunk done; the
report then assembles these instead of reading three arrays of the store again. A report that finds
any chunk's scores missing (a store registered by an earlier version, scores removed) reads the
store as before. Numbers are the same either way: the arrays scored are exactly the float32 values
written. See docs/store.md ("Resume state").
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr

from orpam_pipeline import __version__
from orpam_pipeline.checks.frames import Samples, sample_indices, samples_in
from orpam_pipeline.cores import usable_cores
from orpam_pipeline.geometry import split
from orpam_pipeline.metrics import intra_frame_metrics, pair_ncc, pair_ncc_between
from orpam_pipeline.store.files import atomic_write
from orpam_pipeline.store.layout import FRAMES, codecs, get_array, remove_tree, write_frames
from orpam_pipeline.store.resume import state_root

SCORES_PREFIX = "scores-"
UNREGISTERED_CACHE = "cache/unregistered_metrics"
"""Path inside the store of the metrics of the frames as ingested (docs/store.md): one row per frame."""
UNREGISTERED_COLUMNS = ("ncc_unregistered", "ssim_unregistered", "psnr_unregistered", "pair_ncc_unregistered",
                        "pair_ncc_odd")  # fmt: skip
"""Its columns; the two pair columns hold T - 1 values, the last row is NaN there."""


@dataclass
class ChunkScores:
    """One chunk's per-frame metrics and consecutive-pair NCCs, and the frames its neighbours pair with."""

    per: dict[str, np.ndarray]
    pairs: dict[str, np.ndarray]
    first: dict[str, np.ndarray]
    last: dict[str, np.ndarray]
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    """The chunk's frames among those the checks sample (:func:`chunk_samples`): ``index`` (in the scan),
    ``frames`` and ``merged``; empty when none is."""

    def to_bytes(self) -> bytes:
        """The scores as an ``.npz`` (keys ``<part>/<name>`` for the parts ``per``, ``pairs``, ``first``, ``last``
        and ``samples``)."""
        flat = {f"{part}/{k}": v for part in _PARTS for k, v in getattr(self, part).items()}
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **flat)
        return buffer.getvalue()

    @classmethod
    def from_file(cls, path: Path) -> ChunkScores:
        parts: dict[str, dict[str, np.ndarray]] = {part: {} for part in _PARTS}
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                part, name = key.split("/", 1)
                parts[part][name] = data[key]
        return cls(**parts)


_PARTS = ("per", "pairs", "first", "last", "samples")


def chunk_samples(block: np.ndarray, merged: np.ndarray, start: int, n_frames: int) -> dict[str, np.ndarray]:
    """The :attr:`ChunkScores.samples` of the chunk of frames ``start:`` (``block``, and ``merged`` as written)."""
    rows = samples_in(start, start + block.shape[0], n_frames)
    if not rows:
        return {}
    return {"index": np.asarray(rows, dtype=np.int64) + start, "frames": block[rows], "merged": merged[rows]}


def saved_samples(paths: Sequence[Path], n_frames: int) -> Samples | None:
    """The checks' sampled frames kept in the chunk score files ``paths`` (:data:`~orpam_pipeline.checks.frames.Samples`,
    each pass reading one file at a time), or None when they do not hold every sampled frame."""
    holding = []
    for path in paths:
        with np.load(path, allow_pickle=False) as data:
            if "samples/index" in data.files:
                holding.append((path, [int(i) for i in data["samples/index"]]))
    if [i for _, found in holding for i in found] != sample_indices(n_frames):
        return None

    def frames() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for path, _ in holding:
            with np.load(path, allow_pickle=False) as data:
                yield from zip(data["samples/frames"], data["samples/merged"])

    return frames


def score_unregistered(block: np.ndarray, first_line: str) -> ChunkScores:
    """Metrics of one chunk of frames as ingested: even vs odd lines per frame, and the consecutive-pair
    NCCs of the frames and of their odd lines (the ``_unregistered`` columns of the report)."""
    odd, even = split(block, first_line)
    per = {k + "_unregistered": v for k, v in intra_frame_metrics(even, odd).items()}
    stacks = {"unregistered": block, "odd": odd}
    pairs = {name: pair_ncc(stack) for name, stack in stacks.items()}
    return ChunkScores(per, pairs, _ends(stacks, 0), _ends(stacks, -1))


def _ends(stacks: dict[str, np.ndarray], at: int) -> dict[str, np.ndarray]:
    return {name: np.array(stack[at]) for name, stack in stacks.items()}


def score_arrays(block: np.ndarray, reg: np.ndarray, merged: np.ndarray, first_line: str,
                 unregistered: ChunkScores | bool) -> ChunkScores:  # fmt: skip
    """Metrics of one chunk: registered always; those of the frames as ingested when ``unregistered`` is
    True (computed here) or a :func:`score_unregistered` result of this chunk (then taken from it).

    Where the registered lines and merged frames are bit for bit the ones ingested (``none``), their
    metrics are those of the frames as ingested: computed once, or not at all when given.
    """
    identical = np.array_equal(reg, split(block, first_line)[1]) and np.array_equal(merged, block)
    if unregistered is False:
        base = None
    else:
        base = unregistered if isinstance(unregistered, ChunkScores) else score_unregistered(block, first_line)
    if identical and base is not None:
        per = {k.removesuffix("_unregistered"): v for k, v in base.per.items()}
        pairs = {"merged": base.pairs["unregistered"]}
    else:
        odd = split(block, first_line)[0]
        per = dict(intra_frame_metrics(reg, odd))
        pairs = {"merged": pair_ncc(merged)}
    out = ChunkScores(per, pairs, _ends({"merged": merged}, 0), _ends({"merged": merged}, -1))
    if unregistered is True and base is not None:  # computed here: saved with the chunk
        for part in ("per", "pairs", "first", "last"):
            getattr(out, part).update(getattr(base, part))
    return out


class Assembly:
    """Chunk scores added in frame order, joined into per-frame metrics and pair NCCs as they come.

    Only the last chunk's end frames are kept (for the pair across the next boundary), so memory does not
    grow with the number of chunks.
    """

    def __init__(self) -> None:
        self.per: dict[str, list[np.ndarray]] = {}
        self.pairs: dict[str, list[np.ndarray]] = {}
        self._last: dict[str, np.ndarray] = {}

    def add(self, scores: ChunkScores) -> None:
        for k, v in scores.per.items():
            self.per.setdefault(k, []).append(v)
        for name, values in scores.pairs.items():
            if name in self._last:
                self.pairs.setdefault(name, []).append(np.array([pair_ncc_between(self._last[name], scores.first[name])]))
            self.pairs.setdefault(name, []).append(values)
        self._last = scores.last

    def flat(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per-frame metrics and pair NCCs, each concatenated over the chunks."""
        return ({k: np.concatenate(v) for k, v in self.per.items()},
                {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.pairs.items()})  # fmt: skip


def assemble(chunks: Iterable[ChunkScores]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-frame metrics and pair NCCs of the chunks in frame order, pairs across chunk boundaries included."""
    assembly = Assembly()
    for scores in chunks:
        assembly.add(scores)
    return assembly.flat()


MAX_SCORER_THREADS = 4
"""At most this many chunks scored at a time during ingest (as many as ingest writes, ``store.ingest``)."""


def scorer_threads() -> int:
    """Chunks :class:`IngestScorer` scores at a time: scoring, not reading or writing, sets ingest's pace (256²:
    ingest alone 0.95 s per 1,000 frames, with scoring on one thread 1.95 s, on two 1.75 s on two cores)."""
    return min(MAX_SCORER_THREADS, usable_cores())


class IngestScorer:
    """The metrics of the frames as ingested, scored on background threads while ingest reads and writes.

    Ingest calls it with every chunk it writes (``ingest(..., on_chunk=scorer)``); :meth:`save` keeps the
    result as the store's ``UNREGISTERED_CACHE`` when every chunk of the scan came through it (a fresh
    ingest), so that no register pass and no report scores the unregistered lines again. Scoring
    (BLAS products and numpy reductions) releases the GIL, so it runs beside ingest's reading,
    compression and ``fsync`` on other cores, ``threads`` chunks at a time (default :func:`scorer_threads`);
    at most ``ahead`` chunks (default one more) wait or are scored. Each chunk is scored on its own, so the
    numbers do not depend on the threads.
    """

    def __init__(self, threads: int | None = None, ahead: int | None = None) -> None:
        threads = max(1, threads if threads is not None else scorer_threads())
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="orpam-ingest-scores")
        self._pending: deque[tuple[int, Future[ChunkScores]]] = deque()
        self._ahead = max(1, ahead if ahead is not None else threads + 1)
        self._assembly = Assembly()
        self._next = 0
        self._failed = False

    def __call__(self, index: int, block: np.ndarray, first_line: str) -> None:
        if self._failed or index != self._next + len(self._pending):  # out of order: a resumed ingest
            self._failed = True
            return
        self._pending.append((index, self._pool.submit(score_unregistered, np.array(block, np.float32), first_line)))
        while self._pending and (len(self._pending) > self._ahead or self._pending[0][1].done()):
            self._take()

    def _take(self) -> None:
        _, future = self._pending.popleft()
        try:
            self._assembly.add(future.result())
            self._next += 1
        except Exception:  # scoring is an optimisation: the report scores these frames itself
            self._failed = True

    def save(self, store: Path, chunks: int) -> bool:
        """Keep the scores in ``store`` when chunks ``0 .. chunks - 1`` were all scored; whether they were."""
        try:
            while self._pending and not self._failed:
                self._take()
        finally:
            self.close()
        if self._failed or self._next != chunks:
            return False
        per, pairs = self._assembly.flat()
        root = Path(store)
        save_unregistered(root, zarr.open_group(root, mode="r"), unregistered_columns(per, pairs))
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

    def __enter__(self) -> IngestScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unregistered_columns(per: dict[str, np.ndarray], pairs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The columns of ``UNREGISTERED_CACHE`` from assembled (concatenated) per-frame metrics and pair NCCs."""
    return {**{k: per[k] for k in UNREGISTERED_COLUMNS[:3]}, "pair_ncc_unregistered": pairs["unregistered"],
            "pair_ncc_odd": pairs["odd"]}  # fmt: skip


def chunk_of_cache(cache: dict[str, np.ndarray], start: int, stop: int, block: np.ndarray,
                   first_line: str) -> ChunkScores:  # fmt: skip
    """The :func:`score_unregistered` result of frames ``start:stop`` (``block``), rebuilt from the cached table."""
    odd = split(block, first_line)[0]
    per = {k: cache[k][start:stop] for k in UNREGISTERED_COLUMNS[:3]}
    pairs = {"unregistered": cache["pair_ncc_unregistered"][start : stop - 1],
             "odd": cache["pair_ncc_odd"][start : stop - 1]}  # fmt: skip
    stacks = {"unregistered": block, "odd": odd}
    return ChunkScores(per, pairs, _ends(stacks, 0), _ends(stacks, -1))


def scores_dir(store: Path, register_fingerprint: str) -> Path:
    """Where the chunks of the registration with this fingerprint keep their scores."""
    return state_root(store) / f"{SCORES_PREFIX}{register_fingerprint[:16]}"


def save_scores(folder: Path, index: int, scores: ChunkScores) -> None:
    """Keep chunk ``index``'s scores (atomically; call before the chunk is marked done)."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / f"{int(index)}.npz", scores.to_bytes())


def saved_chunks(folder: Path, chunks: int) -> list[Path] | None:
    """The score files of chunks ``0 .. chunks - 1`` in order, or None when any is missing.

    Read them one at a time (:meth:`ChunkScores.from_file`): together they hold two frames per chunk,
    which would make the report's memory grow with the number of frames.
    """
    paths = [folder / f"{i}.npz" for i in range(chunks)]
    return paths if all(p.is_file() for p in paths) else None


def clear_scores(store: Path, keep: Path | None = None) -> None:
    """Remove the saved scores of every registration of ``store`` except the folder ``keep``."""
    root = state_root(store)
    try:
        names = [n for n in root.iterdir() if n.name.startswith(SCORES_PREFIX)]
    except (FileNotFoundError, NotADirectoryError):
        return
    for path in names:
        if keep is None or path != keep:
            remove_tree(path)
    try:
        root.rmdir()
        root.parent.rmdir()
    except OSError:
        pass


def _ingest_fingerprint(group: zarr.Group) -> str | None:
    return dict(dict(group.attrs.get("stages", {})).get("ingest") or {}).get("fingerprint")


def unregistered_cached(group: zarr.Group) -> bool:
    """Whether the store keeps the metrics of its frames as ingested (so chunks need not score them)."""
    return load_unregistered(group, int(get_array(group, FRAMES).shape[0]), values=False) is not None


def load_unregistered(group: zarr.Group, n_frames: int, values: bool = True) -> dict[str, np.ndarray] | None:
    """The cached metrics of the frames as ingested, when made from these very frames (same ingest fingerprint)."""
    fp = _ingest_fingerprint(group)
    try:
        cache = group[UNREGISTERED_CACHE]
        if fp is None or cache.attrs.get("ingest") != fp or tuple(cache.shape) != (n_frames, len(UNREGISTERED_COLUMNS)):
            return None
        if not values:
            return {}
        table = np.asarray(cache[...], dtype=np.float64)
    except Exception:  # absent or unreadable: computed again
        return None
    out = {name: table[:, i] for i, name in enumerate(UNREGISTERED_COLUMNS)}
    for name in UNREGISTERED_COLUMNS[3:]:
        out[name] = out[name][: max(n_frames - 1, 0)]
    return out


def save_unregistered(root: Path, group: zarr.Group, values: dict[str, np.ndarray]) -> None:
    """Keep the metrics of the frames as ingested in the store, keyed by the ingest fingerprint (best effort)."""
    n = len(values["ncc_unregistered"])
    table = np.full((n, len(UNREGISTERED_COLUMNS)), np.nan)
    for i, name in enumerate(UNREGISTERED_COLUMNS):
        table[: len(values[name]), i] = values[name]
    try:
        writable = zarr.open_group(root, mode="r+")
        cache = writable.create_array(UNREGISTERED_CACHE, shape=table.shape, chunks=table.shape, dtype="float64",
                                      fill_value=np.nan, overwrite=True, **codecs())  # fmt: skip
        write_frames(cache, 0, n, table)  # flushed to the disk like every chunk of the store
        cache.attrs.update({"ingest": _ingest_fingerprint(group), "columns": list(UNREGISTERED_COLUMNS),
                            "package_version": __version__})  # fmt: skip
    except OSError:  # a read-only store still gets its report
        pass
