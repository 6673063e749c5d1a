"""Start-up: the CLI's `--help`, `train` to its first logged step, the Train page's Start to its run's
first logged step, and `streamlit run app.py` to the first page rendered in headless Chromium
(Debian's, driven by Playwright as the browser tests do); then the map on screen, on that first visit
and when the Latent map page is opened again from the sidebar of the open app (the lesser of two).
A newcomer's first start is timed too: with numba's disk cache empty (`NUMBA_CACHE_DIR` pointed at an
empty folder, as after a fresh install), `streamlit run` to the first page usable (heading, map and
sidebar), and, on another fresh server, to the Sliders page's first frame decoded in the browser.

`train` is watched through its progress bar on stderr: the first update after 0 is the first logged
point (1/20 of an epoch, a few dozen steps in). The server is timed from just before
`streamlit run` starts: tests/browser.py polls its health endpoint every 0.5 s, so up to 0.5 s of the
first-paint figure is polling.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.machine import ROOT, median_run
from benchmarks.training import ours_args

HEADING = '[data-testid="stMainBlockContainer"] h1, [data-testid="stMainBlockContainer"] h2'
MAP = '[data-testid="stPlotlyChart"] .js-plotly-plot'
TQDM_STEP = re.compile(rb"\|\s*(\d+)/\d+ \[")


def cli_startup(repeats: int) -> dict:
    help_run, walls = median_run(["-m", "vae_core", "--help"], repeats)
    return {"cli_startup_s": help_run.wall_s, "cli_startup_walls_s": walls,
            "cli_help_peak_rss_mb": help_run.peak_rss_mb}


def train_first_step(data_root: Path, out: Path) -> float:
    """Seconds from starting `python -m vae_core train` (on the IDX files) to its first logged step."""
    args = ours_args(data_root, 1, "cpu", out, quiet=False)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = b""
    try:
        while chunk := proc.stderr.read1(4096):
            seen = seen[-200:] + chunk
            if any(int(n) > 0 for n in TQDM_STEP.findall(seen)):
                return time.perf_counter() - t0
        raise RuntimeError(f"train ended before its first step: {seen.decode(errors='replace')[-400:]}")
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


def app_train_first_step(out: Path) -> float:
    """Seconds from the Train page's Start (a `ProcessTrainingJob`, the app's run in a fresh child
    interpreter, with the page's default settings: mnist5k, the conv model) to its first logged step."""
    from vae_core.config import VAEConfig
    from vae_core.job import ProcessTrainingJob

    job = ProcessTrainingJob(VAEConfig(epochs=1), out).start()
    try:
        while (snap := job.snapshot()).step == 0:
            if snap.status in ("failed", "stopped", "finished"):
                raise RuntimeError(f"the app's run ended before its first step: {snap.status} {snap.message}")
            time.sleep(0.01)
        return snap.elapsed_s
    finally:
        job.stop()
        job.join(30)


def child_pids(pid: int | str = "self") -> list[int]:
    """Process ids of `pid`'s children (this process's by default), from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # a thread that ended since the folder was listed
            continue
    return found


def children_running(marker: bytes) -> list[int]:
    """Process ids of this process's children whose command line holds `marker`."""
    pids = []
    for pid in child_pids():
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:  # a child that ended meanwhile
            continue
    return pids


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def first_paint(checkpoints: Path) -> dict:
    """`streamlit run app.py` serving `checkpoints`: seconds to the first page's heading and to its
    map on screen, and the server's peak memory once the page has settled."""
    from tests.browser import browser_page, settle, streamlit_server

    with browser_page() as page:  # the browser is started before the clock
        t0 = time.perf_counter()
        with streamlit_server(checkpoints) as url:
            ready = time.perf_counter() - t0
            page.goto(url)
            opened = time.perf_counter()
            page.wait_for_selector(HEADING, timeout=120_000)
            painted = time.perf_counter()
            page.wait_for_selector(MAP, timeout=120_000)
            mapped = time.perf_counter()
            settle(page)
            rss = max((_peak_rss_mb(pid) for pid in children_running(b"streamlit")), default=None)
            navigated = [map_after_navigation(page) for _ in range(2)]
    return {"first_paint_s": painted - t0, "server_ready_s": ready, "map_on_screen_s": mapped - opened,
            "map_after_navigation_s": min(navigated), "map_after_navigation_runs_s": navigated,
            "first_page_server_peak_rss_mb": rss}


def map_after_navigation(page) -> float:
    """In an open app, from the Sliders page (settled): seconds from a click on "Latent map" in the
    sidebar to the map on screen."""
    from tests.browser import settle

    page.get_by_role("link", name="Sliders").click()
    page.wait_for_selector(MAP, state="detached", timeout=60_000)
    settle(page)
    t0 = time.perf_counter()
    page.get_by_role("link", name="Latent map").click()
    page.wait_for_selector(MAP, timeout=120_000)
    seconds = time.perf_counter() - t0
    settle(page)
    return seconds


SIDEBAR_MODEL = '[data-testid="stSidebar"] [data-testid="stSelectbox"]'


def first_paint_cold_numba(checkpoints: Path) -> dict:
    """A fresh install's first minute: each server starts with an empty numba cache, so anything that
    compiles UMAP's code (tens of seconds here) before the page is up shows in these figures. Seconds
    from `streamlit run` to the Latent map usable (heading, map, sidebar), and on a second fresh server
    to the Sliders page's first live frame (a deep link); and how many files numba wrote meanwhile."""
    import tempfile

    from benchmarks.live_decode import STATS
    from tests.browser import browser_page, settle, streamlit_server

    out = {}
    with browser_page() as page:
        for path, key in (("", "first_paint_cold_numba_s"), ("sliders", "sliders_first_frame_cold_numba_s")):
            with tempfile.TemporaryDirectory() as cache:
                t0 = time.perf_counter()
                with streamlit_server(checkpoints, env={"NUMBA_CACHE_DIR": cache}) as url:
                    page.goto(f"{url}/{path}")
                    if path:
                        page.wait_for_function(f"() => ({STATS})()?.firstFrameAt", timeout=120_000)
                    else:
                        for selector in (HEADING, MAP, SIDEBAR_MODEL):
                            page.wait_for_selector(selector, timeout=120_000)
                    out[key] = time.perf_counter() - t0
                    settle(page)
                    out[f"{key[:-2]}_files"] = sum(1 for p in Path(cache).rglob("*") if p.is_file())
    return out


DEEP_LINKS = ("sliders", "how-it-works", "train")  # a fresh server each: a bookmarked lesson's first request


def deep_links(checkpoints: Path, paths: tuple[str, ...] = DEEP_LINKS) -> dict:
    """For each path, a freshly started server's first request: seconds from the browser asking for
    the page to the app's navigation and the page's heading on screen (the worst in
    `deep_link_heading_s`)."""
    from tests.browser import browser_page, streamlit_server

    seconds = {}
    with browser_page() as page:
        for path in paths:
            with streamlit_server(checkpoints) as url:
                t0 = time.perf_counter()
                page.goto(f"{url}/{path}")
                page.wait_for_selector('[data-testid="stSidebarNav"] a', timeout=60_000)
                page.wait_for_selector(HEADING, timeout=60_000)
                seconds[path] = time.perf_counter() - t0
    return {"deep_link_heading_s": max(seconds.values()), "deep_link_heading_by_page_s": seconds}
