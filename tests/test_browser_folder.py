"""What a person sees of a model trained on their own folder of transparent icons (issue 32): a real
`streamlit run app.py` in Debian's Chromium shows each icon as the model saw it, composited onto the
model's background (white by default), not dropped onto black."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.browser import browser_page, exceptions, settle, streamlit_server
from tests.test_browser import MISSING, pytestmark  # noqa: F401 - skipped as the other browser tests are
from tests.test_own_folder import SIDE, icon_folder, tiny
from vae_core import Trainer


@pytest.fixture(scope="module")
def icons_served(tmp_path_factory):
    """A server whose one model was trained on a folder of 20 transparent icons (white background, the default)."""
    if MISSING:
        pytest.fail(f"browser test cannot run in CI: {MISSING}")
    tmp = tmp_path_factory.mktemp("icons")
    folder = icon_folder(tmp / "data" / "icons", n=20, colour=(220, 60, 30))
    models = tmp / "checkpoints"
    models.mkdir()
    Trainer(tiny(f"folder:{folder}", epochs=2), out_path=models / "icons-mlp.pt").fit()
    with streamlit_server(models, env={"VAE_ALLOWED_DATA_ROOTS": str(tmp / "data"),
                                       "VAE_SCRATCH_DIR": str(tmp / "scratch")}) as url, browser_page() as page:
        yield url, page


def test_a_transparent_icon_is_shown_on_the_models_background(icons_served):
    url, page = icons_served
    page.goto(f"{url}/anomalies")
    settle(page)
    assert exceptions(page) == []
    first = page.locator('[data-testid="stMainBlockContainer"] [data-testid="stImage"] img').first
    first.scroll_into_view_if_needed()
    shown = np.asarray(Image.open(io.BytesIO(first.screenshot())).convert("RGB"), dtype=np.int16)
    h, w, _ = shown.shape
    assert h >= 2 * SIDE and w >= 2 * SIDE  # upscaled on screen
    corners = shown[[2, 2, -3, -3], [2, -3, 2, -3]]  # transparent in every icon
    assert (corners >= 245).all(), corners  # white, as the model saw it (black before)
    reddish = (shown[..., 0] - shown[..., 2] > 80).mean()
    assert 0.05 < reddish < 0.6  # and the icon's own colour on it
