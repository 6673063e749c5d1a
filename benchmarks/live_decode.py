"""Live decoding in the browser: `python -m benchmarks.live_decode [--json] [--models A,B] [--sessions N]`.

For each shipped model it serves the app (`streamlit run app.py`, the model alone in a temporary
checkpoint folder) and drives Debian's Chromium with Playwright on the Sliders page:

- load: page navigation → the page's heading rendered → the first picture (the server's poster of
  the starting z, painted when the pad mounts) → the first frame decoded in the browser;
- one session: the mouse is pressed on the first pad slider of a dimension (then, as
  `attribute_slider`, on the first named attribute slider, "more like a 0") and moved back and forth at
  about 60 moves a second for `seconds` without releasing; frames decoded and painted per second, and
  input event → canvas painted (p50 / p95 ms, from the event's own timestamp), and the decode alone;
- N sessions at once (separate browser contexts, so separate Streamlit sessions), each dragging the
  same way: the same figures, pooled, and the CPU seconds the server process used during the drags
  (nothing should reach it before a release).

The figures come from the component's own counters (`window.__vaeLiveDecoder.stats`). Everything runs
on this machine: the server, the browsers and the decoder share its cores, so the load average is
printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_server

MODELS = ("mnist5k-conv-z16", "sprites-conv-z10-beta4")
RAW = ".vae-live.vae-live-sliders input[data-dim]"  # a latent dimension's slider
NAMED = ".vae-live.vae-live-sliders input[data-direction]"  # an attribute's ("more like a 0", "larger")
# the pad's counters (a traversal grid keeps counters too, without per-move latencies)
STATS = "() => Object.values(window.__vaeLiveDecoder?.stats || {}).find(s => s.latencies) || null"
MARKS = ("() => Object.fromEntries(performance.getEntriesByType('mark').filter(m => m.name.startsWith('vae-live:'))"
         ".map(m => [m.name.slice(9), m.startTime]))")  # the steps of loading the decoder (ui/live_decoder.js)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _server_cpu_seconds(port: int) -> float:
    """utime + stime of the `streamlit run` process listening on `port` (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"streamlit" in b" ".join(cmd) and str(port).encode() in cmd:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
    raise RuntimeError(f"no streamlit process on port {port}")


async def _open(browser, url: str, page=None) -> dict:
    """A new session on the Sliders page (or `page` reloaded): load timings, and the page ready to drag."""
    context = page.context if page else await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = page or await context.new_page()
    await page.goto(f"{url}/sliders")
    await page.wait_for_selector('[data-testid="stMainBlockContainer"] h2', timeout=120_000)
    rendered = await page.evaluate("() => performance.now()")
    await page.wait_for_function(f"() => ({STATS})()?.firstFrameAt", timeout=120_000)
    stats = await page.evaluate(STATS)
    marks = await page.evaluate(MARKS)
    # performance.now() counts from the navigation's start
    # the picture a person first sees: the server's poster, or a live frame if that came first
    picture = min(v for v in (stats.get("posterAt"), stats["firstFrameAt"]) if v is not None)
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:  # the pad mounts again with its named sliders once the data is encoded: drag that one
        await page.wait_for_selector(NAMED, timeout=30_000)
    except PlaywrightTimeout:
        pass  # a dataset with no labels or factors has none
    return {"context": context, "page": page, "rendered_ms": rendered, "mounted_ms": stats["mountedAt"],
            "first_frame_ms": stats["firstFrameAt"], "first_picture_ms": picture, "marks": marks}


async def _drag(page, seconds: float, which: str = RAW) -> dict:
    """Hold the mouse on the first pad slider of kind `which` (RAW: a dimension; NAMED: an attribute
    direction) and sweep it for `seconds`; the decoder's counters."""
    slider = page.locator(which).first
    await slider.scroll_into_view_if_needed()
    box = await slider.bounding_box()
    y = box["y"] + box["height"] / 2
    await page.evaluate(f"() => {{ const s = ({STATS})(); s.latencies.length = 0; s.decodeMs.length = 0; }}")
    frames0 = (await page.evaluate(STATS))["frames"]
    await page.mouse.move(box["x"] + box["width"] / 2, y)
    await page.mouse.down()
    t0, i = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        phase = (i % 120) / 60  # 0 → 2: left to right in one second, back in the next
        frac = phase if phase <= 1 else 2 - phase
        await page.mouse.move(box["x"] + box["width"] * (0.05 + 0.9 * frac), y)
        i += 1
        await asyncio.sleep(max(0.0, t0 + i / 60 - time.perf_counter()))  # paced at 60 moves a second
    elapsed = time.perf_counter() - t0
    await page.wait_for_timeout(100)  # the last decode lands
    stats = await page.evaluate(STATS)
    await page.mouse.up()
    return {"moves": i, "seconds": elapsed, "frames": stats["frames"] - frames0,
            "latencies": stats["latencies"], "decode_ms": stats["decodeMs"]}


def _summary(drags: list[dict]) -> dict:
    lat = [v for d in drags for v in d["latencies"]]
    dec = [v for d in drags for v in d["decode_ms"]]
    return {
        "fps": round(statistics.mean(d["frames"] / d["seconds"] for d in drags), 1),
        "moves_per_s": round(statistics.mean(d["moves"] / d["seconds"] for d in drags), 1),
        "input_to_paint_ms_p50": round(_percentile(lat, 0.5), 1),
        "input_to_paint_ms_p95": round(_percentile(lat, 0.95), 1),
        "decode_ms_p50": round(_percentile(dec, 0.5), 2),
        "decode_ms_p95": round(_percentile(dec, 0.95), 2),
    }


async def _measure(url: str, port: int, sessions: int, seconds: float) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            one = await _open(browser, url)
            solo = await _drag(one["page"], seconds)
            named = await _drag(one["page"], seconds, NAMED) if await one["page"].locator(NAMED).count() else None
            await one["page"].wait_for_timeout(1500)  # the release's rerun ends before the crowd starts
            crowd = [one] + [await _open(browser, url) for _ in range(sessions - 1)]
            cpu0 = _server_cpu_seconds(port)
            drags = await asyncio.gather(*(_drag(s["page"], seconds) for s in crowd))
            cpu = _server_cpu_seconds(port) - cpu0
            again = await _open(browser, url, one["page"])  # a second visit: the browser has cached the files
            return {
                "page_rendered_ms": round(one["rendered_ms"]),
                "component_mounted_ms": round(one["mounted_ms"]),
                "first_frame_ms": round(one["first_frame_ms"]),
                "first_frame_after_mount_ms": round(one["first_frame_ms"] - one["mounted_ms"]),
                "first_frame_after_heading_ms": round(one["first_frame_ms"] - one["rendered_ms"]),
                "first_picture_after_heading_ms": round(one["first_picture_ms"] - one["rendered_ms"]),
                "after_mount_ms": {k: round(v - one["mounted_ms"]) for k, v in one["marks"].items()},
                "second_visit_first_frame_after_mount_ms": round(again["first_frame_ms"] - again["mounted_ms"]),
                "one_session": _summary([solo]),
                **({"attribute_slider": _summary([named])} if named else {}),
                f"{sessions}_sessions": {**_summary(list(drags)), "server_cpu_s_during_drags": round(cpu, 2),
                                         "drag_seconds_each": seconds},
            }
        finally:
            await browser.close()


def run(models: tuple[str, ...] = MODELS, sessions: int = 6, seconds: float = 5.0,
        checkpoints: Path = ROOT / "checkpoints") -> dict:
    out = {"benchmark": "live_decode", "page": "sliders", "browser": CHROMIUM, "cpu_count": os.cpu_count(),
           "load_average_before": [round(v, 2) for v in os.getloadavg()], "models": {}}
    for name in models:
        source = checkpoints / f"{name}.pt"
        if not source.exists():
            raise SystemExit(f"{source} not found: the benchmark decodes the shipped models")
        with tempfile.TemporaryDirectory() as folder:
            shutil.copyfile(source, Path(folder) / source.name)
            with streamlit_server(Path(folder)) as url:
                port = int(url.rsplit(":", 1)[1])
                out["models"][name] = asyncio.run(_measure(url, port, sessions, seconds))
    out["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.live_decode", description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="shipped model names, comma-separated")
    ap.add_argument("--sessions", type=int, default=6, help="browser sessions dragging at once (default 6)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each drag (default 5)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    result = run(tuple(m for m in args.models.split(",") if m), args.sessions, args.seconds)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"Live decoding on the Sliders page · {result['cpu_count']} CPUs · load {result['load_average_before']}")
    for name, m in result["models"].items():
        print(f"\n{name}: heading rendered {m['page_rendered_ms']} ms, pad mounted {m['component_mounted_ms']} ms, "
              f"first decoded frame {m['first_frame_ms']} ms (+{m['first_frame_after_mount_ms']} ms after mount; "
              f"+{m['second_visit_first_frame_after_mount_ms']} ms on a second visit); after the heading: "
              f"first picture (the server's poster) +{m['first_picture_after_heading_ms']} ms, first live frame "
              f"+{m['first_frame_after_heading_ms']} ms")
        for label, s in ((k, v) for k, v in m.items() if isinstance(v, dict) and "fps" in v):
            extra = f", server CPU {s['server_cpu_s_during_drags']} s" if "server_cpu_s_during_drags" in s else ""
            print(f"  {label:>12}: {s['fps']} fps ({s['moves_per_s']} moves/s), input→paint p50 "
                  f"{s['input_to_paint_ms_p50']} ms p95 {s['input_to_paint_ms_p95']} ms, decode p50 "
                  f"{s['decode_ms_p50']} ms{extra}")


if __name__ == "__main__":
    sys.exit(main())
