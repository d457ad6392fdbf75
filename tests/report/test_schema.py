"""docs/report.schema.json describes real reports (phase, a displacement field, ground truth, no displacement)
and is strict enough to refuse a wrong type, a missing key or an unknown one."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the test extra: pip install -e '.[test]'")

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", ["phase", "field", "truth", "none"])
def test_real_reports_validate(runs, validator, name) -> None:
    validator.validate(runs[name].report)


def test_every_key_a_report_writes_is_described(runs, validator) -> None:
    described = set(validator.schema["properties"])
    written = set().union(*(r.report for r in runs.values()))
    assert written == described


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.update(frames="8"),
        lambda r: r.update(ncc_mean="0.9"),
        lambda r: r["per_frame"]["ncc"].__setitem__(0, "x"),
        lambda r: r["per_frame"].pop("pair_ncc_odd"),
        lambda r: r["displacement_per_frame"].update(mean=1.0),
        lambda r: r["displacement_per_frame"].update(field="no"),
        lambda r: r["truth"].update(disp_rms_px=[0.1]),
        lambda r: r["physical"].update(space_unit="inch"),
        lambda r: r["warnings"].append({"code": 1, "message": "m", "stage": "frames"}),
        lambda r: r["figures"]["frames"].update(png=3),
        lambda r: r.pop("displacement_px"),
        lambda r: r.pop("truth"),
        lambda r: r.update(unknown_key=1),
    ],
)
def test_a_wrong_report_fails(runs, validator, change) -> None:
    report = copy.deepcopy(runs["truth"].report)
    validator.validate(report)
    change(report)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(report)


def test_a_two_thousand_frame_report_validates(long_run, validator) -> None:
    validator.validate(long_run.report)
