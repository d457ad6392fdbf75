"""The options that ``run``, ``ingest``, ``register``, ``evaluate`` and workflows share, declared once.

Each field carries its help; the CLI's option definitions (``cli/options.py``) and the workflow
schema read names and help from here, so a new option is one field here plus its flag there.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.register.registry import DEFAULT_METHOD
from orpam_pipeline.report.rendered import check_figures
from orpam_pipeline.settings import setting

SCAN_LINES = ("columns", "rows")
FIRST_LINES = ("forward", "backward")


@dataclass
class ScanOptions:
    """How source files are read into a store."""

    variable: str | None = setting(None, "Variable (.mat/.npz) or dataset path (.h5) holding the frames (with "
                                         "--positions: the A-lines).")  # fmt: skip
    positions: str | None = setting(None, "Point scans: the array of stage positions (N, 2|3) of the N A-lines, in "
                                          "the same file (.mat/.npz/.h5); frames are assembled on the grid the "
                                          "positions define and --first-line follows the first line's direction.")  # fmt: skip
    scan_lines: str = setting("columns", "Whether each fast-axis line is a column (default) or a row.")
    first_line: str = setting("forward", "Direction of the first line (column 0); point scans (--positions) take it "
                                         "from the positions.")  # fmt: skip
    chunk_frames: int | None = setting(None, "Frames per zarr chunk (default: about 8 MiB per chunk).")
    depth_axis: int | None = setting(None, "Reduce raw A-line volumes to a MAP along this axis (counted in the reader's "
                                           "(T, Y, X) order; --axes says the same more plainly).")  # fmt: skip
    axes: str | None = setting(None, "Name each axis of the stored array in the order you see it (NumPy order; MATLAB's "
                                     "for .mat): t frame, y along a line, x line index, z depth; e.g. tzyx, zyxt. "
                                     "Replaces --scan-lines and --depth-axis.")  # fmt: skip
    map_method: str = setting("envelope", "How A-lines (a depth axis) become MAP values: envelope (Hilbert, default), "
                                          "abs (max |x|), peak-to-peak.")  # fmt: skip
    baseline: str | None = setting(None, "Per-A-line baseline removed first: median, mean or none (default: median for "
                                         "envelope, none for abs and peak-to-peak).")  # fmt: skip
    baseline_window: str | None = setting(None, "Depth samples A:B the baseline is taken from, e.g. a pre-signal window "
                                                "(default: the whole A-line).")  # fmt: skip
    band: str | None = setting(None, "Zero-phase band-pass LOW:HIGH in MHz before the envelope (needs --sampling-rate).")
    sampling_rate: float | None = setting(None, "Digitiser sampling rate in MHz (for --band and the depth scale).")
    speed_of_sound: float | None = setting(None, "Speed of sound in m/s; with --sampling-rate the store records "
                                                 "micrometres per depth sample.")  # fmt: skip
    depth_range: str | None = setting(None, "Only depth samples A:B count for the MAP and the depth map.")
    dtype: str | None = setting(None, "Element type of headerless binary files (.dat/.bin/.raw), e.g. uint16, int16, <f4.")
    shape: str | None = setting(None, "Shape of headerless binary files: comma list in the order --axes names, "
                                      "e.g. 384,2000,2000.")  # fmt: skip
    order: str = setting("C", "Memory order of headerless binary files: C (row-major) or F (column-major, as MATLAB's "
                              "fwrite writes; the shape is then MATLAB's).")  # fmt: skip
    reverse_backward: bool = setting(False, "Backward lines are stored in scan order (reversed along the line): flip them along Y on ingest.")
    pixel_size: str | None = setting(None, "Pixel size in micrometres: one value, or Y,X (along a line, between lines); "
                                           "recorded in the store and used in figures.")  # fmt: skip
    frame_interval: float | None = setting(None, "Time between frames in seconds; recorded in the store.")
    levels: int | None = setting(None, "Lower-resolution levels (Y and X halved each time) written beside every image for "
                                       "viewers such as napari (default: none up to 2048x2048 pixels, else enough to reach "
                                       "1024).")  # fmt: skip
    keep_volume: bool = setting(False, "Also store the depth profiles of A-line data as volume (T, Z, Y, X) and, after "
                                       "registration, volume_registered with the MAP's displacement applied.")  # fmt: skip

    def __post_init__(self) -> None:
        if self.scan_lines not in SCAN_LINES:
            raise OrpamError(f"scan_lines must be one of {', '.join(SCAN_LINES)}, not {self.scan_lines!r}")
        if self.first_line not in FIRST_LINES:
            raise OrpamError(f"first_line must be one of {', '.join(FIRST_LINES)}, not {self.first_line!r}")
        if self.levels is not None and int(self.levels) < 0:
            raise OrpamError(f"levels must be 0 or more, not {self.levels}")
        if self.chunk_frames is not None and int(self.chunk_frames) < 1:
            raise OrpamError(f"chunk_frames must be at least 1, not {self.chunk_frames}")
        self.read_spec()

    def scale(self) -> dict[str, Any]:
        """``--pixel-size`` and ``--frame-interval`` as the store's physical metadata (only what was given)."""
        out: dict[str, Any] = {}
        if self.pixel_size is not None:
            try:
                values = [float(v) for v in str(self.pixel_size).split(",")]
            except ValueError:
                values = []
            if len(values) not in (1, 2) or not all(v > 0 for v in values):
                raise OrpamError(f"--pixel-size {self.pixel_size!r}: expected a positive size in µm, or Y,X")
            y, x = (values[0], values[0]) if len(values) == 1 else values
            out["pixel_um"] = {"y": y, "x": x}
        if self.frame_interval is not None:
            if not self.frame_interval > 0:
                raise OrpamError(f"--frame-interval {self.frame_interval!r}: expected a positive time in seconds")
            out["frame_interval_s"] = float(self.frame_interval)
        return out

    def read_spec(self) -> Any:
        """The readers' :class:`~orpam_pipeline.io.spec.ReadSpec` for these options (checked: one-line errors)."""
        from orpam_pipeline.io.binary import RawLayout, parse_shape
        from orpam_pipeline.io.reduce import Reduction, parse_band, parse_window
        from orpam_pipeline.io.spec import ReadSpec

        if self.axes is not None and self.scan_lines != "columns":
            raise OrpamError("--axes replaces --scan-lines: write x before y in --axes instead (e.g. --axes txy)")
        if self.positions is not None and (self.scan_lines != "columns" or self.reverse_backward):
            flag = "--scan-lines rows" if self.scan_lines != "columns" else "--reverse-backward"
            raise OrpamError(f"--positions puts every A-line at its place on the grid (lines as columns, backward "
                             f"lines in their physical order); {flag} does not apply")  # fmt: skip
        reduction = Reduction(
            method=self.map_method, baseline=self.baseline,
            baseline_window=parse_window(self.baseline_window, "--baseline-window"), band=parse_band(self.band),
            sampling_rate=self.sampling_rate, speed_of_sound=self.speed_of_sound,
            depth_range=parse_window(self.depth_range, "--depth-range"),
        )  # fmt: skip
        raw = RawLayout(dtype=self.dtype, shape=parse_shape(self.shape), order=self.order)
        return ReadSpec(variable=self.variable, axes=self.axes, depth_axis=self.depth_axis, reduction=reduction, raw=raw,
                        positions=self.positions)  # fmt: skip

    def scan_fields(self) -> dict[str, Any]:
        """The :class:`ScanOptions` part as keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(ScanOptions)}


@dataclass
class RunOptions(ScanOptions):
    """Everything a batch run needs: how to read scans, which method with which settings, overwrite."""

    method: str = setting(DEFAULT_METHOD, "Registration method (see `orpam info`).")
    settings: dict[str, Any] = setting(default_factory=dict, help="Settings of the method (`--set key=value`).")
    overwrite: bool = setting(False, "Replace stores made with other parameters (same ones are continued or skipped).")
    wait_for_locks: bool = setting(False, "Wait for scans another live orpam process is writing instead of skipping them as busy.")
    strict: bool = setting(False, "Count a scan with any warning (docs/warnings.md) as failed (exit status 1), for batch use.")
    figures: str = setting("all", "Report figures: all (PNG and SVG, default), png (PNG only) or none (numbers only, "
                                  "about 1 s less per scan; `orpam report STORE` draws them later).")  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        check_figures(self.figures)


@dataclass
class ComputeOptions:
    """Where chunk tasks run: local threads (default), a local cluster, or a running cluster."""

    scheduler: str | None = setting(None, "Run the chunk tasks on a running dask.distributed cluster (e.g. tcp://host:8786).")
    workers: int | None = setting(None, "Run the chunk tasks on a local dask cluster of N worker processes.")
    threads_per_worker: int | None = setting(None, "Threads of each local worker (default: the cores shared out).")
    jobs: int | None = setting(None, "Scans in flight at once on a cluster (default: every worker thread).")
    cluster: dict[str, Any] | None = setting(None, "Start a cluster for this run: a table with kind = slurm, pbs, sge or lsf "
                                                   "(dask-jobqueue), gateway (dask-gateway) or kubernetes (dask-kubernetes), "
                                                   "workers = N, and the library's own keyword arguments (docs/clusters.md).")  # fmt: skip


def option_help(cls: type, name: str) -> str:
    """The help text declared for field ``name`` of an options dataclass."""
    for f in fields(cls):
        if f.name == name:
            return str(f.metadata.get("help", ""))
    raise KeyError(name)
