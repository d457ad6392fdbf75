"""Shared pieces of the reliability tests: a scan long enough to interrupt, and array comparison."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from orpam_pipeline.simulate import SimulationParams, simulate
from orpam_pipeline.store.layout import get_array, has_array

ARRAYS = ("frames", "registered_even", "merged", "displacement")
RUN_ARGS = ("--method", "phase", "--chunk-frames", "4")


@pytest.fixture(scope="session")
def long_scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 frames of 64x64 (30 chunks of 4): long enough to kill an `orpam run` mid-way."""
    root = tmp_path_factory.mktemp("long")
    sim = simulate(SimulationParams.randomised(11, frames=120, height=64, width=64))
    path = root / "scans" / "scan.npy"
    path.parent.mkdir()
    np.save(path, sim.frames)
    return path


def read_arrays(store: Path) -> dict[str, np.ndarray]:
    group = zarr.open_group(store, mode="r")
    return {name: get_array(group, name)[:] for name in ARRAYS if has_array(group, name)}


def assert_same_arrays(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def orpam_process(*args: object) -> subprocess.Popen[str]:
    """Start the real command line in a child process."""
    return subprocess.Popen(
        [sys.executable, "-m", "orpam_pipeline.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
