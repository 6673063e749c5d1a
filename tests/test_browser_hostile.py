"""Hostile input in a real browser (issue 32): a checkpoint upload whose name holds an address shows it as
plain text (no link), and a file over the upload limit that Streamlit's server would refuse with a raw 413
("AxiosError") is refused by the uploader itself, in one line that says the limit, with no message of the
previous upload beside it (that one was a toast, gone by itself). Skipped like tests/test_browser.py when
Chromium or Playwright is missing."""

from __future__ import annotations

import shutil

import pytest

from tests.browser import browser_page, exceptions, settle, streamlit_server
from tests.test_browser import IN_CI, MISSING

pytestmark = pytest.mark.skipif(MISSING is not None and not IN_CI, reason=str(MISSING))

SIDEBAR = '[data-testid="stSidebar"]'


def _upload(page, files: dict[str, bytes], which: int = 0) -> None:
    """Files into the sidebar's uploader `which` (0: a checkpoint; 1: a VAE trained elsewhere)."""
    page.locator(f'{SIDEBAR} input[type="file"]').nth(which).set_input_files(
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data} for name, data in files.items()])


@pytest.fixture(scope="module")
def served(tmp_path_factory, models):
    if MISSING:
        pytest.fail(f"browser test cannot run in CI: {MISSING}")
    tmp_path = tmp_path_factory.mktemp("hostile")
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shutil.copyfile(models["z4"], folder / models["z4"].name)
    env = {"STREAMLIT_SERVER_MAX_UPLOAD_SIZE": "3", "VAE_SCRATCH_DIR": str(tmp_path / "scratch"),
           "VAE_MAX_UPLOAD_MB": "", "VAE_EXPLORER_PUBLIC": ""}
    with streamlit_server(folder, env=env) as url, browser_page() as page:
        yield url, page


def test_an_onnx_pair_uploaded_together_is_imported_and_opened(served, tmp_path, mnist5k):
    """Issue 35: the sidebar takes a model trained elsewhere as its files, uploaded together: an ONNX pair
    is imported, selected and checked up; an incomplete set says what it needs, in one line."""
    from benchmarks.reference_vae import VAE as TutorialVAE
    from tests.test_importers import MANIFEST, _pair

    url, page = served
    folder = _pair(tmp_path / "pair", TutorialVAE().eval(), MANIFEST)
    page.goto(f"{url}/checkup")
    settle(page)
    page.locator(SIDEBAR).get_by_text("Open a checkpoint file").click()
    _upload(page, {"encoder.onnx": (folder / "encoder.onnx").read_bytes()}, which=1)
    page.get_by_text("upload encoder.onnx + decoder.onnx + manifest.json together").first.wait_for(timeout=30_000)
    _upload(page, {name: (folder / name).read_bytes() for name in ("encoder.onnx", "decoder.onnx", "manifest.json")},
            which=1)
    page.get_by_text("Imported it as", exact=False).first.wait_for(timeout=90_000)
    settle(page)
    sidebar = page.locator(SIDEBAR).inner_text()
    assert "imported (ONNX encoder/decoder pair)" in sidebar and "z=20" in sidebar
    assert "Test nELBO" in page.locator('[data-testid="stMain"]').inner_text() and exceptions(page) == []


def test_an_upload_over_the_limit_is_one_line_and_a_name_is_plain_text(served, models):
    url, page = served
    page.goto(url)
    settle(page)
    page.locator(SIDEBAR).get_by_text("Open a checkpoint file").click()
    _upload(page, {"www.evil.example me@evil.example.pt": models["z2"].read_bytes()})
    said = page.get_by_text("Opened www", exact=False).first
    said.wait_for(timeout=60_000)
    assert "Opened www.evil.example me@evil.example.pt as" in said.inner_text().replace("\u2060", "")
    assert page.locator("a", has_text="evil").count() == 0  # the name shown as typed: no link
    toast = page.locator('[data-testid="stToast"]')  # said once, and gone by itself
    assert toast.count() == 1
    toast.wait_for(state="detached", timeout=30_000)

    _upload(page, {"big.pt": b"\0" * (3 * 2**20)})  # at server.maxUploadSize: over what a request may carry
    uploader = page.locator(f'{SIDEBAR} [data-testid="stFileUploader"]').first
    page.wait_for_function("e => /or smaller/.test(e.innerText)", arg=uploader.element_handle(), timeout=30_000)
    settle(page)
    text = page.locator("body").inner_text()
    assert "AxiosError" not in text and "413" not in text
    assert "File must be 2.0MB or smaller." in uploader.inner_text()  # one line, the limit
    assert "Opened" not in text  # no message of the previous upload beside it
    assert exceptions(page) == []
