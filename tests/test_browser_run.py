"""A training run's life in a real browser (issue 32, points 1 and 2): a real `streamlit run app.py` in
Debian's Chromium. Pause pressed right after Start (while the run still loads) shows `paused` with
exactly the paused controls (Resume, One step, One epoch, Stop; not Pause), and they stay right when the
run becomes ready; a reload (F5), and the same address in a new tab, find the run again: its status,
progress and Stop."""

import re
import time

import pytest

from tests.browser import browser_page, exceptions, settle, streamlit_server
from tests.test_browser import MISSING, pytestmark  # noqa: F401 - the same skip rule
from tests.test_browser_film import SAVED, _step, start_digits_run

CONTROLS = ("Pause", "Resume", "One step", "One epoch", "Stop")
PAUSED = {"Pause": False, "Resume": True, "One step": True, "One epoch": True, "Stop": True}
RUNNING = {"Pause": True, "Resume": False, "One step": False, "One epoch": False, "Stop": True}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if MISSING:
        pytest.fail(f"browser test cannot run in CI: {MISSING}")
    folder = tmp_path_factory.mktemp("run-checkpoints")
    with streamlit_server(folder) as url, browser_page(height=1200) as page:
        yield url, page


def _enabled(page) -> dict[str, bool]:
    main = page.locator('[data-testid="stMain"]')
    return {name: main.get_by_role("button", name=name, exact=True).first.is_enabled(timeout=30_000)
            for name in CONTROLS}


def _status(page) -> str | None:
    text = page.locator('[data-testid="stMain"]').inner_text(timeout=10_000)
    found = re.search(r"status: (\w+)", text)
    return found.group(1) if found else None


def _wait_for_controls(page, wanted: dict[str, bool], timeout_s: float = 20.0) -> None:
    deadline, seen = time.time() + timeout_s, None
    while time.time() < deadline:
        seen = _enabled(page)
        if seen == wanted:
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"controls {seen}, wanted {wanted} (status {_status(page)})")


def test_pause_at_once_after_start_and_a_reload_find_the_run_with_its_controls(served):
    url, page = served
    start_digits_run(page, url, 2000)
    main = page.locator('[data-testid="stMain"]')
    main.get_by_role("button", name="Pause", exact=True).wait_for(timeout=60_000)
    main.get_by_role("button", name="Pause", exact=True).click()  # at once: the run still loads
    page.wait_for_selector("text=status: paused", timeout=30_000)
    _wait_for_controls(page, PAUSED)
    # the run becomes ready while paused: it stays paused, and the controls stay those of a paused run
    deadline = time.time() + 120
    while time.time() < deadline and "step 0/0" in page.locator('[data-testid="stProgress"]').inner_text():
        page.wait_for_timeout(500)
    page.wait_for_timeout(2500)
    assert _status(page) == "paused"
    _wait_for_controls(page, PAUSED)
    assert "ETA" not in page.locator('[data-testid="stProgress"]').inner_text()  # nothing moves
    assert _step(page) == 0  # paused before its first step: none was taken

    main.get_by_role("button", name="One step", exact=True).click()
    deadline = time.time() + 60
    while time.time() < deadline and (_step(page) or 0) < 1:
        page.wait_for_timeout(250)
    assert _step(page) == 1
    _wait_for_controls(page, PAUSED)

    main.get_by_role("button", name="Resume", exact=True).click()
    _wait_for_controls(page, RUNNING)
    deadline = time.time() + 60
    while time.time() < deadline and (_step(page) or 0) < 5:
        page.wait_for_timeout(250)
    address = page.url
    assert "run=" in address

    page.reload()  # F5 during the run: the page finds it again
    settle(page)
    assert _status(page) in ("running", "paused")
    assert (_step(page) or 0) >= 5
    _wait_for_controls(page, RUNNING)
    assert not exceptions(page)

    other = page.context.browser.new_page(viewport=page.viewport_size)  # the same address in a new tab
    try:
        other.goto(address)
        settle(other)
        _wait_for_controls(other, RUNNING)
        other.locator('[data-testid="stMain"]').get_by_role("button", name="Stop", exact=True).click()
        other.wait_for_selector(SAVED, timeout=60_000)
    finally:
        other.close()
    assert not exceptions(page)


def test_presenter_view_space_pauses_and_resumes_and_the_right_arrow_takes_one_step(served):
    """Issue 33: Train's presenter view (?present=1) is worked from the keyboard: Space pauses a running
    run and resumes a paused one, → takes exactly one step while paused; the live map is drawn large."""
    url, page = served
    start_digits_run(page, url, 400, query="?present=1")
    page.wait_for_selector("text=Latent space, live", timeout=120_000)
    _wait_for_controls(page, RUNNING, timeout_s=60)
    assert page.locator('[data-testid="stHeader"]').is_hidden()  # the projector gets the whole screen
    heights, deadline = [], time.time() + 30  # the map's fragment redraws it every second: measure one drawn
    while time.time() < deadline and not heights:
        box = page.locator(".js-plotly-plot", has_text="Latent space, live").first.bounding_box()
        heights += [box["height"]] if box else []
        page.wait_for_timeout(250)
    assert heights and heights[0] >= 700, heights
    page.locator("body").press(" ")
    page.wait_for_selector("text=status: paused", timeout=30_000)
    _wait_for_controls(page, PAUSED)
    before, deadline = None, time.time() + 30
    while time.time() < deadline:  # the progress line settles on the step the run paused at
        page.wait_for_timeout(1500)
        now = _step(page)
        if now == before:
            break
        before = now
    page.locator("body").press("ArrowRight")
    deadline = time.time() + 60
    while time.time() < deadline and _step(page) == before:
        page.wait_for_timeout(250)
    assert _step(page) == before + 1
    _wait_for_controls(page, PAUSED)
    page.locator("body").press(" ")
    _wait_for_controls(page, RUNNING)
    assert "present=1" in page.url
    page.locator('[data-testid="stMain"]').get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_selector(SAVED, timeout=60_000)
    assert not exceptions(page)
