"""Apply a stored bidirectional displacement to another array of the same acquisition.

A registration estimated on one image (say the MAP of one wavelength) corrects every other image
acquired with the same scanner motion: another wavelength's MAP ``(T, Y, X)`` or a depth-resolved
volume ``(T, Z, Y, X)`` whose lateral axes match. The backward columns are resampled along Y with the
classical method's kernel (``register.phase.resample_rows``) at ``y + displacement``; the forward
columns are copied untouched, and every depth slice of a volume gets the same warp. Only geometry is
transferred: an intensity correction is specific to the image it was estimated on.

The displacement is the store's ``displacement`` array: a per-frame profile ``(T, Y)`` (``phase``) or a
field ``(T, Y, Xe)`` (``pcregnet-flow``), ``Xe`` being the number of backward columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.geometry import FirstLine, fixed_parity, moving_width
from orpam_pipeline.register.phase import resample_rows
from orpam_pipeline.store.layout import frames_per_chunk, get_array, has_array

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(frames_done, frames_total)``."""


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(int(s) for s in shape))


def _check_shapes(array_shape: tuple[int, ...], disp_shape: tuple[int, ...], first_line: FirstLine) -> str | None:
    """Why ``array_shape`` and ``disp_shape`` do not belong together, or None when they do."""
    if len(array_shape) not in (3, 4):
        return "the array must be (T, Y, X) or (T, Z, Y, X)"
    if len(disp_shape) not in (2, 3):
        return "the displacement must be a (T, Y) profile or a (T, Y, Xe) field"
    t, y, x = array_shape[0], array_shape[-2], array_shape[-1]
    if disp_shape[0] != t or disp_shape[1] != y:
        return "frames (T) and rows (Y) differ"
    n_moving = moving_width(x, first_line)
    if len(disp_shape) == 3 and disp_shape[2] != n_moving:
        return f"the field has {disp_shape[2]} backward columns, the array {n_moving}"
    return None


