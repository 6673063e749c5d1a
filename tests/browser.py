"""A real `streamlit run app.py` and Debian's Chromium driven by Playwright, shared by the
browser smoke test and the screenshot tour (`python -m tests.tour`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# URL path -> the page's heading ("" is the default page)
PAGES = {"": "Latent map", "how-it-works": "How it works", "sliders": "Sliders", "interpolate": "Interpolate",
         "generate": "Generate", "anomalies": "Anomalies", "beta_study": "β study",
         "representations": "Representations", "checkup": "Check-up", "train": "Train"}


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(checkpoint_dir: Path, timeout: float = 90.0, script: Path = ROOT / "app.py",
                     env: dict[str, str] | None = None):
    """Serve app.py (or another Streamlit `script`) on a free localhost port, with `env` added to this
    process's environment; yields the base URL."""
    port = free_port()
    env = {**os.environ, "VAE_CHECKPOINT_DIR": str(checkpoint_dir), "PYTHONPATH": str(ROOT), **(env or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"streamlit did not start on port {port}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def settle(page, timeout_ms: int = 120_000) -> None:
    """Wait until the app has rendered and its script has been idle for a moment."""
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h2, [data-testid="stMainBlockContainer"] h1',
                           timeout=timeout_ms)
    deadline, idle = time.time() + timeout_ms / 1000, 0
    while time.time() < deadline and idle < 4:
        busy = page.locator('[data-testid="stStatusWidget"], [data-testid="stSpinner"]').count()
        idle = 0 if busy else idle + 1
        page.wait_for_timeout(250)
    page.wait_for_timeout(500)  # images and charts finish drawing


def screenshot(page, path: str) -> None:
    """The whole page: Streamlit scrolls inside its main area, so grow the viewport to fit it first."""
    size = page.viewport_size
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll("
                           "'[data-testid=stMain], [data-testid=stAppViewContainer], section')]"
                           ".map(e => e.scrollHeight))")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height) + 40)})
    page.wait_for_timeout(600)
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size(size)


def replay_chart(page, timeout_ms: int = 120_000):
    """The Train page's replay (the plotly chart with a slider), scrolled into view."""
    page.wait_for_selector(".js-plotly-plot .slider-container", timeout=timeout_ms)
    chart = page.locator(".js-plotly-plot", has=page.locator(".slider-container")).first
    chart.scroll_into_view_if_needed()
    return chart


def exceptions(page) -> list[str]:
    return [e.inner_text()[:300] for e in page.locator('[data-testid="stException"]').all()]


# what sticks out of a phone's screen: every element drawn inside the page's main area (components'
# shadow roots too) whose box passes the viewport's right edge, unless a box that scrolls sideways on
# purpose (a table) holds it
_OVERFLOWING = """(width) => {
  const out = [];
  const scrolls = (e) => {
    for (let p = e.parentElement || e.getRootNode().host; p; p = p.parentElement || p.getRootNode().host) {
      const s = getComputedStyle(p);
      if (s.overflowX === "auto" || s.overflowX === "scroll" || s.overflowX === "hidden") return true;
    }
    return false;
  };
  const walk = (root) => {
    for (const e of root.querySelectorAll("*")) {
      if (e.shadowRoot) walk(e.shadowRoot);
      const r = e.getBoundingClientRect();
      if (r.width > 0 && r.height > 0 && r.right > width + 1 && !scrolls(e)) {
        out.push(`${e.tagName.toLowerCase()}.${String(e.className).split(" ")[0]} ends at ${Math.round(r.right)} px`);
      }
    }
  };
  const main = document.querySelector('[data-testid="stMain"]');
  if (main) walk(main);
  return out;
}"""


def overflowing(page, width: int) -> list[str]:
    """The elements of the page's main area that pass `width` (a phone's 390 px), as one line each."""
    return page.evaluate(_OVERFLOWING, width)
