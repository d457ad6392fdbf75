"""A directory of 2-D frame files read as one scan; only the files of the requested frames are opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ScanError
from ._base import Layout, ScanSource, check_finite, check_frame_memory, shape_str
from .readers import open_file, plan_file
from .spec import ReadSpec


class FramesScanSource(ScanSource):
    """Frames from ``paths`` in the given order (discovery sorts them naturally), one frame per file.

    ``source_shape`` is ``(count, *one file's stored shape)``; ``source_dtype`` is the common
    result type of the files' dtypes.
    """

    def __init__(
        self, name: str, paths: tuple[Path, ...], variable: str | None = None, depth_axis: int | None = None,
        spec: ReadSpec | None = None,
    ) -> None:  # fmt: skip
        if not paths:
            raise ValueError("a frames scan needs at least one file")
        spec = spec or ReadSpec(variable=variable, depth_axis=depth_axis)
        layouts: list[Layout] = []
        frame_shape: tuple[int, ...] | None = None
        axes_used = None
        for path in paths:
            layout, plan, axes_used = plan_file(path, spec)
            if plan.shape[0] != 1:
                raise ScanError(path, f"holds {plan.shape[0]} frames; a frames directory needs one 2-D frame per file")
            if frame_shape is None:
                check_frame_memory(path, layout, plan)
                frame_shape = plan.shape[1:]
            elif plan.shape[1:] != frame_shape:
                raise ScanError(
                    path,
                    f"frame shape {shape_str(plan.shape[1:])} differs from {shape_str(frame_shape)} of {paths[0].name}",
                )
            layouts.append(layout)
        assert frame_shape is not None
        readers = sorted({lay.reader for lay in layouts})
        super().__init__(
            name=name,
            paths=tuple(Path(p) for p in paths),
            reader="frames:" + "+".join(readers),
            variable=layouts[0].variable,
            source_dtype=np.result_type(*[lay.source_dtype for lay in layouts]),
            source_shape=(len(paths), *layouts[0].source_shape),
            shape=(len(paths), frame_shape[0], frame_shape[1]),
            depth_axis=spec.depth_axis,
            axes=spec.axes,
            axes_used=f"t{axes_used}",
            reduction=spec.reduction if plan.depth is not None else None,
        )
        self._spec = spec
        self._closed = False
        self._fetch(0, 1)
        if len(paths) > 1:
            self._fetch(len(paths) - 1, len(paths))

    def _fetch(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        out = np.empty((stop - start, *self.shape[1:]), dtype=np.float32)
        depth = None if self.reduction is None else np.empty_like(out)
        for i, t in enumerate(range(start, stop)):
            with open_file(self.paths[t], verify=False, spec=self._spec) as one:
                frame, frame_depth = one.fetch_maps(0, 1)
                out[i] = frame[0]
                if depth is not None and frame_depth is not None:
                    depth[i] = frame_depth[0]
        return out, depth

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.read_maps(start, stop)[0]

    def read_maps(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        self._check_range(start, stop)
        if self._closed:
            raise ValueError(f"{self.name}: scan source is closed")
        out, depth = self._fetch(start, stop)
        if out.size == 0:
            return out, depth
        bad = ~np.isfinite(out.reshape(out.shape[0], -1)).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            check_finite(self.paths[start + i], out[i : i + 1], start + i)
        return out, depth

    def physical(self) -> dict[str, Any] | None:
        """The depth scale where known and the pixel size the first file states (one 2-D frame per file
        states no frame interval)."""
        with open_file(self.paths[0], verify=False, spec=self._spec) as first:
            return first.physical()

    def close(self) -> None:
        self._closed = True
