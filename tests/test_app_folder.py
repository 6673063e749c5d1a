"""A practitioner's own folder in the app (issue 32): a model the CLI trained on a folder opens on every
page wherever it was trained from; a model of a five-image folder opens on every page, each working or
saying in one line what it needs; a folder scored on the Anomalies page leaves out, and counts, the
files that link outside the allowed data folders."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from vae_core import Trainer, load_checkpoint

from .test_app import HEADERS, ROOT
from .test_own_folder import SIDE, icon_folder, tiny


def run_pages(at: AppTest, pages=tuple(HEADERS)) -> dict[str, AppTest]:
    """Each page in turn: what it showed (exceptions, errors, infos, captions)."""
    shown = {}
    for page in pages:
        at.switch_page(f"pages/{page}.py").run()
        shown[page] = {"exception": [e.value for e in at.exception], "error": [e.value for e in at.error],
                       "info": [i.value for i in at.info], "caption": [c.value for c in at.caption]}
    return shown


def opened(checkpoint_dir: Path, model: Path) -> AppTest:
    shutil.copyfile(model, checkpoint_dir / model.name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    return at


# --- 6: the pictures are the images as the model saw them


@pytest.fixture
def kept_media(monkeypatch) -> list:
    """The in-memory media stores AppTest makes for its runs, kept so a test can read an st.image's bytes."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    made = []

    class Kept(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Kept)
    return made


def shown_image(media: list, url: str) -> np.ndarray:
    """The pixels (H, W, 3) of the st.image at `url`, as sent to the browser."""
    from streamlit.runtime.media_file_storage import MediaFileStorageError

    file_id = url.rsplit("/", 1)[-1].split(".")[0]
    for store in media:
        try:
            data = store.get_file(file_id).content
        except MediaFileStorageError:
            continue
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)
    raise AssertionError(f"{url} is in no media store")


@pytest.mark.parametrize(("background", "corner"), [(None, 255), ("black", 0)])  # None: the default, white
def test_the_pages_show_transparent_icons_on_the_models_background(checkpoint_dir, tmp_path, monkeypatch,
                                                                   kept_media, background, corner):
    folder = icon_folder(tmp_path / "data" / "icons", n=10, colour=(220, 60, 30))
    monkeypatch.setenv("VAE_ALLOWED_DATA_ROOTS", str(tmp_path / "data"))
    model = tmp_path / f"icons-{background or 'default'}.pt"
    Trainer(tiny(f"folder:{folder}", **{"background": background} if background else {}), out_path=model).fit()
    at = opened(checkpoint_dir, model)
    at.switch_page("pages/anomalies.py").run()  # the most anomalous test images: the first is an original
    assert not at.exception and not at.error
    shown = shown_image(kept_media, at.get("image")[0].value[0])
    assert shown.shape[0] > SIDE  # upscaled for the screen
    corners = shown[[1, 1, -2, -2], [1, -2, 1, -2]]  # transparent in every icon
    assert (np.abs(corners - corner) <= 8).all(), corners  # default white (was the stored black), or as chosen
    assert 0.05 < (shown[..., 0] - shown[..., 2] > 80).mean() < 0.6  # the icon itself, in its colour


# --- 7: a folder model opens wherever it was trained from


