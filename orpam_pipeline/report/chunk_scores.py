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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from orpam_pipeline import __version__
from orpam_pipeline.geometry import split
from orpam_pipeline.metrics import intra_frame_metrics, pair_ncc
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

    def to_bytes(self) -> bytes:
        """The scores as an ``.npz`` (keys ``per/<name>``, ``pairs/<name>``, ``first/<name>``, ``last/<name>``)."""
        flat = {f"{part}/{k}": v for part in ("per", "pairs", "first", "last") for k, v in getattr(self, part).items()}
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **flat)
        return buffer.getvalue()

    @classmethod
    def from_file(cls, path: Path) -> ChunkScores:
        parts: dict[str, dict[str, np.ndarray]] = {"per": {}, "pairs": {}, "first": {}, "last": {}}
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                part, name = key.split("/", 1)
                parts[part][name] = data[key]
        return cls(**parts)


def score_arrays(block: np.ndarray, reg: np.ndarray, merged: np.ndarray, first_line: str,
                 unregistered: bool) -> ChunkScores:  # fmt: skip
    """Metrics of one chunk: registered always, those of the frames as ingested when ``unregistered``.

    Where the registered lines (or merged frames) are bit for bit the ones ingested (``none``), their
    metrics are those of the unregistered lines: computed once, not twice.
    """
    odd, even = split(block, first_line)
    per = dict(intra_frame_metrics(reg, odd))
    stacks = {"merged": merged}
    if unregistered:
        unreg = per if np.array_equal(reg, even) else intra_frame_metrics(even, odd)
        per.update({k + "_unregistered": v for k, v in unreg.items()})
        stacks.update(unregistered=block, odd=odd)
    pairs: dict[str, np.ndarray] = {}
    for name, stack in stacks.items():
        pairs[name] = pairs["merged"] if name == "unregistered" and np.array_equal(merged, block) else pair_ncc(stack)
    first = {name: np.array(stack[0]) for name, stack in stacks.items()}
    last = {name: np.array(stack[-1]) for name, stack in stacks.items()}
    return ChunkScores(per, pairs, first, last)


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
