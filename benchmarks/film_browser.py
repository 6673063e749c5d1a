"""The film in headless Chromium (issue 25): the replay scrubber's input → paint time, and what a viewer
watching a run costs the server.

    python -m benchmarks --json --quick --only film      (with benchmarks.film's figures)

Scrubbing: a digits model trained for 40 epochs (41 frames) opened on the Train page ("How it learned");
the mouse drags plotly's slider grip along its rail and back, a move every 25 ms; each time the map's
picture changes, the time from the last mouse move before it to the animation frame that shows it
(target p95 <= 33 ms). Watching: a run started from the page (digits, MLP) while the page's live map and
charts refresh; the `streamlit run` process's CPU seconds per second meanwhile (the run itself trains in
a child process, not counted), and how often the live map's picture changed.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

from benchmarks.live_decode import _server_cpu_seconds

PROBE_JS = """() => {
  const plot = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.querySelector('.slider-container'));
  const sig = () => [...plot.querySelectorAll('.scatterlayer .trace .point')].slice(0, 40)
    .map(p => p.getAttribute('transform')).join(';');
  window.__scrub = {lat: [], pending: null, last: sig()};
  document.addEventListener('mousemove', () => { window.__scrub.pending = performance.now(); }, true);
  const loop = (now) => {
    const s = window.__scrub, current = sig();
    if (current !== s.last) {
      if (s.pending !== null) s.lat.push(now - s.pending);
      s.last = current; s.pending = null;
    }
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
}"""

LIVE_JS = """() => {
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const t = plot.querySelector('.gtitle');
    if (!(t && t.textContent.startsWith('Latent space, live'))) continue;
    return [...plot.querySelectorAll('.scatterlayer .trace .point')].slice(0, 40)
      .map(p => p.getAttribute('transform')).join(';');
  }
  return null;
}"""


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def film_browser(work: Path, watch_s: float = 20.0) -> dict:
    from tests.browser import browser_page, chromium_available, replay_chart, settle, streamlit_server
    from vae_core import Trainer, VAEConfig, load_dataset

    if not chromium_available():
        return {"film_scrub_ms_p95": None, "film_browser_note": "Chromium is not installed"}
    folder = work / "film-checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    cfg = VAEConfig(dataset="digits", model="mlp", latent_dim=4, hidden_sizes=(64,), epochs=40, device="cpu")
    Trainer(cfg, bundle=load_dataset("digits"), out_path=folder / "digits-film.pt").fit()
    out: dict = {}
    with streamlit_server(folder) as url, browser_page(height=1400) as page:
        port = int(url.rsplit(":", 1)[1])
        page.goto(f"{url}/train")
        settle(page)
        chart = replay_chart(page)
        page.wait_for_timeout(1000)
        page.evaluate(PROBE_JS)
        rail = chart.locator(".slider-rail-rect").first.bounding_box()
        grip = chart.locator(".slider-grip-rect").first.bounding_box()
        y = grip["y"] + grip["height"] / 2
        left, right = rail["x"] + 4, rail["x"] + rail["width"] - 4
        page.mouse.move(grip["x"] + grip["width"] / 2, y)
        page.mouse.down()
        moves = 0
        for sweep in range(2):  # right to left, then back
            for k in range(61):
                frac = k / 60 if sweep else 1 - k / 60
                page.mouse.move(left + frac * (right - left), y)
                moves += 1
                page.wait_for_timeout(25)
        page.mouse.up()
        page.wait_for_timeout(300)
        lat = page.evaluate("() => window.__scrub.lat")
        out.update(film_scrub_moves=moves, film_scrub_changes=len(lat),
                   film_scrub_ms_p50=_pct(lat, 0.5), film_scrub_ms_p95=_pct(lat, 0.95))

        # a viewer watching a run: the server's CPU while the live map refreshes
        page.goto(f"{url}/train")
        settle(page)
        for label, option in (("Dataset", "digits"), ("Model", "mlp")):
            page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(
                has=page.locator("label", has_text=re.compile(f"^{label}$"))).first.click()
            page.get_by_role("option", name=option, exact=True).click()
        page.get_by_role("spinbutton", name="Epochs", exact=True).fill("2000")
        page.get_by_role("button", name="Start training", exact=True).click()
        page.wait_for_selector("text=Latent space, live", timeout=120_000)
        page.wait_for_timeout(2000)
        cpu0, t0, pictures, last = _server_cpu_seconds(port), time.perf_counter(), 0, None
        while time.perf_counter() - t0 < watch_s:
            picture = page.evaluate(LIVE_JS)
            if picture and picture != last:
                pictures, last = pictures + 1, picture
            page.wait_for_timeout(200)
        wall = time.perf_counter() - t0
        out.update(film_viewer_server_cpu_cores=(_server_cpu_seconds(port) - cpu0) / wall,
                   film_live_map_changes_per_s=(pictures - 1) / wall, film_watch_s=wall)
        page.get_by_role("button", name="Stop", exact=True).click()
        page.wait_for_selector("text=Saved ", timeout=60_000)
    out["film_scrub_ms_mean"] = statistics.fmean(lat) if lat else None
    return out
