"""Watching it learn in a real browser (issue 25): a real `streamlit run app.py` in Debian's Chromium.

During a short run on the Train page the live map's picture changes at least three times before the run
ends; "One step" while paused advances the step by one; the replay's scrubber (plotly's slider, all
frames in the browser) changes the picture while the mouse is still down.
"""

import re
import time

import pytest

from tests.browser import browser_page, exceptions, settle, streamlit_server
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


def start_digits_run(page, url: str, epochs: int) -> None:
    """The Train page's form set to an MLP on digits for `epochs` epochs, then Start."""
    page.goto(f"{url}/train")
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
        assert not page.locator("text=Saved ").count(), "the run ended first"
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
    page.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_selector("text=Saved ", timeout=60_000)
