"""MAP of A-lines: envelope against scipy on whole arrays, analytic pulses on a DC offset, peak-to-peak,
band-pass against out-of-band noise, windows, and chunk invariance through the readers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from orpam_pipeline.errors import OrpamError, ScanError
from orpam_pipeline.io import ReadSpec, open_scan
from orpam_pipeline.io import reduce as reduce_mod
from orpam_pipeline.io.reduce import Reduction, parse_band, parse_window, reduce_frame, reduce_lines

from .conftest import write_npy

FS, FC, SIGMA = 250.0, 50.0, 4.0
"""Sampling rate and carrier (MHz), Gaussian envelope sigma (samples)."""


def pulse(z: int, depth: float, amplitude: float, carrier: float = FC) -> np.ndarray:
    """A Gaussian-modulated sinusoid centred at ``depth`` samples."""
    lag = np.arange(z) - depth
    return amplitude * np.exp(-0.5 * (lag / SIGMA) ** 2) * np.cos(2 * np.pi * carrier / FS * lag)


def test_envelope_equals_scipy_hilbert_on_the_whole_array(monkeypatch):
    raw = np.random.default_rng(0).normal(size=(7, 9, 48))  # (Y, X, Z)
    want = np.abs(signal.hilbert(raw - np.median(raw, axis=-1, keepdims=True), axis=-1))
    got, depth = reduce_frame(raw, Reduction())
    np.testing.assert_allclose(got, want.max(axis=-1), rtol=1e-6)
    np.testing.assert_array_equal(np.rint(depth), want.argmax(axis=-1))
    monkeypatch.setattr(reduce_mod, "SLAB_SAMPLES", 48 * 9 * 2)
    slabbed = reduce_frame(raw, Reduction())
    np.testing.assert_array_equal(slabbed[0], got)
    np.testing.assert_array_equal(slabbed[1], depth)


def test_chunked_reading_equals_whole_and_scipy(tmp_path):
    rng = np.random.default_rng(1)
    raw = (32768 + 300 * rng.normal(size=(6, 40, 5, 7))).astype(np.uint16)  # (T, Z, Y, X)
    path = write_npy(tmp_path / "v.npy", raw)
    centred = raw.astype(np.float64) - np.median(raw, axis=1, keepdims=True)
    want = np.abs(signal.hilbert(centred, axis=1)).max(axis=1).astype(np.float32)
    with open_scan(path, spec=ReadSpec(axes="tzyx")) as src:
        whole, whole_depth = src.read_maps(0, 6)
        parts = [src.read_maps(i, i + 1) for i in range(6)]
    np.testing.assert_allclose(whole, want, rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole_depth)


@pytest.mark.parametrize("depth", [20.0, 31.3, 40.5])
def test_pulse_on_a_dc_offset_gives_its_amplitude_and_depth(depth):
    z, amplitude = 96, 9000.0
    line = np.rint(32768 + pulse(z, depth, amplitude)).astype(np.uint16)
    peak, found = reduce_lines(line[None], Reduction())
    assert abs(peak[0] / amplitude - 1) < 0.015
    assert abs(found[0] - depth) < 0.5


def test_offset_vanishes_from_noise_only_lines():
    rng = np.random.default_rng(2)
    lines = np.rint(32768 + 20 * rng.normal(size=(200, 64))).astype(np.uint16)
    envelope, _ = reduce_lines(lines, Reduction())
    assert envelope.max() < 150
    old, _ = reduce_lines(lines, Reduction("abs"))
    assert old.min() > 32768
    centred, _ = reduce_lines(lines, Reduction("abs", baseline="median"))
    assert centred.max() < 150


def test_abs_with_no_baseline_is_the_old_max_abs():
    raw = np.array([[-32768, 5, 3], [7, 1, -9]], dtype=np.int16)
    peak, depth = reduce_lines(raw, Reduction("abs"))
    np.testing.assert_array_equal(peak, [32768, 9])
    np.testing.assert_array_equal(depth, [0, 2])


def test_peak_to_peak():
    line = 1000 + pulse(80, 33.0, 500.0)
    peak, depth = reduce_lines(line[None], Reduction("peak-to-peak"))
    assert peak[0] == pytest.approx(line.max() - line.min(), rel=1e-6)
    assert 1.5 * 500 < peak[0] <= 2 * 500
    assert abs(depth[0] - 33.0) <= 1.5


def test_band_pass_removes_out_of_band_noise():
    z, depth, amplitude = 128, 70.0, 1000.0
    lag = np.arange(z)
    hum = 1500 * np.sin(2 * np.pi * 4.0 / FS * lag + 0.3)  # strong low-frequency interference
    hiss = 600 * np.sin(2 * np.pi * 115.0 / FS * lag)  # and a tone near Nyquist
    line = 2048 + pulse(z, depth, amplitude) + hum + hiss
    plain, _ = reduce_lines(line[None], Reduction())
    assert plain[0] > 1.2 * amplitude
    band = Reduction(band=(20.0, 85.0), sampling_rate=FS)
    filtered, found = reduce_lines(line[None], band)
    assert abs(filtered[0] / amplitude - 1) < 0.03
    assert abs(found[0] - depth) < 1.0


def test_baseline_window_and_depth_range():
    z = 100
    line = 500 + pulse(z, 70.0, 300.0) + pulse(z, 30.0, 800.0)
    line[:10] = 500
    peak, depth = reduce_lines(line[None], Reduction(depth_range=(50, 100)))
    assert abs(peak[0] / 300 - 1) < 0.02 and abs(depth[0] - 70) < 0.5
    windowed, _ = reduce_lines(line[None], Reduction(baseline="mean", baseline_window=(0, 10)))
    assert abs(windowed[0] / 800 - 1) < 0.02


def test_options_are_checked():
    assert parse_window("3:9", "--depth-range") == (3, 9)
    assert parse_band("20:80") == (20.0, 80.0)
    for bad in ("9:3", "a:b", "3"):
        with pytest.raises(OrpamError, match="--depth-range"):
            parse_window(bad, "--depth-range")
    with pytest.raises(OrpamError, match="needs --sampling-rate"):
        Reduction(band=(20.0, 80.0))
    with pytest.raises(OrpamError, match="below half the sampling rate"):
        Reduction(band=(20.0, 130.0), sampling_rate=250.0)
    with pytest.raises(OrpamError, match="--map-method must be one of envelope, abs, peak-to-peak"):
        Reduction("max")
    with pytest.raises(OrpamError, match="--baseline-window needs"):
        Reduction(baseline="none", baseline_window=(0, 5))


def test_window_beyond_the_a_line_is_one_line_naming_file_and_shape(tmp_path):
    path = write_npy(tmp_path / "v.npy", np.zeros((2, 30, 4, 5), np.uint16))
    with pytest.raises(ScanError) as err:
        open_scan(path, spec=ReadSpec(axes="tzyx", reduction=Reduction(depth_range=(10, 40))))
    text = str(err.value)
    assert "\n" not in text and str(path) in text and "(2, 30, 4, 5)" in text and "--depth-range 10:40" in text


def test_physical_scale_is_one_way():
    phys = Reduction(sampling_rate=250.0, speed_of_sound=1500.0).physical()
    assert phys == {"sampling_rate_mhz": 250.0, "speed_of_sound_m_s": 1500.0, "depth_um_per_sample": 6.0,
                    "depth_map_units": "samples"}  # fmt: skip
    assert Reduction(sampling_rate=250.0).physical() is None
