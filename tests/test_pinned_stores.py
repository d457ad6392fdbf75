"""Every method writes, bit for bit, the arrays and report numbers it wrote before the refactor."""

from __future__ import annotations

import json

import pytest

from tests.pinned import DIGESTS, METHOD_OPTIONS, run_method

PINNED = json.loads(DIGESTS.read_text())


@pytest.mark.parametrize("label", sorted(METHOD_OPTIONS))
def test_store_matches_pinned_digests(tmp_path, label):
    assert run_method(tmp_path, label) == PINNED[label]
