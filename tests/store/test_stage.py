"""The one stage lifecycle: complete, resume, fresh or refused, from a stage's record."""

from __future__ import annotations

from pathlib import Path

import pytest

from orpam_pipeline.errors import StoreError
from orpam_pipeline.store.resume import fingerprint
from orpam_pipeline.store.stage import decide, recorded_chunk_frames, stage_state

PARAMS = {"method": "phase", "params": {"upsample": 10}, "shape": [4, 8, 8]}
FP = fingerprint(PARAMS)
WHERE = Path("/out/s/scan.zarr")


def _decide(record, params=PARAMS, overwrite=False, chunk=2):
    return decide("register", record, fingerprint(params), params, overwrite=overwrite, path=WHERE, chunk_frames=chunk)


def test_same_parameters_complete_resume_or_fresh_by_chunking():
    assert _decide(None) == "fresh" and stage_state(None) == "absent"
    done = {"complete": True, "fingerprint": FP, "params": PARAMS, "chunk_frames": 2}
    assert _decide(done) == _decide(done, chunk=3) == "complete" and stage_state(done) == "complete"
    partial = {**done, "complete": False}
    assert _decide(partial) == "resume" and stage_state(partial) == "partial"
    assert _decide(partial, chunk=3) == "fresh"
    assert _decide({k: v for k, v in partial.items() if k != "chunk_frames"}) == "fresh"  # chunking unknown


def test_other_parameters_are_refused_in_one_line_unless_overwrite():
    other = {**PARAMS, "method": "none"}
    record = {"complete": True, "fingerprint": FP, "params": PARAMS, "chunk_frames": 2}
    with pytest.raises(StoreError, match=r"already registered with different parameters \(method phase -> none\); "
                                         r"pass --overwrite to replace the registration") as err:  # fmt: skip
        _decide(record, other)
    assert "\n" not in str(err.value) and str(WHERE) in str(err.value)
    assert _decide(record, other, overwrite=True) == "fresh"
    with pytest.raises(StoreError, match="without a resumable register record; pass --overwrite"):
        _decide({})


def test_a_record_with_chunk_frames_among_its_parameters_counts_as_the_same():
    legacy = {**PARAMS, "chunk_frames": 4}
    record = {"complete": False, "fingerprint": fingerprint(legacy), "params": legacy}
    assert recorded_chunk_frames(record) == 4
    assert _decide(record, chunk=4) == "resume" and _decide(record, chunk=2) == "fresh"
    assert _decide({**record, "complete": True}, chunk=2) == "complete"
    with pytest.raises(StoreError, match=r"\(shape \[4, 8, 8\] -> \[5, 8, 8\]\)"):
        _decide(record, {**PARAMS, "shape": [5, 8, 8]})
