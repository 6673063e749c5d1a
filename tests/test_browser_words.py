"""Words that match the picture (issue 33, point 6), in a real browser: How it works step 2 says its
rows run from the most KL to the least, so the nats drawn on the rows (this image's KL per dimension)
run down the chart, and step 5's bars and step 3's equations follow the same order."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.browser import ROOT, browser_page, exceptions, settle, streamlit_server
from tests.test_browser import IN_CI, MISSING

pytestmark = pytest.mark.skipif(MISSING is not None and not IN_CI, reason=str(MISSING))
SHIPPED = ROOT / "checkpoints" / "mnist5k-conv-z16.pt"  # the model of the report: 16 dimensions


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if MISSING:
        pytest.fail(f"browser test cannot run in CI: {MISSING}")
    folder = tmp_path_factory.mktemp("words-checkpoints")
    shutil.copyfile(SHIPPED, folder / SHIPPED.name)
    with streamlit_server(folder) as url, browser_page() as page:
        yield url, page


def test_how_it_works_step_2_rows_run_from_this_images_most_kl_to_its_least(served):
    url, page = served
    for index in (0, 7, 42):  # a few test images: the model's average order is not any one image's
        page.goto(f"{url}/how-it-works?model={SHIPPED.stem}&input={index}")
        settle(page)
        root = page.locator(".vae-live-explain").first
        root.wait_for(timeout=60_000)
        page.wait_for_function("r => Number(r.dataset.frames) > 0 && r.dataset.rows", arg=root.element_handle(),
                               timeout=60_000)
        rows = json.loads(root.get_attribute("data-rows"))  # [dimension, nats] as drawn, top row first
        assert len(rows) == 16 and sorted(d for d, _ in rows) == list(range(16))
        shown = [kl for _, kl in rows]
        assert shown == sorted(shown, reverse=True), f"test image {index}: rows drawn with KL {shown}"
        words = root.locator("section.vae-ex-step[data-step='2']").inner_text()
        assert "most KL for this image" in words
        # step 3 writes z = μ + σ·ε out for the top rows, in the same order
        equation = root.locator("section.vae-ex-step[data-step='3']").inner_text()
        firsts = re.findall(r"^(z\d+) = ", equation, flags=re.M)[:4]
        assert firsts == [f"z{d}" for d, _ in rows[:4]], (firsts, rows[:4])
    assert exceptions(page) == []
