"""Training pairs: geometry (moving = odd-index columns), Y-only flips, determinism, bounded caches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.manifest import load_manifest
from orpam_pipeline.train.data import PairScan, ScanPairs, TrainPairs, pair_images, val_pairs

from .conftest import coded_frames


def _coded_scan(tmp_path: Path, t: int = 4, y: int = 40, x: int = 50, name: str = "coded") -> PairScan:
    path = tmp_path / f"{name}.npy"
    np.save(path, coded_frames(t, y, x))
    return PairScan(name, path)


def _unit(m: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    """Normalisation is affine (a·v + b) and the same for both: recover a from the fixed image."""
    a = float(f[0, 1] - f[0, 0]) / 2.0  # neighbouring fixed columns are 2 apart in x
    return a, float(m[0, 0] - f[0, 0]) / a


def test_pair_images_geometry() -> None:
    frame = coded_frames(1, 6, 7)[0]
    moving, fixed = pair_images(frame, "forward")
    assert moving.shape == fixed.shape == (6, 3)
    np.testing.assert_array_equal(moving, frame[:, 1::2])
    np.testing.assert_array_equal(fixed, frame[:, 0:6:2])
    moving, fixed = pair_images(frame, "backward")
    np.testing.assert_array_equal(moving, frame[:, 0:6:2])
    np.testing.assert_array_equal(fixed, frame[:, 1::2])


def test_moving_columns_are_the_odd_index_columns(tmp_path: Path) -> None:
    pairs = ScanPairs([_coded_scan(tmp_path)])
    data = TrainPairs(pairs, crop=16, batch_size=4, steps_per_epoch=8, seed=3, augment=False)
    assert data.crop == (16, 16)
    for pos in range(32):
        m, f = data.sample(0, pos)
        assert m.shape == f.shape == (16, 16)
        a, shift = _unit(m, f)
        assert a > 0
        assert shift == pytest.approx(1.0, abs=1e-3), "moving column j is frame column 2j+1, fixed is 2j"
        np.testing.assert_allclose(m - f, a, rtol=1e-3)
        np.testing.assert_allclose(np.diff(f, axis=0), 10 * a, rtol=1e-3)


def test_augmentation_flips_both_along_y_only(tmp_path: Path) -> None:
    pairs = ScanPairs([_coded_scan(tmp_path)])
    data = TrainPairs(pairs, crop=16, batch_size=4, steps_per_epoch=16, seed=4, augment=True)
    flips = set()
    for pos in range(64):
        m, f = data.sample(1, pos)
        a = float(f[0, 1] - f[0, 0]) / 2.0
        assert a > 0, "never flipped along X: fixed x increases along columns"
        dy = np.diff(f, axis=0)
        flipped = bool(dy[0, 0] < 0)
        flips.add(flipped)
        np.testing.assert_allclose(dy, (-10 if flipped else 10) * a, rtol=1e-3)
        # moving: same geometry (same flip, x increasing), only gain/offset changed
        dym = np.diff(m, axis=0)
        gain = float(m[0, 1] - m[0, 0]) / (2 * a)
        assert 0.79 < gain < 1.26
        np.testing.assert_allclose(dym, (-10 if flipped else 10) * a * gain, rtol=1e-3)
    assert flips == {True, False}


def test_sampling_is_a_pure_function_of_seed_epoch_position(tmp_path: Path) -> None:
    scan = _coded_scan(tmp_path)
    a = TrainPairs(ScanPairs([scan]), crop=16, batch_size=4, steps_per_epoch=3, seed=9)
    b = TrainPairs(ScanPairs([scan]), crop=16, batch_size=4, steps_per_epoch=3, seed=9)
    b.batch(5, 2)  # history must not matter
    for step in range(3):
        ma, fa = a.batch(2, step)
        mb, fb = b.batch(2, step)
        assert ma.shape == (4, 1, 16, 16)
        assert torch.equal(ma, mb) and torch.equal(fa, fb)
    # the Dataset/DataLoader view yields the same batches, also when starting mid-epoch
    b.set_epoch(2, start_step=1)
    loader = torch.utils.data.DataLoader(b, batch_size=4, shuffle=False)
    for step, (m, f) in enumerate(loader, start=1):
        assert torch.equal(m, a.batch(2, step)[0]) and torch.equal(f, a.batch(2, step)[1])
    c = TrainPairs(ScanPairs([scan]), crop=16, batch_size=4, steps_per_epoch=3, seed=10)
    assert not torch.equal(c.batch(2, 0)[0], a.batch(2, 0)[0])


def test_every_frame_is_used_each_pass(tmp_path: Path) -> None:
    scans = [_coded_scan(tmp_path, t=3, name="a"), _coded_scan(tmp_path, t=5, name="b")]
    data = TrainPairs(ScanPairs(scans), crop=16, batch_size=2, steps_per_epoch=None, seed=0)
    assert data.steps_per_epoch == 4
    seen = sorted(data.frame_index(0, p) for p in range(8))
    assert seen == list(range(8))


def test_caches_are_bounded(tmp_path: Path) -> None:
    scans = [_coded_scan(tmp_path, t=4, name=f"s{i}") for i in range(4)]
    pairs = ScanPairs(scans, cache_frames=3, max_open=2)
    for k in range(len(pairs)):
        pairs.frame_pair(k)
        assert len(pairs._cache) <= 3 and len(pairs._readers) <= 2
    pairs.close()


def test_rows_scan_lines_transpose(tmp_path: Path) -> None:
    frames = coded_frames(2, 40, 36)
    path = tmp_path / "rows.npy"
    np.save(path, frames.transpose(0, 2, 1))  # a lab whose lines are rows
    pairs = ScanPairs([PairScan("rows", path)], scan_lines="rows")
    p = pairs.frame_pair(1)
    m_ref, f_ref = pair_images(frames[1])
    a = (p.fixed[0, 1] - p.fixed[0, 0]) / (f_ref[0, 1] - f_ref[0, 0])
    np.testing.assert_allclose(p.moving - p.fixed, a * (m_ref - f_ref), rtol=1e-4)


def test_crop_too_small_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OrpamError):
        TrainPairs(ScanPairs([_coded_scan(tmp_path)]), crop=8, batch_size=2, steps_per_epoch=1, seed=0)
    with pytest.raises(OrpamError, match="too small"):
        TrainPairs(ScanPairs([_coded_scan(tmp_path, y=12, x=50)]), crop=32, batch_size=2, steps_per_epoch=1, seed=0)


def test_val_pairs_are_centre_crops_with_truth(sim_manifest: Path) -> None:
    m = load_manifest(sim_manifest)
    scans = [PairScan(s.name, s.resolved_path, s.resolved_truth) for s in m.split("val")]
    pairs = ScanPairs(scans)
    items = val_pairs(pairs, crop=24, count=3)
    assert [i.frame for i in items] == [0, 4, 7]
    for item in items:
        assert item.moving.shape == item.fixed.shape == item.truth.shape == (24, 24)
        full = pairs.frame_pair(item.frame)
        np.testing.assert_array_equal(item.fixed, full.fixed[20:44, 4:28])
        # truth is in the fixed image's appearance: it correlates with fixed better than moving does
        c_truth = np.corrcoef(item.truth.ravel(), item.fixed.ravel())[0, 1]
        assert c_truth > 0.8


def test_ingested_store_is_read_with_its_own_conventions(tmp_path: Path) -> None:
    from orpam_pipeline.io import open_scan
    from orpam_pipeline.store.ingest import ingest_scan

    frames = coded_frames(3, 20, 36)
    src = tmp_path / "lab.npy"
    np.save(src, frames.transpose(0, 2, 1))  # lines are rows, first line backward
    with open_scan(src) as source:
        store = ingest_scan(source, tmp_path / "out", scan_lines="rows", first_line="backward")
    pairs = ScanPairs([PairScan("lab", store)], scan_lines="columns", first_line="forward")
    assert pairs.shapes == [(3, 20, 36)]
    p = pairs.frame_pair(2)
    a = (p.fixed[0, 1] - p.fixed[0, 0]) / 2.0
    # backward first: moving = columns 0, 2, ...; fixed = columns 1, 3, ... -> moving - fixed = -1 unit
    np.testing.assert_allclose(p.moving - p.fixed, -a, rtol=1e-4)



def _window_of(crop: np.ndarray, image: np.ndarray) -> tuple[int, int]:
    """Top-left corner of the window of ``image`` that ``crop`` was cut from (exact match)."""
    h, w = crop.shape
    for y0 in range(image.shape[0] - h + 1):
        for x0 in range(image.shape[1] - w + 1):
            if np.array_equal(image[y0 : y0 + h, x0 : x0 + w], crop):
                return y0, x0
    raise AssertionError("crop not found in its frame")


def test_displacement_crops_follow_the_images_shifts_and_flips(sim_dir: Path) -> None:
    """The displacement is cut from the truth like the images; a shift s makes it d - s, a Y flip -d[::-1].

    Independent of the bookkeeping: warping each augmented moving crop by its displacement gives the same
    registered image (up to the flip and the intensity jitter) as warping the plain crop by the truth.
    """
    import zarr

    from orpam_pipeline.models.warp import warp_rows

    scan = sorted((sim_dir / "scans").glob("*.npy"))[0]
    truth = sim_dir / "truth" / f"{scan.stem}.zarr"
    pairs = ScanPairs([PairScan(scan.stem, scan, truth)])
    plain = TrainPairs(pairs, crop=32, batch_size=4, steps_per_epoch=4, seed=3, augment=False, displacement=True)
    jittered = TrainPairs(pairs, crop=32, batch_size=4, steps_per_epoch=4, seed=3, displacement=True, shift=5)
    true = np.asarray(zarr.open_group(truth, mode="r")["displacement"])
    flips, shifts = [], set()
    for pos in range(16):
        m, _, d = plain.sample(0, pos)
        k = plain.frame_index(0, pos)
        y0, _ = _window_of(m, pairs.frame_pair(k).moving)
        np.testing.assert_allclose(d, np.broadcast_to(true[pairs.frame_of[k], y0 : y0 + 32, None], d.shape), atol=1e-6)
        ma, _, da = jittered.sample(0, pos)
        flipped = np.ptp(da - d) > 1e-4
        flips.append(flipped)
        unflipped = -da[::-1] if flipped else da
        shift = float(np.mean(d - unflipped))
        assert shift == pytest.approx(round(shift), abs=1e-5) and abs(shift) <= 5
        shifts.add(round(shift))
        registered = warp_rows(torch.from_numpy(m)[None, None], torch.from_numpy(d)[None, None])[0, 0].numpy()
        registered_a = warp_rows(torch.from_numpy(ma)[None, None], torch.from_numpy(da)[None, None])[0, 0].numpy()
        expected = registered[::-1] if flipped else registered
        inner = slice(12, -12)  # rows whose warp reads inside the crop in every case
        assert np.corrcoef(expected[inner].ravel(), registered_a[inner].ravel())[0, 1] > 0.9999
    assert any(flips) and not all(flips)
    assert len(shifts) > 3


def test_displacement_supervision_needs_truth(tmp_path: Path) -> None:
    pairs = ScanPairs([_coded_scan(tmp_path)])
    with pytest.raises(OrpamError, match="displacement supervision needs a truth store"):
        TrainPairs(pairs, crop=16, batch_size=2, steps_per_epoch=1, seed=0, displacement=True)
    assert len(TrainPairs(pairs, crop=16, batch_size=2, steps_per_epoch=1, seed=0).sample(0, 0)) == 2
