"""The batch page: OUT/index.json and OUT/index.html after `orpam run` (docs/batch.md)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import zarr
from PIL import Image
from typer.testing import CliRunner

from orpam_pipeline.cli.main import app
from orpam_pipeline.report.batch import INDEX_VERSION, THUMB_SIZE, THUMB_WINDOW, _shrink, thumbnail_png
from orpam_pipeline.simulate import SimulationParams, simulate
from orpam_pipeline.store.lock import lock_path

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("alpha", "beta", "gamma")
HOSTILE = "<img src=x onerror=alert(1)> & \"q\" 'r'"


def _scans(folder: Path, names: tuple[str, ...] = NAMES) -> Path:
    """Small simulated scans (4 frames of 48x64), one .npy per name."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        np.save(folder / f"{name}.npy", simulate(SimulationParams.randomised(20 + i, frames=4, height=48, width=64)).frames)
    return folder


def _run(*args: object) -> object:
    return CliRunner().invoke(app, ["run", *map(str, args), "--method", "phase"], catch_exceptions=False)


class _Page(HTMLParser):
    """The links, images, body rows and scan names of an index page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.images = 0
        self.rows = 0
        self.names: list[str] = []
        self._in_body = False
        self._in_name = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a":
            self.hrefs.append(found["href"] or "")
        elif tag == "img":
            self.images += 1
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows += 1
        self._in_name = found.get("class") == "scan"

    def handle_data(self, data: str) -> None:
        if self._in_name:
            self.names.append(data)
            self._in_name = False


def _page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT of one `orpam run` over three good scans and one corrupt file."""
    root = tmp_path_factory.mktemp("batch")
    src = _scans(root / "src")
    (src / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    res = _run(src, root / "out")
    assert res.exit_code == 1, res.output
    assert f"index: {root / 'out' / 'index.html'}" in res.output
    return root / "out"


def test_index_json_lists_every_scan_with_the_numbers_of_its_report(batch):
    index = json.loads((batch / "index.json").read_text())
    assert index["version"] == INDEX_VERSION
    assert index["counts"] == {"scans": 4, "ok": 3, "failed": 1, "busy": 0}
    rows = {r["name"]: r for r in index["scans"]}
    assert set(rows) == {*NAMES, "broken"}
    for name in NAMES:
        row, report = rows[name], json.loads((batch / name / "report.json").read_text())
        assert row["status"] == "ok" and row["error"] is None and row["report_html"] == f"{name}/report.html"
        metrics = row["metrics"]
        for key in ("method", "frames", "frame_shape", "tncc_merged", "tncc_odd", "tncg", "ncc_mean", "ssim_mean",
                    "displacement_px"):  # fmt: skip
            assert metrics[key] == report[key], key
        assert metrics["pixel_um"] == report["physical"]["pixel_um"]
        assert row["warnings"] == report["warnings"]
    failed = rows["broken"]
    assert failed["status"] == "failed" and failed["metrics"] is None and failed["report_html"] is None
    assert "broken.npy" in failed["error"]


def test_index_html_shows_every_scan_and_links_to_existing_reports(batch):
    html = (batch / "index.html").read_text(encoding="utf-8")
    page = _page(batch / "index.html")
    assert page.rows == 4 and page.images == 3 and sorted(page.names) == sorted((*NAMES, "broken"))
    assert sorted(page.hrefs) == [f"{n}/report.html" for n in NAMES]
    assert all((batch / unquote(h)).is_file() for h in page.hrefs)
    assert "broken.npy" in html and "http" not in html.replace(str(batch), "")  # nothing to fetch


def test_thumbnail_is_a_small_png_of_the_middle_frame_with_contrast(batch):
    store = batch / "alpha" / "scan.zarr"
    png = thumbnail_png(store)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = np.asarray(Image.open(io.BytesIO(png)))
    assert pixels.shape == (48, 64) and pixels.dtype == np.uint8
    merged = np.asarray(zarr.open_group(store, mode="r")["merged/0"][...])
    middle = merged[merged.shape[0] // 2].astype(np.float64)
    lo, hi = np.percentile(middle, THUMB_WINDOW)
    assert np.array_equal(pixels, np.round(np.clip((middle - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8))
    assert pixels.min() == 0 and pixels.max() == 255
    big = np.arange(1000 * 300, dtype=float).reshape(1000, 300)
    assert max(_shrink(big, THUMB_SIZE).shape) <= THUMB_SIZE


def test_a_rerun_on_a_subset_keeps_every_scan(tmp_path):
    src = _scans(tmp_path / "src")
    assert _run(src, tmp_path / "out").exit_code == 0
    res = _run(src / "beta.npy", tmp_path / "out")
    assert res.exit_code == 0, res.output
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [r["name"] for r in index["scans"]] == list(NAMES)
    assert [r["run_status"] for r in index["scans"]] == [None, "skipped", None]
    assert _page(tmp_path / "out" / "index.html").rows == 3


def test_a_busy_scan_is_listed_as_busy_with_its_earlier_report(tmp_path):
    src = _scans(tmp_path / "src", NAMES[:2])
    out = tmp_path / "out"
    assert _run(src, out).exit_code == 0
    lock_path(out / "alpha").write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "2024-01-01T00:00:00+00:00"}))
    res = _run(src, out)
    assert res.exit_code == 75, res.output
    rows = {r["name"]: r for r in json.loads((out / "index.json").read_text())["scans"]}
    assert rows["alpha"]["status"] == "busy" and "elsewhere" in rows["alpha"]["error"]
    assert rows["alpha"]["report_html"] == "alpha/report.html" and rows["beta"]["status"] == "ok"
    assert 'class="badge busy"' in (out / "index.html").read_text(encoding="utf-8")


def test_hostile_names_and_reasons_are_escaped(tmp_path):
    src = tmp_path / "src"
    _scans(src, (HOSTILE,))
    (src / f"{HOSTILE} broken.npy").write_bytes(b"not numpy")
    res = _run(src, tmp_path / "out")
    assert res.exit_code == 1, res.output
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "<img src=x" not in html and "onerror=alert(1)>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot; &#x27;r&#x27;" in html
    page = _page(tmp_path / "out" / "index.html")
    assert page.rows == 2 and page.images == 1
    assert all((tmp_path / "out" / unquote(h)).is_file() for h in page.hrefs) and len(page.hrefs) == 1
    rows = json.loads((tmp_path / "out" / "index.json").read_text())["scans"]
    assert {r["renamed_from"] for r in rows} == {HOSTILE, f"{HOSTILE} broken"}


def test_index_is_written_when_every_scan_failed(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bad.npy").write_bytes(b"x")
    assert _run(tmp_path / "src", tmp_path / "out").exit_code == 1
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [r["status"] for r in index["scans"]] == ["failed"]


def test_importing_the_package_or_asking_for_help_loads_no_matplotlib():
    code = textwrap.dedent("""
        import sys
        import orpam_pipeline, orpam_pipeline.report.batch
        from orpam_pipeline.cli.main import app
        try:
            app(["run", "--help"], standalone_mode=False)
        except SystemExit:
            pass
        print("matplotlib" in sys.modules)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-1] == "False"


def test_chromium_renders_a_row_for_every_scan(batch):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); the page is checked by parsing only")
    res = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          (batch / "index.html").as_uri()], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HOME": str(batch.parent)})  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    page = _Page()
    page.feed(res.stdout)
    assert page.rows == 4 and page.images == 3
    assert sorted(page.names) == sorted((*NAMES, "broken"))


def test_a_batch_run_without_figures_never_imports_matplotlib(tmp_path):
    src = _scans(tmp_path / "src", NAMES[:2])
    code = textwrap.dedent(f"""
        import sys
        from orpam_pipeline.cli.main import app
        try:
            app(["run", {str(src)!r}, {str(tmp_path / "out")!r}, "--figures", "none"], standalone_mode=False)
        except SystemExit:
            pass
        print("matplotlib" in sys.modules)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "index.html").is_file() and res.stdout.split()[-1] == "False"
