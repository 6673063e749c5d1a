"""Panning a large latent map in the browser: `python -m benchmarks.map_pan [--points 100000,20000] [--json]`.

For each size, a Streamlit script draws the Latent map's own figure (`ui.map_figure.scatter_figure`:
one WebGL scatter, ten categories) of that many seeded synthetic points; headless Chromium (Debian's,
software WebGL: no GPU) loads it, picks plotly's Pan tool, and drags the map with the mouse held down
for `seconds`. A requestAnimationFrame counter in the page measures what the person sees: frames per
second during the drag and the p50 / p95 interval between frames (a frame waits while plotly redraws).
Also the time from navigation to the chart drawn. Everything runs on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from tests.browser import CHROMIUM, browser_page, streamlit_server

SCRIPT = '''
import numpy as np, streamlit as st
from ui.map_figure import scatter_figure
n = int(st.query_params.get("n", "1000"))
rng = np.random.default_rng(0)
centres = rng.normal(scale=4, size=(10, 2))
labels = rng.integers(10, size=n)
xy = (centres[labels] + rng.normal(size=(n, 2))).astype(np.float32)
st.plotly_chart(scatter_figure(xy, labels, [str(d) for d in range(10)], "label"), key="map")
'''
RANGE = """() => { const l = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot')._fullLayout;
  return [l.xaxis.range, l.yaxis.range]; }"""
FRAMES = """() => { const t = []; window.__frames = t;
  const tick = (now) => { t.push(now); if (t.length < 100000) requestAnimationFrame(tick); };
  requestAnimationFrame(tick); }"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def pan(page, url: str, n: int, seconds: float) -> dict:
    t0 = time.perf_counter()
    page.goto(f"{url}/?n={n}")
    plot = page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot', timeout=180_000)
    page.wait_for_selector('[data-testid="stPlotlyChart"] canvas', timeout=60_000)
    drawn = time.perf_counter() - t0
    plot.hover()
    page.locator('[data-testid="stPlotlyChart"] .modebar-btn[data-val="pan"]').first.click()
    box = plot.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    before = page.evaluate(RANGE)
    page.evaluate(FRAMES)
    page.mouse.down()
    start, moves = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:  # a slow circle, as a person drags a map about
        moves += 1
        page.mouse.move(cx + 120 * ((moves % 60) / 60 - 0.5), cy + 60 * (((moves // 60) % 2) - 0.5))
    page.mouse.move(cx + 40, cy + 25)  # the circle can end where it began (no net pan): end it off its start
    page.mouse.up()
    frames = page.evaluate("() => window.__frames")
    if page.evaluate(RANGE) == before:
        raise RuntimeError("the drag did not pan the map (its axis ranges did not change)")
    gaps = [b - a for a, b in zip(frames, frames[1:], strict=False)]
    span = (frames[-1] - frames[0]) / 1000 if len(frames) > 1 else float("nan")
    return {"points": n, "chart_drawn_s": round(drawn, 2), "pan_fps": round((len(frames) - 1) / span, 1),
            "frame_interval_ms_p50": round(_percentile(gaps, 0.5), 1),
            "frame_interval_ms_p95": round(_percentile(gaps, 0.95), 1), "mouse_moves": moves}


def run(sizes: tuple[int, ...], seconds: float, page=None) -> dict:
    """Figures for each map size; in a new headless Chromium, or on `page` (a Playwright page) if given."""
    out = {"benchmark": "map_pan", "browser": f"{CHROMIUM} (software WebGL)", "cpu_count": os.cpu_count(),
           "load_average_before": [round(v, 2) for v in os.getloadavg()], "maps": []}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "map_pan_page.py"
        script.write_text(SCRIPT)
        with streamlit_server(Path(tmp), script=script) as url:
            if page is not None:
                out["maps"] = [pan(page, url, n, seconds) for n in sizes]
            else:
                with browser_page(1200, 900) as fresh:
                    out["maps"] = [pan(fresh, url, n, seconds) for n in sizes]
    out["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.map_pan", description=__doc__.split("\n")[0])
    ap.add_argument("--points", default="1000,20000,100000", help="map sizes, comma-separated")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of each drag (default 4)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    result = run(tuple(int(n) for n in args.points.split(",")), args.seconds)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"Panning the latent map · {result['cpu_count']} CPUs · load {result['load_average_before']}")
    for m in result["maps"]:
        print(f"  {m['points']:>7,} points: drawn {m['chart_drawn_s']} s after navigation; pan {m['pan_fps']} fps, "
              f"frame interval p50 {m['frame_interval_ms_p50']} ms p95 {m['frame_interval_ms_p95']} ms")


if __name__ == "__main__":
    sys.exit(main())
