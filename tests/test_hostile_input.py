"""Hostile input (issue 32): long names, markup in names and addresses, server paths in refusals,
files a browser session leaves behind, uploads over the limit, warnings on valid addresses. Bad input
is one line on the page, never a traceback; user text is shown as typed; nothing outlives the session
that made it."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import tomllib
from streamlit.elements.lib import policies

from tests.test_app import by_label
from tests.test_app_inspect import opened
from ui.display import WORD_JOINER, plain
from vae_core import VAEError
from vae_core.hosting import confine_path

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("default_limits")


class _Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        if "missing ScriptRunContext" not in record.getMessage():  # AppTest's own calls outside a script run
            self.records.append(record)


@pytest.fixture
def warnings_logged(monkeypatch):
    """Every warning Streamlit's loggers (which do not propagate) and the root logger record."""
    recorder = _Recorder()
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
                                       if name.startswith("streamlit")]
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)  # said once per process otherwise
    monkeypatch.setattr(policies, "runtime", SimpleNamespace(exists=lambda: True))  # checked as in a server
    for logger in loggers:
        logger.addHandler(recorder)
    yield recorder.records
    for logger in loggers:
        logger.removeHandler(recorder)


# --- 16: no page logs a warning on a valid address

VALID_ADDRESSES = {
    "map": {"split": "train", "colour": "reconstruction error", "view": "Thumbnails", "point": "5"},
    "map-tsne": {"method": "tsne", "perplexity": "20"},  # a method's parameter, set from the address
    "how-it-works": {"input": "3", "beta": "2"},
    "sliders": {"z": "0.5,-1.25,2,0"},
    "interpolate": {"a": "3", "b": "42", "path": "linear", "steps": "7"},
    "generate": {"seed": "17", "t": "0.5", "n": "12"},
    "anomalies": {"score": "recon", "threshold": "90"},
}


@pytest.mark.parametrize("page", list(VALID_ADDRESSES))
def test_no_page_logs_a_warning_on_a_valid_address(checkpoint_dir, models, page, warnings_logged):
    at = opened(checkpoint_dir, models["z4"], page=None if page.startswith("map") else page, **VALID_ADDRESSES[page])
    assert not at.error and not [c for c in at.caption if c.value.startswith("Ignored")]
    assert [r.getMessage() for r in warnings_logged] == []


# --- 10: a name too long for the file system is one line; so is any error a page did not expect


