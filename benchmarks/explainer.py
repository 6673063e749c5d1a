"""How it works, drawn with a pen: `python -m benchmarks.explainer [--json] [--models A,B] [--seconds S]`.

For each shipped model it serves the app on a fresh server (the model alone in a temporary checkpoint
folder) and drives Debian's Chromium with Playwright on the How it works page:

- load: the page's heading rendered → the first live frame (encoder and decoder run in the browser);
- drawing: the mouse is pressed on the drawing canvas and moved around a loop at about 60 moves a
  second for `seconds` without lifting; frames per second (each a full pass: the input shrunk, the
  encoder, one batched decoder run of z and the strip's 8 draws, every picture and the loss repainted)
  and pen event → everything repainted (p50 / p95 ms, from the event's own timestamp), with the CPU
  seconds the server used meanwhile (nothing reaches it before the pen is lifted);
- Resample ε: click → z and the pictures repainted, p50 / p95 over `resamples` clicks.

The figures come from the component's own counters (`window.__vaeLiveDecoder.stats`). The server, the
browser and the models share this machine's cores, so the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.live_decode import _percentile, _server_cpu_seconds
from tests.browser import ROOT, browser_page, settle, streamlit_server

MODELS = ("mnist5k-conv-z16", "sprites-conv-z10-beta4")
STATS = "() => window.__vaeLiveDecoder?.stats?.['hiw']"
HEADING = '[data-testid="stMainBlockContainer"] h2'
DRAW = """(pad, seconds) => new Promise((done) => {
  const r = pad.getBoundingClientRect(), cx = r.left + r.width / 2, cy = r.top + r.height / 2, rad = r.width * 0.3;
  const at = (t) => ({ clientX: cx + rad * Math.cos(Math.PI * t), clientY: cy + 1.3 * rad * Math.sin(Math.PI * t),
    pointerId: 1, pointerType: "pen", bubbles: true, buttons: 1 });
  pad.dispatchEvent(new PointerEvent("pointerdown", at(0)));
  const t0 = performance.now();
  let moves = 0;
  const timer = setInterval(() => {
    const t = (performance.now() - t0) / 1000;
    if (t >= seconds) {
      clearInterval(timer);
      pad.dispatchEvent(new PointerEvent("pointerup", at(t)));
      done(moves);
      return;
    }
    pad.dispatchEvent(new PointerEvent("pointermove", at(t)));
    moves += 1;
  }, 1000 / 60);
})"""


def _ms(values: list[float], q: float) -> float | None:
    v = _percentile(values, q)
    return None if v is None else round(v, 1)


def measure(page, url: str, port: int, seconds: float, resamples: int) -> dict:
    page.goto(f"{url}/how-it-works")
    page.wait_for_selector(HEADING, timeout=120_000)
    rendered = page.evaluate("() => performance.now()")
    page.wait_for_function(f"() => ({STATS})()?.firstFrameAt", timeout=120_000)
    first, mounted = (page.evaluate(STATS)[k] for k in ("firstFrameAt", "mountedAt"))
    settle(page)
    pad = page.locator('canvas[aria-label="Draw here"]')
    pad.scroll_into_view_if_needed()
    stats = page.evaluate(STATS)
    frames0, n0 = stats["frames"], len(stats["latencies"])
    cpu0 = _server_cpu_seconds(port)
    # a pen held down and moved around a loop at 60 moves a second, dispatched in the page itself (the
    # driver's own mouse moves come at ~20 a second here): PointerEvents as a pen's, timestamped by the browser
    moves = pad.evaluate(DRAW, seconds)
    cpu = _server_cpu_seconds(port) - cpu0
    stats = page.evaluate(STATS)
    latencies = stats["latencies"][n0:]
    drawn = stats["frames"] - frames0
    resample = page.get_by_role("button", name="Resample ε")
    root = page.locator(".vae-live-explain").first
    n1 = len(stats["latencies"])
    for _ in range(resamples):
        z = root.get_attribute("data-z")
        resample.click()
        page.wait_for_function("([r, z]) => r.dataset.z !== z", arg=[root.element_handle(), z], timeout=10_000)
    clicks = page.evaluate(STATS)["latencies"][n1:]  # click event → everything repainted, in the page
    page.get_by_role("link", name="Sliders").click()  # and back, in the open app: a server that has run it
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h2:has-text("Sliders")', timeout=60_000)
    settle(page)
    frames = page.evaluate(STATS)["frames"]
    page.get_by_role("link", name="How it works").click()
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h2:has-text("How it works")', timeout=60_000)
    again = page.evaluate("() => performance.now()")
    page.wait_for_function(f"f => ({STATS})()?.frames > f", arg=frames, timeout=60_000)
    again_frame = page.evaluate("() => performance.now()")
    return {
        "first_live_frame_after_heading_ms": round(first - rendered),
        "mounted_after_heading_ms": round(mounted - rendered),
        # opened again from the sidebar (measured by polling, so up to a frame late)
        "second_visit_first_frame_after_heading_ms": round(again_frame - again),
        "drawing": {"seconds": seconds, "moves_per_s": round(moves / seconds, 1), "fps": round(drawn / seconds, 1),
                    "pen_to_paint_ms_p50": _ms(latencies, 0.5), "pen_to_paint_ms_p95": _ms(latencies, 0.95),
                    "server_cpu_s": round(cpu, 2)},
        "resample_to_paint_ms_p50": _ms(clicks, 0.5), "resample_to_paint_ms_p95": _ms(clicks, 0.95),
    }


def run(models: tuple[str, ...] = MODELS, seconds: float = 5.0, resamples: int = 20,
        checkpoints: Path = ROOT / "checkpoints") -> dict:
    out = {"benchmark": "explainer", "page": "how-it-works", "cpu_count": os.cpu_count(),
           "load_average_before": [round(v, 2) for v in os.getloadavg()], "models": {}, "errors": {}}
    with browser_page(1920, 1080) as page:
        for name in models:
            source = checkpoints / f"{name}.pt"
            try:
                with tempfile.TemporaryDirectory() as folder:
                    shutil.copyfile(source, Path(folder) / source.name)
                    with streamlit_server(Path(folder)) as url:
                        out["models"][name] = measure(page, url, int(url.rsplit(":", 1)[1]), seconds, resamples)
            except Exception as e:  # noqa: BLE001 - one model's failure is reported, the others still measured
                out["errors"][name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    out["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.explainer", description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="shipped model names, comma-separated")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the drawing (default 5)")
    ap.add_argument("--resamples", type=int, default=20, help="Resample clicks timed (default 20)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    result = run(tuple(m for m in args.models.split(",") if m), args.seconds, args.resamples)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"How it works, drawn · {result['cpu_count']} CPUs · load {result['load_average_before']}")
        for name, m in result["models"].items():
            d = m["drawing"]
            print(f"{name}: first live frame {m['first_live_frame_after_heading_ms']} ms after the heading (fresh "
                  f"server; {m['second_visit_first_frame_after_heading_ms']} ms opened again); drawing "
                  f"{d['fps']} fps ({d['moves_per_s']} moves/s), pen → paint p50 {d['pen_to_paint_ms_p50']} ms p95 "
                  f"{d['pen_to_paint_ms_p95']} ms, server CPU {d['server_cpu_s']} s; Resample → paint p50 "
                  f"{m['resample_to_paint_ms_p50']} ms p95 {m['resample_to_paint_ms_p95']} ms")
        for name, error in result["errors"].items():
            print(f"{name}: FAILED {error}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
