"""The report in a real browser: Debian's headless Chromium (installed by .ci/run), driven by
selenium through Debian's chromedriver — no browser is downloaded, and the browser's own
network features are off. The page must load with no console message at all, every image
must decode, every audio element must know its duration, and a screenshot must not be
blank.

``SEQGAN_UPDATE_SCREENSHOT=1`` also saves the screenshot as ``docs/report.png`` (the
README's picture); ``SEQGAN_REPORT_HTML=FILE`` checks (and shoots) that report instead of
the test run's, e.g. ``runs/folk/report.html`` after ``seqgan run``.
"""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from report_runs import music_run

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).is_file()), None)
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None)
DOCS = Path(__file__).resolve().parents[1] / "docs"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--window-size=1280,1500")

WAIT_FOR_MEDIA = """
const done = arguments[arguments.length - 1];
const imgs = [...document.images].map(i => i.decode().then(() => i.naturalWidth, () => -1));
const auds = [...document.querySelectorAll('audio')].map(a => new Promise(r => {
  if (a.readyState >= 1) return r(a.duration);
  a.addEventListener('loadedmetadata', () => r(a.duration), {once: true});
  a.addEventListener('error', () => r(-1), {once: true});
  a.load();
}));
Promise.all([Promise.all(imgs), Promise.all(auds)]).then(done);
"""


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("Chromium or chromedriver is missing (CI installs them: apt-get install chromium "
                    "chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must never download a driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def test_the_report_renders_in_chromium(browser, tmp_path_factory):
    given = os.environ.get("SEQGAN_REPORT_HTML")
    page = Path(given).resolve() if given else music_run(tmp_path_factory)[0] / "report.html"
    browser.get(page.as_uri())
    assert browser.title.startswith("seqgan report: ")
    widths, durations = browser.execute_async_script(WAIT_FOR_MEDIA)
    assert len(widths) >= 3 and all(w > 0 for w in widths), widths  # curves, animation, rolls
    if not given:
        assert len(durations) == 8
    assert all(d is not None and 0 < d < 1e6 for d in durations), durations  # finite and > 0
    assert browser.get_log("browser") == []  # no console errors, warnings or messages at all
    shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    assert shot.size[0] >= 1000
    pixels = np.asarray(shot, dtype=np.float64)
    assert pixels.std() > 20 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # not blank
    if os.environ.get("SEQGAN_UPDATE_SCREENSHOT") == "1":
        DOCS.mkdir(exist_ok=True)
        shot.save(DOCS / "report.png", optimize=True)
