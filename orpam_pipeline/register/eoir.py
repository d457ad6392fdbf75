"""EOIR as a registration method: the network's displacement, refined, applied as one resampling.

The network (``models.eoir``) predicts a displacement along Y for every backward line; by default its
median along the lines is used for every row (``line_profile``), ``refine`` Gauss-Newton steps
(``register.refine``) polish it with a polynomial correction of degree ``refine_degree`` against the
forward lines interpolated to the backward lines' positions (``geometry.odd_at_even``, as ``phase``: without that the
scene's oblique vessels bias the match by about 0.1 px), and the backward lines are resampled once
at ``y + d`` (the same Keys kernel as ``phase``) and their intensities mapped onto the forward lines'
by the same monotone quantile map ``phase`` uses. Neither step can copy structure from the forward
lines, so the output passes the leak check by construction; ``displacement`` (t, Y, Xe) is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.geometry import odd_at_even, odd_matched
from orpam_pipeline.register.pcregnet import InferenceSettings, PCRegNetMethod, get_runner
from orpam_pipeline.register.phase import resample_columns
from orpam_pipeline.register.quantile_map import monotone_map, row_quantiles
from orpam_pipeline.settings import setting

SHIPPED_EOIR_CHECKPOINT = Path(__file__).resolve().parent.parent / "models" / "checkpoints" / "eoir-sim.pt"
QUANTILES = np.linspace(0.0, 1.0, 33)


@dataclass
class EOIRSettings(InferenceSettings):
    """:class:`InferenceSettings` with the shipped EOIR checkpoint and the test-time options."""

    checkpoint: str = setting(str(SHIPPED_EOIR_CHECKPOINT), "Checkpoint file (default: the shipped one).")
    line_profile: bool = setting(True, "Use the network's median displacement along the lines for every row "
                                       "(one profile per row; off keeps a field, e.g. for jitter between lines).")  # fmt: skip
    profile_degree: int = setting(5, "With line_profile: the median profile is replaced by its least-squares "
                                     "polynomial of this degree in Y (removes the network's row-to-row noise).")  # fmt: skip
    refine: int = setting(8, "Gauss-Newton steps that refine the displacement against the forward lines (0: the "
                             "network's alone).")  # fmt: skip
    refine_degree: int = setting(3, "Degree in Y of each refinement step's correction (a polynomial fitted to "
                                    "every row at once).")  # fmt: skip
    harmonise: bool = setting(True, "Map the registered lines' intensities onto the forward lines' (quantile map).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(int(self.refine), int(self.refine_degree), int(self.profile_degree)) < 0:
            raise OrpamError("refine, refine_degree and profile_degree must be 0 or more")


def line_profile(d: np.ndarray, degree: int) -> np.ndarray:
    """The field (t, Y, C) as one profile per frame: its median along the lines, fitted by a Legendre
    polynomial of ``degree`` in Y (least squares), the same value for every line."""
    median = np.median(d, axis=2).astype(np.float64)
    basis = np.polynomial.legendre.legvander(np.linspace(-1.0, 1.0, d.shape[1]), min(degree, d.shape[1] - 1))
    coef, *_ = np.linalg.lstsq(basis, median.T, rcond=None)
    return np.ascontiguousarray(np.broadcast_to((basis @ coef).T[..., None], d.shape), dtype=np.float32)


class EOIRMethod(PCRegNetMethod):
    """EOIR: encoder-only registration network, line-profile prior and test-time refinement."""

    name = "eoir"
    kind = "learned"
    description = "EOIR: shared 3-layer encoder, Hadamard/correlation flow estimators on a 3-level pyramid"
    displacement = "field"
    settings_type = EOIRSettings
    architecture = "eoir"
    first_line = "forward"

    def configure(self, height: int, width: int, first_line: str) -> None:
        self.first_line = first_line

    def apply(self, odd: np.ndarray, even: np.ndarray, plan_rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        runner = get_runner(s)
        if runner.arch != self.architecture:
            raise OrpamError(f"{s.checkpoint}: holds a {runner.arch} model; method {self.name} needs an "
                             f"{self.architecture} checkpoint")  # fmt: skip
        moving = np.asarray(even, dtype=np.float32)
        fixed = odd_matched(odd, moving.shape[-1]).astype(np.float32)
        _, fields = runner.run(moving, fixed, ("displacement",))
        d = fields["displacement"]
        if s.line_profile:
            d = line_profile(d, int(s.profile_degree))
        if s.refine:
            from orpam_pipeline.register.refine import refine_rows  # scipy: not at `orpam --help` time

            between = odd_at_even(odd, odd.shape[-1] + moving.shape[-1], self.first_line).astype(np.float32)  # type: ignore[arg-type]
            d = refine_rows(moving, between, d, int(s.refine), degree=int(s.refine_degree))
        rows = np.arange(moving.shape[1], dtype=np.float32)[None, :, None]
        registered = resample_columns(moving, rows + d)
        if s.harmonise:
            src, dst = row_quantiles(registered, QUANTILES), row_quantiles(fixed, QUANTILES)
            for t in range(registered.shape[0]):
                registered[t] = monotone_map(registered[t], src[t], dst[t])
        return registered, d.astype(np.float32)
