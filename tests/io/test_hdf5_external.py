"""HDF5 data stored in other files are refused (only the scan file is fingerprinted), each with its reason."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from orpam_pipeline.errors import ScanError
from orpam_pipeline.io import open_scan

FRAMES = np.random.default_rng(1).random((3, 16, 8), dtype=np.float32)


@pytest.fixture
def other(tmp_path) -> Path:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["data"] = FRAMES
    return path


def test_a_virtual_dataset_is_refused_naming_its_sources(tmp_path, other):
    path = tmp_path / "vds.h5"
    layout = h5py.VirtualLayout(shape=FRAMES.shape, dtype=FRAMES.dtype)
    layout[:] = h5py.VirtualSource(other, "data", shape=FRAMES.shape)
    with h5py.File(path, "w") as f:
        f.create_virtual_dataset("frames", layout)
    with pytest.raises(ScanError, match=r"virtual dataset whose data live in other files \(.*other.h5\)"):
        open_scan(path)


def test_external_raw_storage_is_refused(tmp_path):
    raw = tmp_path / "frames.raw"
    raw.write_bytes(FRAMES.tobytes())
    path = tmp_path / "ext.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", shape=FRAMES.shape, dtype=FRAMES.dtype, external=[(str(raw), 0, FRAMES.nbytes)])
    with pytest.raises(ScanError, match=r"keeps its data in external files \(.*frames.raw\)"):
        open_scan(path)


def test_links_that_leave_the_file_say_so(tmp_path, other):
    path = tmp_path / "links.h5"
    with h5py.File(path, "w") as f:
        f["elsewhere"] = h5py.ExternalLink(str(other), "/data")
        f["dangling"] = h5py.SoftLink("/nothing/here")
    with pytest.raises(ScanError, match=r"'dangling' is a soft link to '/nothing/here', which does not exist.*'elsewhere' is an external link"):
        open_scan(path)
    with pytest.raises(ScanError, match=r"dataset 'elsewhere' is an external link to .*other.h5:/data"):
        open_scan(path, variable="elsewhere")


def test_an_ordinary_file_still_opens(other):
    with open_scan(other) as source:
        np.testing.assert_array_equal(source.read(0, 3), FRAMES)
