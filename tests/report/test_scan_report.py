"""report.json's new keys against independent computations, and the figure files beside the report."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import zarr
from PIL import Image

from orpam_pipeline.evaluate.scoring import score_store
from orpam_pipeline.report.scan_report import write_report
from orpam_pipeline.store.layout import DISPLACEMENT, get_array, has_array

FIGURES = {
    "phase": {"frames", "crop", "displacement", "metrics_per_frame"},
    "field": {"frames", "crop", "displacement", "truth", "metrics_per_frame"},
    "truth": {"frames", "crop", "displacement", "truth", "metrics_per_frame"},
    "none": {"frames", "crop", "metrics_per_frame"},
}


@pytest.mark.parametrize("name", ["phase", "field", "truth"])
def test_displacement_per_frame_equals_numpy_over_the_stored_array(runs, name) -> None:
    run = runs[name]
    d = np.asarray(get_array(zarr.open_group(run.store, mode="r"), DISPLACEMENT)[...], dtype=np.float64)
    assert (d.ndim == 3) == (name == "field")
    flat = d.reshape(d.shape[0], -1)
    per = run.report["displacement_per_frame"]
    assert per["field"] == (d.ndim == 3)
    for key, ref in (("mean", flat.mean(axis=1)), ("min", flat.min(axis=1)), ("max", flat.max(axis=1)),
                     ("std", flat.std(axis=1))):  # fmt: skip
        assert np.allclose(per[key], ref, rtol=0, atol=1e-9), key
    assert run.report["frame_shown"] == d.shape[0] // 2


def test_no_displacement_no_per_frame_displacement_and_no_truth(runs) -> None:
    report = runs["none"].report
    assert not has_array(zarr.open_group(runs["none"].store, mode="r"), DISPLACEMENT)
    assert "displacement_per_frame" not in report and "displacement_px" not in report
    assert report["truth"] is None and runs["phase"].report["truth"] is None


@pytest.mark.parametrize("name", ["field", "truth"])
def test_truth_scores_are_evaluates_scores(runs, name) -> None:
    run = runs[name]
    truth = run.report["truth"]
    assert truth["note"] is None and truth["store"].endswith(".zarr")
    ref = score_store(run.store, truth["store"])
    for key in ("ncc_truth", "psnr_truth", "disp_rms_px"):
        assert truth[key] == pytest.approx(ref[key], rel=1e-12)
    assert truth["per_frame"]["ncc_truth"] == pytest.approx(ref["per_frame"]["ncc_truth"], rel=1e-12)
    assert 0.9 < truth["ncc_truth"] <= 1 and truth["disp_rms_px"] < 1.0


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_is_written_as_png_and_svg_and_listed(runs, name) -> None:
    run = runs[name]
    assert set(run.report["figures"]) == FIGURES[name]
    html = (run.folder / "report.html").read_text(encoding="utf-8")
    for fig, entry in run.report["figures"].items():
        assert entry["png"] == f"figures/{fig}.png" and entry["svg"] == f"figures/{fig}.svg"
        png = (run.folder / entry["png"]).read_bytes()
        assert Image.open(io.BytesIO(png)).format == "PNG"
        assert "<svg" in (run.folder / entry["svg"]).read_text(encoding="utf-8")
        assert f'id="figure-{fig}"' in html
    assert sorted(p.name for p in (run.folder / "figures").iterdir()) == sorted(
        f"{f}.{ext}" for f in FIGURES[name] for ext in ("png", "svg"))


def test_physical_units_reach_the_report(runs) -> None:
    physical = runs["phase"].report["physical"]
    assert physical == {"pixel_um": {"y": 2.5, "x": 4.0}, "frame_interval_s": 0.05, "space_unit": "micrometer",
                        "time_unit": "second"}  # fmt: skip
    assert runs["none"].report["physical"]["space_unit"] == "pixel"


def test_a_new_report_removes_figures_it_no_longer_draws(runs) -> None:
    run = runs["none"]
    figures = run.folder / "figures"
    (figures / "displacement.png").write_bytes(b"old")
    (figures / ".crop.png.partial-12345").write_bytes(b"killed")
    (figures / "notes.txt").write_text("mine")
    report = write_report(run.store)[0]
    assert set(report["figures"]) == FIGURES["none"]
    assert sorted(p.name for p in figures.iterdir()) == sorted(
        [f"{f}.{ext}" for f in FIGURES["none"] for ext in ("png", "svg")] + ["notes.txt"])
    assert json.loads((run.folder / "report.json").read_text())["figures"] == report["figures"]


def test_two_thousand_frames_are_binned(long_run) -> None:
    report = long_run.report
    assert report["frames"] == 2000 and len(report["displacement_per_frame"]["mean"]) == 2000
    assert set(report["figures"]) == FIGURES["phase"]
    svg = (long_run.folder / "figures" / "metrics_per_frame.svg").read_text(encoding="utf-8")
    assert len(svg) < 2_000_000
