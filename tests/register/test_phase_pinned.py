"""`phase`'s first pass, plan and output against the implementation before the speed-ups.

The output (registered lines and displacement) is pinned bit for bit by digests taken with the
per-frame ``np.quantile``, per-call reference spectra and per-call phase matrices (commit 22c45d5),
on a scan without jumps and on one whose lines jump in every frame (the block path). The first pass
and the plan are pinned as numbers (``tests/data/phase_pinned.npz``, written by the implementation
before the window transforms became band-limited matrix products, issue 18): those products add in
another order, so the float64 window shifts may differ in the last bits, never by more than 1e-9.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from orpam_pipeline.geometry import split
from orpam_pipeline.register import get_method
from orpam_pipeline.simulate import SimulationParams, simulate

PINNED = {
    "plain": ["1c3e5288ca589904", "139f40aaee197d05", 0],
    "jitter": ["1837a05008515fda", "73a8416a828d4cc8", 4],
}
EXTRA = {"plain": {}, "jitter": {"jitter_blocks": 3, "jitter_min": 3, "jitter_max": 8}}
NUMBERS = Path(__file__).parents[1] / "data" / "phase_pinned.npz"


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
    assert [_short(reg), _short(disp), jumped] == PINNED[label]
    with np.load(NUMBERS) as old:
        np.testing.assert_allclose(stats, old[f"{label}_stats"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(plan, old[f"{label}_plan"], rtol=1e-9, atol=1e-9)