def _warp_even(even: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """Resample backward columns (T, [Z,] Y, Xe) along Y at ``y + displacement`` ((T, Y) or (T, Y, Xe))."""
    volume = even.ndim == 4
    t, y, xe = even.shape[0], even.shape[-2], even.shape[-1]
    z = even.shape[1] if volume else 1
    rows = np.arange(y)
    lines = even.reshape(t, z, y, xe).transpose(0, 2, 1, 3)
    if displacement.ndim == 2:
        out = resample_rows(lines.reshape(t, y, z * xe), rows[None, :] + displacement)
        out = out.reshape(t, y, z, xe)
    else:
        per_col = lines.transpose(0, 3, 1, 2).reshape(t * xe, y, z)
        positions = rows[None, :] + displacement.transpose(0, 2, 1).reshape(t * xe, y)
        out = resample_rows(per_col, positions).reshape(t, xe, y, z).transpose(0, 2, 3, 1)
    out = out.transpose(0, 2, 1, 3)
    return out.reshape(even.shape) if volume else out[:, 0]


def apply_displacement(array: np.ndarray, displacement: np.ndarray, first_line: FirstLine = "forward") -> np.ndarray:
    """Warp the backward columns of ``array`` ((T, Y, X) or (T, Z, Y, X)) by a stored displacement.

    Returns a new float32 array of ``array``'s shape: forward columns copied, backward columns
    ``out[..., y, j] = array[..., y + displacement[t, y(, j)], j]`` (Keys cubic, edge-clamped).
    Raises OrpamError when the shapes do not fit or the displacement is not finite.
    """
    array = np.asarray(array)
    displacement = np.asarray(displacement, dtype=np.float64)
    problem = _check_shapes(array.shape, displacement.shape, first_line)
    if problem:
        raise OrpamError(
            f"array {_shape(array.shape)} and displacement {_shape(displacement.shape)} do not fit: {problem}"
        )
    if not np.isfinite(displacement).all():
        raise OrpamError("displacement holds non-finite values (an unfinished registration?)")
    p = fixed_parity(first_line)
    out = np.array(array, dtype=np.float32, copy=True)
    out[..., 1 - p :: 2] = _warp_even(out[..., 1 - p :: 2], displacement)
    return out


# -- stores and files ------------------------------------------------------------------------------


def _open_displacement(store: Path) -> tuple[Any, FirstLine, bool, dict[str, Any]]:
    """The store's displacement array, first line, whether it was transposed on ingest, and its registration info."""
    from orpam_pipeline.store.layout import DISPLACEMENT, open_scan_store, stage_complete

    group = open_scan_store(store)
    conventions = group.attrs.get("conventions", {})
    info = dict(group.attrs.get("registration", {}))
    hint = "register it with a method that reports one (phase, pcregnet-flow)"
    if not stage_complete(group, "register"):
        raise OrpamError(f"{store}: holds no displacement (registration missing or unfinished); {hint}")
    if not has_array(group, DISPLACEMENT):
        raise OrpamError(f"{store}: holds no displacement (method {info.get('method')} reports none); {hint}")
    transposed = bool(conventions.get("transposed_on_ingest"))
    info["reverse_backward"] = bool(conventions.get("reverse_backward"))
    return get_array(group, DISPLACEMENT), conventions.get("first_line", "forward"), transposed, info


class _Source:
    """Lazy reader of the array to warp: .npy (memory map), zarr array, or any scan ``open_scan`` reads."""

    def __init__(self, path: Path, variable: str | None) -> None:
        self.path = path
        self._scan: Any = None
        if path.suffix.lower() == ".npy":
            try:
                self._array: Any = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise OrpamError(f"{path}: cannot read as .npy ({type(exc).__name__}: {exc})") from None
        elif path.suffix.lower() == ".zarr" or (path / "zarr.json").exists():
            self._array = self._open_zarr(path, variable)
        else:
            from orpam_pipeline.io import open_scan

            self._scan = open_scan(path, variable=variable)
            self._array = None
        self.shape: tuple[int, ...] = tuple(self._scan.shape if self._scan is not None else self._array.shape)

    @staticmethod
    def _open_zarr(path: Path, variable: str | None) -> Any:
        import zarr

        try:
            node = zarr.open(path, mode="r")
        except Exception as exc:
            raise OrpamError(f"{path}: cannot open zarr ({type(exc).__name__}: {exc})") from None
        if isinstance(node, zarr.Array):
            return node
        if "ome" in node.attrs:
            return node["0"]
        images = [key for key in node.group_keys() if "ome" in node[key].attrs]
        names = sorted([*node.array_keys(), *images])
        name = variable if variable is not None else (names[0] if len(names) == 1 else None)
        if name is None or name not in names:
            listed = ", ".join(names) or "none"
            raise OrpamError(f"{path}: name the array to warp with variable (arrays: {listed})")
        return node[f"{name}/0"] if name in images else node[name]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` as float32 (NaN/Inf refused with the frame named)."""
        if self._scan is not None:
            return self._scan.read(start, stop)
        block = np.asarray(self._array[start:stop], dtype=np.float32)
        if not np.isfinite(block).all():
            first = start + int(np.flatnonzero((~np.isfinite(block.reshape(block.shape[0], -1))).any(axis=1))[0])
            raise OrpamError(f"{self.path}: frame {first} holds non-finite values (NaN/Inf)")
        return block

    def close(self) -> None:
        if self._scan is not None:
            self._scan.close()
        self._array = None


@contextmanager
def _writer(out: Path, shape: tuple[int, ...], chunk: int, attrs: dict[str, Any]) -> Iterator[Any]:
    """A float32 array at ``out`` (.npy or zarr v3 with the store's codecs) written under a temporary name.

    Only a completely written array replaces ``out`` (removed just before the rename).
    """
    from orpam_pipeline.store.layout import codecs, remove_tree

    partial = out.with_name(f".{out.name}.partial")
    remove_tree(partial)
    try:
        if out.suffix.lower() == ".npy":
            target: Any = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=shape)
            yield target
            target.flush()
            del target
        else:
            import zarr

            dims = ("t", "y", "x") if len(shape) == 3 else ("t", "z", "y", "x")
            target = zarr.create_array(
                partial, shape=shape, chunks=(chunk, *shape[1:]), dtype="float32", fill_value=np.nan,
                dimension_names=dims, attributes=attrs, zarr_format=3, **codecs(),
            )  # fmt: skip
            yield target
        remove_tree(out)
        partial.rename(out)
    except BaseException:
        remove_tree(partial)
        raise


def _check_output(out: Path, inputs: list[Path], store: Path) -> None:
    """Refuse an output that is an input, contains one, or lies inside the scan store."""
    from orpam_pipeline.store.layout import resolve_store_path

    target = out.resolve()
    zarr_dir = resolve_store_path(store)
    guarded = [p.resolve() for p in [*inputs, zarr_dir]]
    if any(target == g or target in g.parents for g in guarded) or zarr_dir.resolve() in target.parents:
        raise OrpamError(f"{out}: the output must not be an input, contain one, or lie inside {zarr_dir}")


def _chunk_frames(shape: tuple[int, ...]) -> int:
    from orpam_pipeline.store.layout import auto_chunk_frames

    return auto_chunk_frames(tuple(shape[1:]), int(shape[0]))


def apply_displacement_store(
    store: str | Path,
    src_path: str | Path,
    out_path: str | Path,
    variable: str | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Warp another array of the acquisition registered in ``store`` and write it to ``out_path``.

    ``src_path`` is a .npy or zarr array ((T, Y, X) or (T, Z, Y, X), lab orientation) or any scan
    ``open_scan`` reads ((T, Y, X); ``variable`` names the dataset). A store ingested with
    ``scan_lines="rows"`` had its frames transposed, so the array is transposed the same way before
    the warp and back after it. A store ingested with ``reverse_backward`` had its backward columns
    flipped along Y: the array's are flipped the same way before the warp (and stay so: the result is
    the corrected image). ``out_path`` ending in ``.npy`` gets a .npy file, anything else a zarr
    v3 array chunked by whole frames; it is written under a temporary name and never replaces an
    input. Returns a small summary (shapes, paths, method, frames).
    """
    store, src, out = Path(store), Path(src_path), Path(out_path)
    disp_z, first_line, transposed, info = _open_displacement(store)
    _check_output(out, [src, store], store)
    if out.exists() and not overwrite:
        raise OrpamError(f"{out}: already exists; pass overwrite or choose another path")
    source = _Source(src, variable)
    try:
        shape = source.shape
        pipeline_shape = shape[:-2] + shape[-2:][::-1] if transposed else shape
        problem = _check_shapes(pipeline_shape, disp_z.shape, first_line)
        if problem:
            raise OrpamError(
                f"{src} {_shape(shape)} does not fit the displacement {_shape(disp_z.shape)} of {store}: {problem}"
            )
        chunk = max(1, min(frames_per_chunk(disp_z), _chunk_frames(shape)))
        n = int(shape[0])
        attrs = {
            "source": str(src.resolve()),
            "variable": variable,
            "store": str(store.resolve()),
            "method": info.get("method"),
            "displacement": info.get("displacement"),
            "first_line": first_line,
            "transposed_like_store": transposed,
            "backward_flipped_like_store": info["reverse_backward"],
            "note": "backward columns resampled along the fast axis at y + displacement (Keys cubic); "
            "forward columns copied",
        }
        with _writer(out, tuple(shape), chunk, attrs) as target:
            for start in range(0, n, chunk):
                stop = min(start + chunk, n)
                block = source.read(start, stop)
                if transposed:
                    block = np.swapaxes(block, -1, -2)
                if info["reverse_backward"]:
                    block = np.array(block, copy=True)
                    moving = 1 - fixed_parity(first_line)
                    block[..., moving::2] = block[..., ::-1, moving::2]
                warped = apply_displacement(block, disp_z[start:stop], first_line)
                target[start:stop] = np.swapaxes(warped, -1, -2) if transposed else warped
                if progress is not None:
                    progress(stop, n)
    finally:
        source.close()
    return {"store": str(store), "source": str(src), "out": str(out), "shape": list(shape),
            "displacement_shape": list(disp_z.shape), "method": info.get("method"), "frames": n}
