"""report.html rendered by a real browser (headless Chromium): every figure is in the DOM, the page is not blank.

Skipped when no Chromium is installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium/chromium-browser/google-chrome on PATH")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-extensions"]  # fmt: skip


def _browser(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    res = subprocess.run([BROWSER, *FLAGS, *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def test_browser_dom_holds_every_figure(runs, tmp_path) -> None:
    run = runs["truth"]
    dom = _browser("--dump-dom", (run.folder / "report.html").as_uri(), cwd=tmp_path).stdout
    for name in run.report["figures"]:
        assert f'id="figure-{name}"' in dom, name
    images = re.findall(r'<img [^>]*src="data:image/png;base64,', dom)
    assert len(images) == 2
    assert len(re.findall(r"<svg[ >]", dom)) == 3
    assert re.findall(r'(?:src|href|url)\s*[=(]\s*"?(?:https?:)?//', dom) == []


def test_browser_screenshot_is_not_blank(runs, tmp_path) -> None:
    shot = tmp_path / "report.png"
    _browser(f"--screenshot={shot}", "--window-size=1400,2400", (runs["field"].folder / "report.html").as_uri(),
             cwd=tmp_path)  # fmt: skip
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2400, 1400)
    assert (pixels < 128).mean() > 0.05 and pixels.std() > 30
