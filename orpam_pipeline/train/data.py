"""Training and validation pairs (backward "even" lines → forward "odd" lines) read lazily from scans.

Pair geometry (docs/conventions.md): for a frame ``(Y, X)`` with ``first_line="forward"`` the moving image is
``frame[:, 1::2]`` (width ``X//2``) and the fixed image ``frame[:, 0::2][:, :X//2]`` (the odd image
trimmed to the even width, as the metrics do). ``first_line="backward"`` swaps the roles and both are
trimmed to the narrower width. ``scan_lines="rows"`` transposes frames when they are read; ingested
zarr stores are already in pipeline orientation and carry their own ``first_line``.

Normalisation (per pair, from the whole fixed image of the frame): the single definition shared
with inference, ``orpam_pipeline.models.normalise`` — both images become ``(x - lo) / span`` where
``lo``/``hi`` are the 0.5th/99.5th percentiles of the fixed image (no clipping; span 1 on flat
frames). Using the fixed image only keeps the intensity difference of the moving lines visible to
the network, which must learn to remove it. ``even_true`` (validation) gets the same ``lo``/``span``.

Augmentations (training only) keep the bidirectional geometry valid:

- allowed: flip along Y (the fast axis) applied to both images. It negates the displacement, which
  stays a shift along the fast axis, so the task is unchanged.
- allowed (``shift > 0``): an integer shift ``s`` of the moving crop along Y relative to the fixed one
  (uniform in ``[-shift, shift]``): the task stays a displacement along the fast axis, now
  ``d − s``. Without it a network only sees the data's own displacements (1.5–4.5 px in our
  simulations) and can learn that prior instead of measuring: asked to refine an already aligned
  pair it predicted about 1 px. Integer shifts move samples without resampling, so noise keeps
  its texture.
- allowed: gain/offset jitter on the moving image only (gain log-uniform in [0.8, 1.25], offset
  uniform in [-0.05, 0.05] of the normalised range): the network must correct intensity differences.
- forbidden: flips along X (they would swap which columns are forward and backward relative to their
  neighbours and turn the left-right interleaving inside out), transposes and rotations (they would
  put the fast axis along X, a displacement the data never has).

Known displacement (optional supervision of PCReg-Net-Flow): when a scan's truth store holds
``displacement`` (``(T, Y)`` profiles or ``(T, Y, X//2)`` fields, the convention of docs/conventions.md
``registered[y] = moving[y + d(y)]``), pairs carry it in pixels. Crops slice it like the images; the
Y flip maps it to ``-d[::-1]`` (the flipped moving image must be read at ``y - d(h-1-y)``); gain and
offset jitter leave it unchanged.

Determinism: sample ``j`` of batch ``step`` in ``epoch`` is a pure function of
``(seed, epoch, step * batch_size + j)``: frame order is a seeded permutation per epoch (so every
train frame is seen once per pass), crop and augmentation come from
``numpy.random.default_rng([seed, epoch, position])``. Nothing depends on RNG history, so a resumed
run sees exactly the batches an uninterrupted one would.

Memory: scans are opened lazily (at most ``max_open`` readers at once) and normalised frames live in
a bounded LRU cache (``cache_frames``), so a dataset never has to fit in memory.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.geometry import split
from orpam_pipeline.io.frame_reader import FrameReader, open_frames

GAIN_RANGE = (0.8, 1.25)
OFFSET_RANGE = (-0.05, 0.05)
_EPOCH_ORDER_STREAM = 0x0D0E


def pair_images(frame: np.ndarray, first_line: str = "forward") -> tuple[np.ndarray, np.ndarray]:
    """``(moving, fixed)`` of one ``(Y, X)`` frame, width-matched (both trimmed to the narrower width)."""
    fixed, moving = split(frame, first_line)  # type: ignore[arg-type]
    w = min(fixed.shape[-1], moving.shape[-1])
    return moving[..., :w], fixed[..., :w]


def normalise_pair(moving: np.ndarray, fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """One frame pair normalised as at inference; returns ``(moving, fixed, lo, span)``."""
    from orpam_pipeline.models.normalise import normalise_pair as _normalise

    m, f, scale = _normalise(np.asarray(moving, np.float32)[None], np.asarray(fixed, np.float32)[None])
    return m[0], f[0], float(scale[0, 0]), float(scale[0, 1])


@dataclass(frozen=True)
class FramePair:
    """Normalised full-frame pair of one frame; ``truth`` is the normalised ``even_true`` or None.

    ``displacement`` is the true displacement in pixels, ``(Y, W)`` (a read-only broadcast of a
    profile), or None when the truth store has none.
    """

    moving: np.ndarray
    fixed: np.ndarray
    truth: np.ndarray | None
    displacement: np.ndarray | None = None


@dataclass(frozen=True)
class PairScan:
    """What a pair set needs to know about one scan."""

    name: str
    path: Path
    truth: Path | None = None


class ScanPairs:
    """Every frame of a list of scans as normalised pairs, read lazily with bounded caches."""

    def __init__(self, scans: Sequence[PairScan], scan_lines: str = "columns", first_line: str = "forward",
                 cache_frames: int = 256, max_open: int = 8) -> None:
        if not scans:
            raise OrpamError("no scans to draw pairs from")
        self.scans = list(scans)
        self.scan_lines = scan_lines
        self.first_line = first_line
        self.cache_frames = max(1, int(cache_frames))
        self.max_open = max(1, int(max_open))
        self._readers: OrderedDict[int, FrameReader] = OrderedDict()
        self._truths: dict[int, Any] = {}
        self._displacements: dict[int, Any] = {}
        self._cache: OrderedDict[tuple[int, int], FramePair] = OrderedDict()
        shapes = []
        for i, s in enumerate(self.scans):
            with open_frames(s.path, scan_lines, first_line) as r:
                shapes.append(r.shape)
                fl = r.first_line
            t, y, x = shapes[-1]
            if x < 2 or y < 1:
                raise OrpamError(f"{s.path}: frames of {y}x{x} cannot form pairs")
            if s.truth is not None:
                self._check_truth(i, (t, y, x), fl)
        self.shapes: list[tuple[int, int, int]] = shapes
        counts = np.array([s[0] for s in shapes], dtype=np.int64)
        self.scan_of = np.repeat(np.arange(len(shapes)), counts)
        self.frame_of = np.concatenate([np.arange(c) for c in counts])

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without open handles or caches (DataLoader workers reopen lazily)."""
        state = dict(self.__dict__)
        state["_readers"] = OrderedDict()
        state["_truths"] = {}
        state["_displacements"] = {}
        state["_cache"] = OrderedDict()
        return state

    def _check_truth(self, i: int, shape: tuple[int, int, int], first_line: str) -> None:
        """Refuse a truth store whose ``even_true`` (or ``displacement``) does not fit the scan's moving columns."""
        import zarr

        s = self.scans[i]
        if first_line != "forward":
            raise OrpamError(f"{s.path}: ground truth is only defined for first_line = forward scans")
        try:
            group = zarr.open_group(s.truth, mode="r")
            even_true = group["even_true"]
        except Exception as exc:  # zarr raises several types
            raise OrpamError(f"{s.truth}: no readable even_true array ({type(exc).__name__})") from None
        t, y, x = shape
        if tuple(even_true.shape) != (t, y, x // 2):
            raise OrpamError(f"{s.truth}: even_true shape {tuple(even_true.shape)} does not match scan {shape}")
        if "displacement" in group:
            disp_shape = tuple(group["displacement"].shape)
            if disp_shape not in ((t, y), (t, y, x // 2)):
                raise OrpamError(f"{s.truth}: displacement shape {disp_shape} fits neither {(t, y)} nor {(t, y, x // 2)}")

    def without_displacement(self) -> list[Path]:
        """Scans whose truth store holds no displacement (all must have one for supervision)."""
        import zarr

        return [s.path for s in self.scans if s.truth is None or "displacement" not in zarr.open_group(s.truth, mode="r")]

    def __len__(self) -> int:
        return int(self.scan_of.size)

    def pair_shape(self, scan: int) -> tuple[int, int]:
        """``(Y, W)`` of the width-matched pair images of a scan."""
        _, y, x = self.shapes[scan]
        return y, x // 2

    def _reader(self, i: int) -> FrameReader:
        """Open reader of scan ``i`` (LRU-bounded)."""
        r = self._readers.pop(i, None)
        if r is None:
            r = open_frames(self.scans[i].path, self.scan_lines, self.first_line)
            while len(self._readers) >= self.max_open:
                _, old = self._readers.popitem(last=False)
                old.close()
        self._readers[i] = r
        return r

    def frame_pair(self, k: int) -> FramePair:
        """The normalised pair of flat frame index ``k`` (cached)."""
        i, t = int(self.scan_of[k]), int(self.frame_of[k])
        key = (i, t)
        hit = self._cache.pop(key, None)
        if hit is None:
            reader = self._reader(i)
            frame = reader.read(t, t + 1)[0]
            moving, fixed = pair_images(frame, reader.first_line)
            m, f, lo, scale = normalise_pair(moving, fixed)
            truth = None
            if self.scans[i].truth is not None:
                if i not in self._truths:
                    import zarr

                    self._truths[i] = zarr.open_group(self.scans[i].truth, mode="r")["even_true"]
                tr = np.asarray(self._truths[i][t], dtype=np.float64)[:, : m.shape[1]]
                truth = ((tr - lo) / scale).astype(np.float32)
            hit = FramePair(m, f, truth, self._displacement(i, t, m.shape))
            while len(self._cache) >= self.cache_frames:
                self._cache.popitem(last=False)
        self._cache[key] = hit
        return hit

    def _displacement(self, i: int, t: int, shape: tuple[int, int]) -> np.ndarray | None:
        """True displacement of frame ``t`` of scan ``i`` as ``(Y, W)`` pixels, or None."""
        if self.scans[i].truth is None:
            return None
        if i not in self._displacements:
            import zarr

            group = zarr.open_group(self.scans[i].truth, mode="r")
            self._displacements[i] = group["displacement"] if "displacement" in group else None
        array = self._displacements[i]
        if array is None:
            return None
        d = np.asarray(array[t], dtype=np.float32)
        if d.ndim == 1:
            return np.broadcast_to(d[:, None], shape)
        return np.ascontiguousarray(d[:, : shape[1]])

    def close(self) -> None:
        """Close every open reader and drop the caches."""
        for r in self._readers.values():
            r.close()
        self._readers.clear()
        self._truths.clear()
        self._displacements.clear()
        self._cache.clear()


def crop_shape(pairs: ScanPairs, crop: int) -> tuple[int, int]:
    """The training crop ``(h, w)``: ``crop`` clamped to the smallest pair image of the set."""
    if crop < 16:
        raise OrpamError(f"crop must be at least 16 px (SSIM needs 11x11 windows), not {crop}")
    h = min(min(pairs.pair_shape(i)[0] for i in range(len(pairs.scans))), crop)
    w = min(min(pairs.pair_shape(i)[1] for i in range(len(pairs.scans))), crop)
    if h < 16 or w < 16:
        raise OrpamError(f"scan pairs of {h}x{w} px are too small to train on (need at least 16x16)")
    return h, w


class TrainPairs(Dataset):
    """Random (moving, fixed) crops of every train frame; item ``i`` of an epoch is a pure function of it.

    ``len()`` is ``steps_per_epoch * batch_size``; call :meth:`set_epoch` before iterating a new
    epoch (or use :meth:`sample` / :meth:`batch` directly). Items are ``(moving, fixed)`` float32
    tensors of shape ``(1, h, w)``, followed by the true displacement ``(1, h, w)`` with
    ``displacement=True`` (every scan must then have one in its truth store).
    """

    def __init__(self, pairs: ScanPairs, crop: int, batch_size: int, steps_per_epoch: int | None, seed: int,
                 augment: bool = True, displacement: bool = False, shift: int = 0) -> None:
        if shift < 0:
            raise OrpamError(f"shift must not be negative, not {shift}")
        self.shift = int(shift)
        if displacement:
            lacking = pairs.without_displacement()
            if lacking:
                raise OrpamError(f"{lacking[0]}: displacement supervision needs a truth store with a displacement array for every train scan")
        self.displacement = displacement
        self.pairs = pairs
        self.crop = crop_shape(pairs, crop)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise OrpamError(f"batch_size must be at least 1, not {batch_size}")
        self.steps_per_epoch = int(steps_per_epoch or math.ceil(len(pairs) / self.batch_size))
        self.seed = int(seed)
        self.augment = augment
        self.epoch = 0
        self.start_step = 0
        self._order: tuple[int, int, np.ndarray] | None = None

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch that ``__getitem__`` draws from (optionally skipping finished steps)."""
        self.epoch = int(epoch)
        self.start_step = int(start_step)

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.batch_size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        arrays = self.sample(self.epoch, self.start_step * self.batch_size + int(index))
        return tuple(torch.from_numpy(a[None]) for a in arrays)

    def frame_index(self, epoch: int, position: int) -> int:
        """Flat frame index of sample ``position`` of ``epoch`` (a seeded permutation per pass)."""
        n = len(self.pairs)
        cycle = position // n
        if self._order is None or self._order[:2] != (epoch, cycle):
            rng = np.random.default_rng([self.seed, _EPOCH_ORDER_STREAM, epoch, cycle])
            self._order = (epoch, cycle, rng.permutation(n))
        return int(self._order[2][position % n])

    def sample(self, epoch: int, position: int) -> tuple[np.ndarray, ...]:
        """``(moving, fixed)`` float32 ``(h, w)`` crops for sample ``position`` of ``epoch`` (plus the displacement)."""
        pair = self.pairs.frame_pair(self.frame_index(epoch, position))
        rng = np.random.default_rng([self.seed, epoch, position])
        h, w = self.crop
        y0 = int(rng.integers(0, pair.fixed.shape[0] - h + 1))
        x0 = int(rng.integers(0, pair.fixed.shape[1] - w + 1))
        flip = bool(rng.random() < 0.5)
        gain = float(np.exp(rng.uniform(np.log(GAIN_RANGE[0]), np.log(GAIN_RANGE[1]))))
        offset = float(rng.uniform(*OFFSET_RANGE))
        shift = int(rng.integers(-self.shift, self.shift + 1)) if self.shift and self.augment else 0
        shift = min(max(shift, -y0), pair.fixed.shape[0] - h - y0)
        window = (slice(y0, y0 + h), slice(x0, x0 + w))
        m, f = pair.moving[y0 + shift : y0 + shift + h, x0 : x0 + w], pair.fixed[window]
        d = pair.displacement[window] - np.float32(shift) if self.displacement and pair.displacement is not None else None
        if self.augment:
            if flip:
                m, f = m[::-1], f[::-1]
                d = None if d is None else -d[::-1]
            m = m * np.float32(gain) + np.float32(offset)
        out = [np.ascontiguousarray(m, np.float32), np.ascontiguousarray(f, np.float32)]
        if d is not None:
            out.append(np.ascontiguousarray(d, np.float32))
        return tuple(out)

    def batch(self, epoch: int, step: int) -> tuple[torch.Tensor, ...]:
        """Batch ``step`` of ``epoch`` as ``(moving, fixed[, displacement])`` tensors of shape ``(B, 1, h, w)``."""
        items = [self.sample(epoch, step * self.batch_size + j) for j in range(self.batch_size)]
        return tuple(torch.from_numpy(np.stack(column)[:, None]) for column in zip(*items))


@dataclass(frozen=True)
class ValPair:
    """A validation centre crop: normalised moving, fixed and (if known) true even lines and displacement."""

    scan: str
    frame: int
    moving: np.ndarray
    fixed: np.ndarray
    truth: np.ndarray | None
    displacement: np.ndarray | None = None


def val_pairs(pairs: ScanPairs, crop: int, count: int) -> list[ValPair]:
    """``count`` frames evenly spaced over all frames of the set, as centre crops of up to ``crop`` px."""
    n = len(pairs)
    if count < 1 or n == 0:
        return []
    picks = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.int64))
    out = []
    for k in picks:
        p = pairs.frame_pair(int(k))
        y, w = p.fixed.shape
        h, cw = min(crop, y), min(crop, w)
        y0, x0 = (y - h) // 2, (w - cw) // 2
        sl = (slice(y0, y0 + h), slice(x0, x0 + cw))
        out.append(
            ValPair(
                scan=pairs.scans[int(pairs.scan_of[k])].name, frame=int(pairs.frame_of[k]),
                moving=p.moving[sl].copy(), fixed=p.fixed[sl].copy(),
                truth=None if p.truth is None else p.truth[sl].copy(),
                displacement=None if p.displacement is None else np.array(p.displacement[sl], np.float32),
            )
        )
    return out
