"""Watching it learn in a real browser (issue 25): a real `streamlit run app.py` in Debian's Chromium.

During a short run on the Train page the live map's picture changes at least three times before the run
ends; "One step" while paused advances the step by one; the replay's scrubber (plotly's slider, all
frames in the browser) changes the picture while the mouse is still down.
"""

import re
import time

import pytest

from tests.browser import browser_page, exceptions, replay_chart, settle, streamlit_server
from tests.test_browser import MISSING, pytestmark  # noqa: F401 - the same skip rule
from vae_core import Trainer, VAEConfig


@pytest.fixture(scope="module")
def folder(tmp_path_factory, mnist5k):
    if MISSING:
        pytest.fail(f"browser test cannot run in CI: {MISSING}")
    folder = tmp_path_factory.mktemp("film-checkpoints")
    cfg = VAEConfig(dataset="mnist5k", model="mlp", latent_dim=4, hidden_sizes=(128,), epochs=3, device="cpu")
    Trainer(cfg, bundle=mnist5k, out_path=folder / "film.pt").fit()
    return folder


@pytest.fixture(scope="module")
def served(folder):
    with streamlit_server(folder) as url, browser_page(height=1400) as page:
        yield url, page


# the first few points of a chart's codes, as drawn (their SVG transforms): the picture's signature
PICTURE_JS = """(title) => {
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const t = plot.querySelector('.gtitle');
    if (title && !(t && t.textContent.startsWith(title))) continue;
    if (!title && !plot.querySelector('.slider-container')) continue;
    const pts = [...plot.querySelectorAll('.scatterlayer .trace .point')].slice(0, 40);
    return pts.map(p => p.getAttribute('transform')).join(';');
  }
  return null;
}"""


# the line a run's end shows ("Saved NAME.pt (stopped after N epochs)"): case-sensitive, so that the page's
# "is saved and stopped" (how unwatched runs end) does not read as the run's end
SAVED = r"text=/^Saved \S+\.pt/"


def _picture(page, title: str | None = None) -> str | None:
    return page.evaluate(PICTURE_JS, title)


def _step(page) -> int | None:
    text = page.locator('[data-testid="stProgress"]').first.inner_text(timeout=5000)
    found = re.search(r"step (\d+)/", text)
    return int(found.group(1)) if found else None


