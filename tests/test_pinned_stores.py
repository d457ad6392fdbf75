"""Every method writes the arrays and report numbers it wrote before: within a tolerance anywhere, bit for bit
on a platform whose digests are recorded (tests/pinned.py says why both)."""

from __future__ import annotations

import pytest

from tests.pinned import METHOD_OPTIONS, digests, platform_key, recorded_digests, reference_differences, run_method


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cache: dict[str, tuple] = {}

    def get(label: str) -> tuple:
        if label not in cache:
            cache[label] = run_method(tmp_path_factory.mktemp("pinned"), label)
        return cache[label]

    return get


@pytest.mark.parametrize("label", sorted(METHOD_OPTIONS))
def test_store_matches_reference_numbers(runs, label):
    assert reference_differences(label, *runs(label)) == []


@pytest.mark.parametrize("label", sorted(METHOD_OPTIONS))
def test_store_matches_digests_bit_for_bit(runs, label):
    recorded = recorded_digests()
    if recorded is None or label not in recorded:
        pytest.skip(f"no digests recorded for this platform ({platform_key()}); the reference numbers still hold")
    assert digests(*runs(label)) == recorded[label]


def test_reference_catches_small_changes(runs):
    """The tolerance absorbs another CPU's rounding (a few 1e-7), not a change of results."""
    arrays, report = runs("phase")
    nudged = {**arrays, "displacement": arrays["displacement"] + 0.01}
    assert any(m.startswith("displacement:") for m in reference_differences("phase", nudged, report))
    scaled = {**arrays, "registered_even": arrays["registered_even"] * (1 + 1e-4)}
    assert any(m.startswith("registered_even:") for m in reference_differences("phase", scaled, report))
    swapped = {**arrays, "merged": arrays["merged"][::-1].copy()}
    assert any(m.startswith("merged:") for m in reference_differences("phase", swapped, report))
    changed = {**report, "tncc_merged": report["tncc_merged"] + 1e-4}
    assert reference_differences("phase", arrays, changed) == ["report.tncc_merged: " +
                                                               f"{changed['tncc_merged']!r} != {report['tncc_merged']!r}"]