@pytest.fixture
def cli_folder_model(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A model `python -m vae_core train --dataset folder:data/icons` saved, run from a project folder whose
    data/ is the allowed root (as the project's own data/ folder is by default); the project folder."""
    from vae_core.cli import main

    project = tmp_path / "project"
    icon_folder(project / "data" / "icons", n=10, colour=(200, 40, 40))
    monkeypatch.chdir(project)
    out = tmp_path / "icons-mlp.pt"
    assert main(["train", "--dataset", "folder:data/icons", "--image-size", str(SIDE), "--latent-dim", "2",
                 "--hidden-sizes", "16", "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    monkeypatch.chdir(tmp_path)  # the server starts elsewhere
    monkeypatch.setenv("VAE_ALLOWED_DATA_ROOTS", str(project / "data"))
    return out, project


def test_a_folder_model_the_cli_trained_opens_on_every_page(checkpoint_dir, cli_folder_model):
    model, _ = cli_folder_model
    shown = run_pages(opened(checkpoint_dir, model))
    for page, what in shown.items():
        assert not what["exception"] and not what["error"], (page, what)


def test_a_folder_model_that_stored_a_relative_path_opens_too(checkpoint_dir, cli_folder_model, monkeypatch):
    import vae_core.hosting

    model, project = cli_folder_model
    payload = torch.load(model, weights_only=True)
    payload["config"]["dataset"] = "folder:data/icons"  # as runs of the CLI stored it before
    old = checkpoint_dir.parent / "old-icons.pt"
    torch.save(payload, old)
    monkeypatch.setattr(vae_core.hosting, "PROJECT_DIR", project)  # where `python -m vae_core` ran
    shown = run_pages(opened(checkpoint_dir, old), ("map", "anomalies"))
    for page, what in shown.items():
        assert not what["exception"] and not what["error"], (page, what)


# --- 8: a five-image folder


@pytest.fixture(scope="module")
def five_image_model(tmp_path_factory) -> Path:
    """A model of a folder of five icons (a test split of one image), with a film."""
    tmp = tmp_path_factory.mktemp("five")
    folder = icon_folder(tmp / "data" / "five", n=5, colour=(30, 120, 200))
    path = tmp / "five-mlp.pt"
    Trainer(tiny(f"folder:{folder}", latent_dim=4, epochs=3, film_frames=240), out_path=path).fit()
    return path


@pytest.fixture
def allowed_five(five_image_model, monkeypatch) -> Path:
    monkeypatch.setenv("VAE_ALLOWED_DATA_ROOTS", str(five_image_model.parent / "data"))
    return five_image_model


def test_every_page_works_with_a_five_image_folder_or_says_what_it_needs(checkpoint_dir, allowed_five):
    at = opened(checkpoint_dir, allowed_five)
    shown = run_pages(at)
    for page, what in shown.items():
        assert not what["exception"] and not what["error"], (page, what)
    needs = "A map needs at least 3 images, and this model's test split has 1: try the train split, or train on a " \
            "folder with more images."
    assert shown["map"]["info"] == [needs]
    assert any("needs at least 3 test images, and this model's data has 1" in c for c in shown["sliders"]["caption"])
    at.switch_page("pages/map.py").run()
    at.radio(key="map_split").set_value("train").run()  # four images: a map
    assert not at.exception and not at.error
    assert not [i.value for i in at.info if "needs" in i.value]
    at.switch_page("pages/sliders.py").run()
    at.session_state["live_decoder_failed"] = "no browser under AppTest"  # the server-side sliders
    at.run()
    assert not at.exception and not at.error
    assert any("needs at least 3 test images" in c.value for c in at.caption)
    at.toggle(key="slider_nb").set_value(True).run()  # the nearest test images: the one there is
    assert not at.exception and not at.error


def _live_map(path: str) -> None:
    """The Train page's live map of a run, fed the frames of a finished run's film one at a time."""
    from types import SimpleNamespace

    import streamlit as st

    from ui.film_view import live_map
    from vae_core import load_checkpoint
    from vae_core.film import film_of

    ckpt = load_checkpoint(path)
    film = film_of(ckpt.film)
    job = st.session_state.setdefault("job", SimpleNamespace(config=ckpt.config))
    k = st.session_state.setdefault("frame", 0)
    frame = {**film.frames[k], "index": k, "labels": film.labels, "class_names": list(film.class_names),
             "originals": film.originals}
    live_map(job, SimpleNamespace(frame=frame, frames_recorded=k + 1))


def test_the_live_map_of_a_five_image_folder_run_draws_its_one_test_code(five_image_model):
    assert len(load_checkpoint(five_image_model).film["indices"]) == 1
    at = AppTest.from_function(_live_map, args=(str(five_image_model),), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    at.session_state["frame"] = 1  # the next frame, aligned to the one before
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 1


# --- 11: a folder's files held to the allowed data folders


def test_scoring_a_folder_skips_files_linking_outside_the_allowed_roots(checkpoint_dir, allowed_five, tmp_path,
                                                                        monkeypatch):
    root, elsewhere = tmp_path / "allowed", tmp_path / "private"
    folder = icon_folder(root / "icons", n=6)
    icon_folder(elsewhere, n=2, colour=(200, 0, 0))
    for f in sorted(elsewhere.iterdir()):
        os.symlink(f, folder / f"link-{f.name}")
    monkeypatch.setenv("VAE_ALLOWED_DATA_ROOTS", f"{allowed_five.parent / 'data'}{os.pathsep}{root}")
    at = opened(checkpoint_dir, allowed_five)
    at.switch_page("pages/anomalies.py").run()
    at.text_input(key="anom_folder").input(str(folder)).run()
    assert not at.exception and not at.error
    assert any(c.value.startswith("6 images, most anomalous first") for c in at.caption)
    assert [w.value for w in at.warning] == [
        "2 files of the folder skipped\\: they link outside the allowed data folders"]
    listed = [c.replace("\\", "") for image in at.get("image") for c in image.captions]  # Markdown escapes off
    assert any("icon00.png" in c for c in listed) and not any("link-" in c for c in listed)
