"""A directory of 2-D frame files read as one scan; only the files of the requested frames are opened."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ScanError
from ._base import Layout, ScanSource, check_finite, check_frame_memory, plan_frames, shape_str
from .readers import inspect_file, open_file


class FramesScanSource(ScanSource):
    """Frames from ``paths`` in the given order (discovery sorts them naturally), one frame per file.

    ``source_shape`` is ``(count, *one file's stored shape)``; ``source_dtype`` is the common
    result type of the files' dtypes.
    """

    def __init__(self, name: str, paths: tuple[Path, ...], variable: str | None = None, depth_axis: int | None = None) -> None:
        if not paths:
            raise ValueError("a frames scan needs at least one file")
        layouts: list[Layout] = []
        frame_shape: tuple[int, ...] | None = None
        for path in paths:
            layout = inspect_file(path, variable)
            plan = plan_frames(path, layout.pipeline_shape, depth_axis)
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
            depth_axis=depth_axis,
        )
        self._variable_arg = variable
        self._closed = False
        self._fetch(0, 1)
        if len(paths) > 1:
            self._fetch(len(paths) - 1, len(paths))

    def _fetch(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.shape[1:]), dtype=np.float32)
        for i, t in enumerate(range(start, stop)):
            with open_file(self.paths[t], variable=self._variable_arg, depth_axis=self.depth_axis, verify=False) as one:
                out[i] = one.fetch(0, 1)[0]
        return out

    def read(self, start: int, stop: int) -> np.ndarray:
        self._check_range(start, stop)
        if self._closed:
            raise ValueError(f"{self.name}: scan source is closed")
        out = self._fetch(start, stop)
        if out.size == 0:
            return out
        bad = ~np.isfinite(out.reshape(out.shape[0], -1)).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            check_finite(self.paths[start + i], out[i : i + 1], start + i)
        return out

    def close(self) -> None:
        self._closed = True
