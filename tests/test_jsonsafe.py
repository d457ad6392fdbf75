"""json_safe turns report and evaluation records into plain JSON values."""

from __future__ import annotations

import json
import math

import numpy as np

from orpam_pipeline.jsonsafe import json_safe


def test_json_safe_expected_values() -> None:
    record = {
        "nan": float("nan"),
        "inf": np.float32(np.inf),
        "-inf": -math.inf,
        "f32": np.float32(0.5),
        "f64": np.float64(1.25),
        "i64": np.int64(7),
        "u8": np.uint8(255),
        "flag": np.bool_(True),
        "bool": False,
        "none": None,
        "text": "a",
        "int": 3,
        1: {"nested": (np.float64(np.nan), [np.int32(2), (3.5,)])},
        2.5: [],
    }
    expected = {
        "nan": None,
        "inf": None,
        "-inf": None,
        "f32": 0.5,
        "f64": 1.25,
        "i64": 7,
        "u8": 255,
        "flag": True,
        "bool": False,
        "none": None,
        "text": "a",
        "int": 3,
        "1": {"nested": [None, [2, [3.5]]]},
        "2.5": [],
    }
    safe = json_safe(record)
    assert safe == expected
    assert [type(safe[k]) for k in ("f32", "f64", "i64", "u8", "flag")] == [float, float, int, int, bool]
    assert json.loads(json.dumps(safe, allow_nan=False)) == expected


def test_json_safe_copies_and_leaves_plain_values_alone() -> None:
    inner = [1.0, 2.0]
    record = {"a": inner}
    safe = json_safe(record)
    assert safe == record and safe["a"] is not inner
    for value in (None, True, 0, -5, 1.5, "x"):
        assert json_safe(value) == value and type(json_safe(value)) is type(value)
