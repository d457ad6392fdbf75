"""Trivial baselines every comparison includes (docs/evaluation.md)."""

from __future__ import annotations

import numpy as np

from orpam_pipeline.geometry import odd_matched
from orpam_pipeline.register.base import RegistrationMethod


class NoRegistration(RegistrationMethod):
    """The backward lines as measured: what the data look like without correction."""

    name = "none"
    kind = "baseline"
    description = "identity: backward lines as measured"

    def apply(self, odd, even, plan_rows):
        return np.array(even, dtype=np.float32, copy=True), None


class CopyOdd(RegistrationMethod):
    """Puts the forward lines in the backward slots: perfect paper metrics, no registration at all."""

    name = "copy-odd"
    kind = "baseline"
    description = "forward lines copied into the backward slots (exposes metrics that reward copying)"

    def apply(self, odd, even, plan_rows):
        return odd_matched(odd, even.shape[-1]).astype(np.float32), None
