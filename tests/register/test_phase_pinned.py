"""`phase`'s first pass, plan and output are bit for bit those of the implementation before the speed-ups.

The digests were taken with the per-frame ``np.quantile``, per-call reference spectra and per-call
phase matrices (commit 22c45d5), on a scan without jumps and on one whose lines jump in every frame
(the block path), so every optimisation of the measure pass is checked against the old numbers.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from orpam_pipeline.geometry import split
from orpam_pipeline.register import get_method
from orpam_pipeline.simulate import SimulationParams, simulate

PINNED = {
    "plain": ["02955e9f20901c28", "53533f3af02c2a41", "1c3e5288ca589904", "139f40aaee197d05", 0],
    "jitter": ["fd2dff0d3c5ae3b3", "7c1f49d5d7da3a48", "1837a05008515fda", "73a8416a828d4cc8", 4],
}
EXTRA = {"plain": {}, "jitter": {"jitter_blocks": 3, "jitter_min": 3, "jitter_max": 8}}


def _short(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("label", sorted(PINNED))
def test_measure_plan_and_apply_match_the_old_implementation(label):
    sim = simulate(SimulationParams.randomised(7, frames=4, height=96, width=80, **EXTRA[label]))
    method = get_method("phase")
    method.configure(96, 80, "forward")
    odd, even = split(np.asarray(sim.frames, dtype=np.float32))
    stats = method.measure(odd, even)
    plan = method.plan(stats)
    reg, disp = method.apply(odd, even, plan)
    jumped = int((stats[:, -32:-16][:, 1] < method.n_moving).sum())
    assert [_short(stats), _short(plan), _short(reg), _short(disp), jumped] == PINNED[label]
