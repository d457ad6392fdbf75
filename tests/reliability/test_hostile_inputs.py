"""Property: any malformed file (random bytes, truncations, wrong shapes, wrong dtypes, every extension)
gives `process_scan` a clean one-line error naming it, leaves no complete store, and is never modified."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import scipy.io
import tifffile
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orpam_pipeline.io import SUPPORTED_SUFFIXES, sha256_file
from orpam_pipeline.options import RunOptions
from orpam_pipeline.pipeline import process_scan
from orpam_pipeline.store.layout import STORE_NAME
from tests.io.conftest import write_mat73

EXAMPLES_PER_SUFFIX = 32  # 7 suffixes -> 224 files
GOOD = np.random.default_rng(1).normal(size=(3, 16, 24)).astype(np.float32)  # big enough for the SSIM window
MAGIC = (b"", b"\x93NUMPY\x01\x00v\x00", b"PK\x03\x04", b"II*\x00", b"MM\x00*", b"\x89HDF\r\n\x1a\n",
         b"MATLAB 5.0 MAT-file, Platform: x".ljust(116) + b"\x00" * 8 + b"\x00\x01IM")  # fmt: skip
BAD_SHAPES = ((7,), (2, 3, 4, 5), (0, 8, 6), (3, 0, 6), (3, 8, 0), (1, 1))
BAD_DTYPES = ("complex64", "complex128", "bool", "object", "str", "bytes")


def _typed(dtype: str) -> np.ndarray:
    if dtype == "object":
        return GOOD.astype(object)
    if dtype == "str":
        return GOOD.astype("U8")
    if dtype == "bytes":
        return GOOD.astype("S8")
    return GOOD.astype(dtype)


def _write_array(path: Path, arr: np.ndarray, mat_v73: bool) -> bool:
    """Write ``arr`` in the format of ``path``'s suffix; False when the format cannot hold it."""
    suffix = path.suffix
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if suffix == ".npy":
                np.save(path, arr, allow_pickle=True)
            elif suffix == ".npz":
                np.savez(path, frames=arr)
            elif suffix in (".tif", ".tiff"):
                tifffile.imwrite(path, arr, photometric="minisblack")
            elif suffix in (".h5", ".hdf5"):
                with h5py.File(path, "w") as f:
                    if arr.dtype.kind in "OU":
                        f.create_dataset("data", data=arr.astype(str).astype(object), dtype=h5py.string_dtype())
                    else:
                        f.create_dataset("data", data=arr)
            elif mat_v73:
                if arr.dtype.kind in "OU":
                    return False
                write_mat73(path, {"img": np.moveaxis(arr, 0, -1) if arr.ndim == 3 else arr})
            else:
                scipy.io.savemat(path, {"img": np.moveaxis(arr, 0, -1) if arr.ndim == 3 else arr})
        except Exception:
            path.unlink(missing_ok=True)
            return False
    return True


@st.composite
def malformed(draw: st.DrawFn, suffix: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["random", "truncated", "shape", "dtype"]))
    spec: dict[str, Any] = {"kind": kind, "mat_v73": draw(st.booleans())}
    if kind == "random":
        spec["bytes"] = draw(st.sampled_from(MAGIC)) + draw(st.binary(min_size=0, max_size=600))
    elif kind == "truncated":
        spec["cut"] = draw(st.integers(min_value=0, max_value=1023)) / 1024  # no float strategy: torch may set FTZ
    elif kind == "shape":
        shape = draw(st.sampled_from(BAD_SHAPES))
        spec["array"] = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    else:
        spec["array"] = _typed(draw(st.sampled_from(BAD_DTYPES)))
    return spec


def _materialise(folder: Path, suffix: str, spec: dict[str, Any]) -> Path:
    path = folder / f"case{suffix}"
    if spec["kind"] == "random":
        path.write_bytes(spec["bytes"])
        return path
    arr = GOOD if spec["kind"] == "truncated" else spec["array"]
    if not _write_array(path, arr, spec["mat_v73"]):
        path.write_bytes(b"\x00not a valid file" * 8)
        return path
    if spec["kind"] == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * spec["cut"])])
    return path


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
@settings(max_examples=EXAMPLES_PER_SUFFIX, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(data=st.data())
def test_malformed_files_fail_cleanly_and_are_never_touched(suffix: str, data: st.DataObject) -> None:
    spec = data.draw(malformed(suffix))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        path = _materialise(src, suffix, spec)
        before = {p.name: sha256_file(p) for p in src.iterdir()}
        out = Path(tmp) / "out"
        outcome = process_scan(path, out, RunOptions(method="none", chunk_frames=2))
        after = {p.name: sha256_file(p) for p in src.iterdir()}
        assert after == before, "the source was modified or something was written beside it"
        if outcome.ok:
            assert spec["kind"] == "truncated", (spec["kind"], outcome)
            frames = zarr.open_group(out / "case" / STORE_NAME, mode="r")["frames/0"][:]
            np.testing.assert_array_equal(frames, GOOD)  # cut only in trailing padding: read exactly
            return
        error = outcome.error or ""
        assert "\n" not in error and "Traceback" not in error and path.name in error, error
        assert "unexpected" not in error, error
        for store in out.glob(f"*/{STORE_NAME}"):
            stages = zarr.open_group(store, mode="r").attrs.get("stages", {})
            assert not stages.get("ingest", {}).get("complete"), f"{store} marked complete"