def test_typed_folders_are_capped_in_length_before_the_file_system_sees_them(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for text, words in (("x" * 300, "a folder name is at most 255 bytes"), ("é" * 200, "at most 255 bytes"),
                        ("a/" * 600, "a folder path is at most 1,024 characters (this one has 1,200)")):
        with pytest.raises(VAEError) as err:
            confine_path(text, [data])
        assert words in str(err.value) and len(str(err.value)) < 120
    assert confine_path("a/" * 100, [data]) == data.joinpath(*["a"] * 100)  # long, but what file systems take


def _scored_folder(at, text: str):
    at.text_input(key="anom_folder").input(text).run()
    assert not at.exception, [e.value for e in at.exception]
    return [e.value for e in at.error]


def test_a_300_character_folder_name_is_one_line_on_the_anomalies_and_train_pages(checkpoint_dir, models, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("VAE_ALLOWED_DATA_ROOTS", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    at = opened(checkpoint_dir, models["z4"], page="anomalies")
    (error,) = _scored_folder(at, "x" * 300)
    assert "a folder name is at most 255 bytes" in error and "Traceback" not in error and len(error) < 150

    at.switch_page("pages/train.py").run()
    by_label(at.main.selectbox, "Dataset").set_value("folder")
    by_label(at.text_input, "Folder or data root").set_value("y" * 300)
    by_label(at.button, "Start training").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "train_job" not in at.session_state
    assert ["a folder name is at most 255 bytes" in e.value for e in at.error] == [True]


def test_a_300_character_upload_name_is_cut_in_its_message(checkpoint_dir, models):
    from tests.test_app import _upload

    at = opened(checkpoint_dir, models["z4"])
    _upload(at, "n" * 300 + ".pt", b"not a checkpoint")
    (error,) = [e.value for e in at.sidebar.error]
    assert "is not a readable checkpoint" in error and "n" * 59 + "…" in error and len(error) < 200


def test_an_error_no_page_expected_is_one_line_without_its_message(checkpoint_dir, models, monkeypatch):
    import ui.loaders

    def fails(*args, **kwargs):
        raise OSError(36, "File name too long", "/srv/secret/" + "x" * 300)

    monkeypatch.delenv("VAE_DEBUG_ERRORS")  # as a visitor sees it (tests/conftest.py sets it)
    at = opened(checkpoint_dir, models["z4"], page="anomalies")
    monkeypatch.setattr(ui.loaders, "anomaly_scores", fails)
    at.run()
    assert not at.exception  # no traceback on the page
    assert [e.value for e in at.error] == [
        "This page stopped on an unexpected error (OSError); the server's log has the details."]
    assert at.sidebar.selectbox  # the sidebar is still drawn
    shown = "\n".join(str(getattr(e, "value", "")) for e in at.main)
    assert "/srv/secret" not in shown


def test_streamlits_own_error_details_are_off(checkpoint_dir, models, monkeypatch):
    """What escapes the app's guard (a widget's callback) shows no traceback: the exception's type only,
    and in the public demo not even that."""
    import streamlit as st

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "type"
    monkeypatch.delenv("VAE_DEBUG_ERRORS")  # as a visitor sees it (tests/conftest.py sets it)
    monkeypatch.setenv("VAE_EXPLORER_PUBLIC", "1")
    opened(checkpoint_dir, models["z4"])
    assert st.get_option("client.showErrorDetails") == "none"
    monkeypatch.delenv("VAE_EXPLORER_PUBLIC")
    opened(checkpoint_dir, models["z4"])
    assert st.get_option("client.showErrorDetails") == "type"  # as the server was started (config.toml)


# --- 12: refusals name the allowed folders without their server paths


def test_a_refusal_names_the_allowed_roots_by_the_project_or_their_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("VAE_ALLOWED_DATA_ROOTS", raising=False)
    monkeypatch.setenv("VAE_DATA_ROOT", str(tmp_path / "cache"))
    with pytest.raises(VAEError) as err:
        confine_path("/etc")
    assert str(err.value) == ("data folders must be inside the project's data/ folder or the data cache "
                              "(VAE_DATA_ROOT), and '/etc' is not; whoever starts the server can allow others "
                              "with VAE_ALLOWED_DATA_ROOTS")
    monkeypatch.setenv("VAE_ALLOWED_DATA_ROOTS", f"{ROOT / 'data'}{os.pathsep}{tmp_path / 'a'}{os.pathsep}/srv/b")
    with pytest.raises(VAEError) as err:
        confine_path("/etc")
    assert "inside the project's data/ folder or the folders set in VAE_ALLOWED_DATA_ROOTS" in str(err.value)
    assert str(ROOT) not in str(err.value) and str(tmp_path) not in str(err.value) and "/srv" not in str(err.value)


def test_the_anomalies_page_shows_no_server_path_of_a_folder(checkpoint_dir, models, tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("VAE_ALLOWED_DATA_ROOTS", str(root))
    at = opened(checkpoint_dir, models["z4"], page="anomalies")
    errors = {text: _scored_folder(at, text)[0].replace("\\", "") for text in ("/etc", "nope", "x" * 300)}
    assert all(str(tmp_path) not in error for error in errors.values()), errors
    assert "/etc" in errors["/etc"] and "VAE_ALLOWED_DATA_ROOTS" in errors["/etc"]
    assert errors["nope"] == "image folder not found: nope"  # named as typed


# --- 13: user text is plain text, and a hostile address value is cut


def _gfm_links(markdown: str) -> list[str]:
    """What GitHub-flavoured Markdown's autolink literals (remark-gfm, which Streamlit's Markdown uses) find in
    the text its escapes leave: they are matched after escapes are read, so escaping alone does not stop them."""
    text = re.sub(r"\\(.)", r"\1", markdown)
    urls = re.findall(r"(?i)(?:(?<=^)|(?<=[\s\W]))(?:https?://|www(?=\.))[-.\w]+", text)
    emails = re.findall(r"(?:(?<=^)|(?<=[\s\W]))[-.\w+]+@[-\w]+(?:\.[-\w]+)+", text)
    return urls + emails


@pytest.mark.parametrize("text", ["see https://evil.example/x.pt", "WWW.evil.example", "mail me@evil.example",
                                  "[click](http://evil.example) **bold** <b>x</b>"])
def test_plain_text_has_no_markdown_and_no_bare_links(text):
    shown = plain(text)
    assert _gfm_links(shown) == []
    assert shown.replace("\\", "").replace(WORD_JOINER, "") == text  # what the reader sees is what was typed
    assert "**" not in shown and "[" not in shown.replace("\\[", "")


def test_a_folder_name_in_a_message_is_plain_text(checkpoint_dir, models, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("VAE_ALLOWED_DATA_ROOTS", str(tmp_path / "data"))
    at = opened(checkpoint_dir, models["z4"], page="anomalies")
    (error,) = _scored_folder(at, "**bold** www.evil.example")
    assert "\\*\\*bold\\*\\*" in error and _gfm_links(error) == []


def test_how_it_works_cuts_a_hostile_address_value(checkpoint_dir, models):
    at = opened(checkpoint_dir, models["z4"], page="how-it-works", input="9" * 10_064, beta="**x**" * 2000)
    lines = [c.value for c in at.caption if c.value.startswith("Ignored")]
    assert len(lines) == 2 and all(len(line) < 200 for line in lines), [len(line) for line in lines]
    assert "\\*\\*x\\*\\*" in lines[1]


# --- 14: every file a browser session makes goes when the session's scratch folder goes


def _age(path: Path, hours: float = 7) -> None:
    then = time.time() - hours * 3600
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (then, then))


def _clean_on_next_visit(monkeypatch) -> None:
    import ui.session

    monkeypatch.setattr(ui.session, "_scratch_cleaned", [0.0])  # the ten-minute cleanup is due


def test_a_sessions_exports_and_projections_go_with_its_scratch_folder(checkpoint_dir, models, tmp_path, monkeypatch):
    import ui.live_decoder
    from tests.test_app import _upload
    from tests.test_public import files_under

    monkeypatch.setattr(ui.live_decoder, "DECODERS", tmp_path / "decoders")
    at = opened(checkpoint_dir, models["z4"], page="sliders")  # the library's model: a cache, kept
    at.switch_page("pages/map.py").run()
    library = {"decoders": files_under(tmp_path / "decoders"), "checkpoints": files_under(checkpoint_dir)}
    _upload(at, "mine.pt", models["z2"].read_bytes())
    assert at.session_state["upload_message"][0] == "ok"
    for page in ("sliders", "map", "how-it-works"):  # its decoder, encoder, sprite sheets and projections
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
    session = Path(at.session_state["checkpoint_path"]).parent
    made = {p for p in files_under(tmp_path / "decoders") if p not in library["decoders"]}
    assert made and all(p.startswith(f"sessions/{session.name}/") for p in made), made
    assert any(p.endswith(".onnx") for p in made) and any(p.endswith(".png") for p in made)
    assert files_under(checkpoint_dir) == library["checkpoints"]  # nothing of the session's in the library
    assert list((session / "projections").glob("*.npy"))  # its map's projection, in its own folder

    _age(session)  # six hours and more unused: the next visit's cleanup removes all of it
    _clean_on_next_visit(monkeypatch)
    opened(checkpoint_dir, models["z4"])
    assert not session.exists()
    assert files_under(tmp_path / "decoders") == library["decoders"]


def test_the_public_demos_shared_projections_are_cleaned_too(checkpoint_dir, models, tmp_path, monkeypatch):
    from tests.test_public import files_under

    monkeypatch.setenv("VAE_EXPLORER_PUBLIC", "1")
    opened(checkpoint_dir, models["z4"])  # the map: a projection of the library's model, in the scratch
    shared = tmp_path / "scratch" / "projections"
    assert list(files_under(shared))
    for file in shared.iterdir():
        _age(file)
    _clean_on_next_visit(monkeypatch)
    opened(checkpoint_dir, models["z4"])  # (the map writes its projection again only if not in memory)
    assert all(time.time() - p.stat().st_mtime < 3600 for p in shared.iterdir())


# --- 15: an upload over the limit is refused in the browser, in one line, and clears the last message


def test_the_uploaders_limit_leaves_room_for_the_requests_framing():
    """The server refuses a request over server.maxUploadSize with a raw 413 ("AxiosError" in the uploader):
    a file the uploader lets through must fit in a request the server takes."""
    from streamlit import config as st_config

    from ui.session import upload_limit_mb

    server = st_config.get_option("server.maxUploadSize")
    try:
        st_config.set_option("server.maxUploadSize", tomllib.loads(
            (ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"])
        assert upload_limit_mb() == 50  # the local limit, VAE_MAX_UPLOAD_MB
        st_config.set_option("server.maxUploadSize", 2)
        assert upload_limit_mb() == 1
    finally:
        st_config.set_option("server.maxUploadSize", server)


def test_no_message_of_an_upload_outlives_its_file(checkpoint_dir, models):
    from tests.test_app import _upload

    at = opened(checkpoint_dir, models["z4"])
    _upload(at, "notes.pt", b"not a checkpoint")
    assert at.session_state["upload_message"][0] == "error" and at.sidebar.error
    at.sidebar.file_uploader(key="upload").set_value(None).run()  # the file taken away
    assert not at.exception and "upload_message" not in at.session_state and not at.sidebar.error
    _upload(at, "mine.pt", models["z2"].read_bytes())  # a success is said once, as a toast, gone by itself
    assert at.session_state["upload_message"][0] == "ok" and not at.sidebar.success
    assert [t.value.replace("\\", "") for t in at.toast] == [at.session_state["upload_message"][1]]
    at.run()
    assert not at.toast