def _choose(page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(
        has=page.locator("label", has_text=re.compile(f"^{re.escape(label)}$"))).first
    box.click()
    page.get_by_role("option", name=option, exact=True).click()


def test_the_replay_scrubber_changes_the_picture_before_release(served):
    url, page = served
    page.goto(f"{url}/train")
    settle(page)
    assert not exceptions(page)
    page.wait_for_selector(".js-plotly-plot .slider-container", timeout=60_000)
    chart = page.locator(".js-plotly-plot", has=page.locator(".slider-container")).first
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    rail = chart.locator(".slider-rail-rect").first.bounding_box()
    grip = chart.locator(".slider-grip-rect").first.bounding_box()
    start = _picture(page)
    assert start
    y = grip["y"] + grip["height"] / 2
    page.mouse.move(grip["x"] + grip["width"] / 2, y)
    page.mouse.down()
    seen = {start}
    for k in range(1, 11):  # toward the rail's left end: the first frames
        page.mouse.move(grip["x"] + grip["width"] / 2 - k * (grip["x"] - rail["x"]) / 10, y, steps=2)
        page.wait_for_timeout(120)
        seen.add(_picture(page))
    page.mouse.up()
    assert len(seen) >= 2, "the picture did not change while the scrubber was dragged"


def start_digits_run(page, url: str, epochs: int, query: str = "") -> None:
    """The Train page's form set to an MLP on digits for `epochs` epochs, then Start."""
    page.goto(f"{url}/train{query}")
    settle(page)
    _choose(page, "Dataset", "digits")
    _choose(page, "Model", "mlp")
    page.get_by_role("spinbutton", name="Epochs", exact=True).fill(str(epochs))
    page.get_by_role("button", name="Start training", exact=True).click()


def test_the_live_map_changes_during_a_run_and_one_step_advances_it(served):
    url, page = served
    start_digits_run(page, url, 400)  # a minute or so on digits
    page.wait_for_selector("text=Latent space, live", timeout=120_000)
    pictures, deadline = [], time.time() + 120
    while time.time() < deadline and len(pictures) < 4:
        picture = _picture(page, "Latent space, live")
        if picture and (not pictures or picture != pictures[-1]):
            pictures.append(picture)
        assert not page.locator(SAVED).count(), "the run ended first"
        page.wait_for_timeout(250)
    assert len(pictures) >= 4, f"the live map changed {len(pictures) - 1} times"
    assert not exceptions(page)

    # paused, one step at a time
    page.get_by_role("button", name="Pause", exact=True).click()
    page.wait_for_selector("text=status: paused", timeout=30_000)
    page.wait_for_timeout(2500)  # the step in flight when it paused is reported
    before = _step(page)
    picture = _picture(page, "Latent space, live")
    page.get_by_role("button", name="One step", exact=True).click()
    deadline = time.time() + 30
    while time.time() < deadline and _step(page) == before:
        page.wait_for_timeout(250)
    page.wait_for_timeout(2500)
    assert _step(page) == before + 1
    assert _picture(page, "Latent space, live") != picture  # the map shows the codes after the step
    page.locator('[data-testid="stMain"]').get_by_role("button", name="Stop", exact=True).click()  # not the header's
    page.wait_for_selector(SAVED, timeout=60_000)


# every animation frame while the replay plays: which film frame its title, its two pictures (layout
# images, by their data: URI) and its slider show; "blank" for a picture with no image in it
RECORD_JS = """() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
    p => p._fullLayout && (p._fullLayout.sliders || []).length);
  const frames = gd._transitionData._frames;
  const bySource = new Map(), byTitle = new Map();
  frames.forEach((f, k) => {
    byTitle.set(f.layout.title.text, k);  // (title_text in each frame before issue 33, too)
    (f.layout.images || []).forEach(im => { if (!bySource.has(im.source)) bySource.set(im.source, k); });
  });
  window.__replayLog = [];
  const look = () => {
    const title = (gd.querySelector('.gtitle') || {}).textContent;
    const pictures = [...gd.querySelectorAll('.imagelayer image')].map(i => {
      const href = i.getAttribute('href') || i.getAttribute('xlink:href');
      const r = i.getBoundingClientRect();
      return href && r.width > 20 && r.height > 10 ? (bySource.has(href) ? bySource.get(href) : 'other') : 'blank';
    });
    window.__replayLog.push({title: byTitle.has(title) ? byTitle.get(title) : title,
                             slider: gd._fullLayout.sliders[0].active, pictures});
    if (window.__replayLog.length < 20000) window.__replayRaf = requestAnimationFrame(look);
  };
  look();
  return frames.length;
}"""
STATE_JS = """() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
    p => p._fullLayout && (p._fullLayout.sliders || []).length);
  return [gd._fullLayout.sliders[0].active, gd.querySelector('.gtitle').textContent,
          gd._transitionData._frames.map(f => f.layout.title.text)];
}"""


def test_the_replay_plays_with_every_panel_painted_and_its_title_in_step_and_keys_step_it(served):
    """Issue 33: during Play the prior samples and reconstructions blanked out and the title ran a
    frame behind the slider. Sampled at every animation frame of a whole Play: both pictures are
    painted, and the title, the pictures and the slider show the same film frame (a redraw in flight
    may leave one sample between them); ← and → then step one frame."""
    url, page = served
    page.goto(f"{url}/train")
    settle(page)
    chart = replay_chart(page, timeout_ms=60_000)
    page.wait_for_timeout(500)
    n = page.evaluate(RECORD_JS)
    assert n >= 3
    chart.locator(".updatemenu-button", has_text="Play").click()
    deadline = time.time() + 90
    page.wait_for_timeout(1000)
    while time.time() < deadline and page.evaluate(STATE_JS)[0] != n - 1:
        page.wait_for_timeout(250)
    page.wait_for_timeout(1000)
    log = page.evaluate("() => { cancelAnimationFrame(window.__replayRaf); return window.__replayLog; }")
    assert len(log) >= 2 * n, f"{len(log)} samples"
    blank = [r for r in log if len(r["pictures"]) != 2 or "blank" in r["pictures"] or "other" in r["pictures"]]
    assert not blank, f"{len(blank)} of {len(log)} samples had a picture blank: {blank[:3]}"
    apart = [r for r in log if len({r["title"], r["slider"], *r["pictures"]}) > 1]
    assert len(apart) <= max(2, len(log) // 50), f"{len(apart)} of {len(log)} samples out of step: {apart[:5]}"
    # the frames shown, each with its own title: nearly all of them (a browser that shares its cores with
    # another test worker may paint a frame between two of the sampler's looks, most often Play's first)
    seen = {r["title"] for r in log}
    assert seen <= set(range(n)) and len(seen) >= n - max(2, n // 10), f"{len(seen)} of {n} frames seen"
    assert not exceptions(page)

    active, _, titles = page.evaluate(STATE_JS)
    assert active == n - 1
    for key, expected in (("ArrowLeft", n - 2), ("ArrowLeft", n - 3), ("ArrowRight", n - 2)):
        page.keyboard.press(key)
        deadline = time.time() + 10
        while time.time() < deadline and page.evaluate(STATE_JS)[:2] != [expected, titles[expected]]:
            page.wait_for_timeout(100)
        assert page.evaluate(STATE_JS)[:2] == [expected, titles[expected]], key
