"""The Streamlit app driven headless through `streamlit.testing.v1.AppTest`: every page renders,
says what to do without a model, and its widgets change what it shows; training starts, reports,
takes a new β and stops with a checkpoint; uploads are validated before they join the folder.

Each test points the app at its own temporary checkpoint folder holding copies of two tiny models
trained once per module on mnist5k (about 2 s)."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from app import PAGES as ROUTES
from ui.display import plain
from ui.session import SELECTED, claim_checkpoint_path
from vae_core import VAEConfig, load_checkpoint, load_dataset
from vae_core.latent import encode

ROOT = Path(__file__).resolve().parents[1]
HEADERS = {name: title for name, title, _ in ROUTES}
MODEL_PAGES = [page for page in HEADERS if page != "train"]


def open_app(folder: Path, *models: Path, page: str | None = None) -> AppTest:
    """Copy `models` into the folder, run the app once (the default page), then switch to `page`."""
    for model in models:
        shutil.copyfile(model, folder / model.name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    assert not at.exception
    if page is not None:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def by_label(widgets, label: str):
    matches = [w for w in widgets if w.label == label]
    assert len(matches) == 1, f"{len(matches)} widgets labelled {label!r}"
    return matches[0]


# --- every page


@pytest.mark.parametrize("page", list(HEADERS))
def test_every_page_renders_with_a_model(checkpoint_dir, models, page):
    at = open_app(checkpoint_dir, models["z4"], page=page)
    assert at.header[0].value == HEADERS[page]
    model = by_label(at.sidebar.selectbox, "Model")  # the shared sidebar is drawn on every page
    assert model.value == str(checkpoint_dir / models["z4"].name)
    assert not at.error


def test_without_a_checkpoint_every_page_says_what_to_do(checkpoint_dir):
    at = open_app(checkpoint_dir)
    assert "No checkpoints yet" in " ".join(c.value for c in at.sidebar.caption)
    for page in MODEL_PAGES:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, page
        assert at.header[0].value == HEADERS[page]
        assert len(at.info) == 1, page
        message = at.info[0].value
        assert "Train" in message and "open a checkpoint" in message, (page, message)
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert "Start training" in at.info[0].value
    assert [b.label for b in at.button] == ["Start training"]


# --- sliders, generate, latent map


def test_sliders_decode_the_code_and_encode_a_test_image(checkpoint_dir, models, mnist5k):
    at = open_app(checkpoint_dir, models["z4"], page="sliders")
    at.session_state["live_decoder_failed"] = "no browser under AppTest"  # the server-side sliders
    at.run()
    assert [at.slider(key=f"z_{d}").value for d in range(4)] == [0.0] * 4
    at.number_input(key="slider_index").set_value(3)
    by_label(at.button, "Encode it").click().run()
    assert not at.exception
    mu, _ = encode(load_checkpoint(checkpoint_dir / models["z4"].name).model, mnist5k.split("test").images[3:4])
    got = [at.slider(key=f"z_{d}").value for d in range(4)]
    assert got == pytest.approx(np.clip(mu[0].numpy(), -4, 4), abs=1e-5) and any(got)

    before = at.session_state["slider_image"].copy()
    at.slider(key="z_0").set_value(3.0 if got[0] < 1.5 else -3.0).run()
    assert not at.exception
    after = at.session_state["slider_image"]
    assert after.shape == before.shape == (1, 28, 28)
    assert np.abs(after - before).max() > 1e-3

    by_label(at.button, "Zero").click().run()
    assert [at.slider(key=f"z_{d}").value for d in range(4)] == [0.0] * 4


def test_generate_follows_sample_count_and_seed(checkpoint_dir, models):
    at = open_app(checkpoint_dir, models["z4"], page="generate")
    first = at.session_state["gen_images"].clone()
    assert tuple(first.shape) == (32, 1, 28, 28)
    at.slider(key="gen_n").set_value(8).run()
    eight = at.session_state["gen_images"].clone()
    assert tuple(eight.shape) == (8, 1, 28, 28) and not at.exception
    at.number_input(key="gen_seed").set_value(1).run()
    reseeded = at.session_state["gen_images"]
    assert reseeded.shape == eight.shape and not torch.equal(reseeded, eight)
    at.number_input(key="gen_seed").set_value(0).run()
    assert torch.equal(at.session_state["gen_images"], eight)  # a seed always gives the same samples


def test_map_switches_projection_and_view(checkpoint_dir, models):
    at = open_app(checkpoint_dir, models["z4"])
    method = at.selectbox(key="map_method")
    assert method.options == ["PCA", "UMAP", "t-SNE"] and method.value == "pca"  # z=4: no latent plane
    method.set_value("tsne").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="map_method").value == "tsne"

    at.radio(key="map_mode").set_value("Decoded grid").run()
    assert not at.exception
    assert len(at.main.image) == at.slider(key="map_cells").value ** 2
    at.radio(key="map_mode").set_value("Thumbnails").run()
    assert not at.exception and not at.error


def test_map_keeps_the_users_zoom_until_the_coordinates_change(checkpoint_dir, models):
    """plotly keeps zoom and pan across a rerun while the layout's uirevision stays the same."""
    import json

    def revision(at) -> str:
        (chart,) = [c for c in at.get("plotly_chart") if json.loads(c.proto.spec)["layout"].get("dragmode") == "lasso"]
        return json.loads(chart.proto.spec)["layout"]["uirevision"]

    at = open_app(checkpoint_dir, models["z4"])
    pca = revision(at)
    at.selectbox(key="map_colour").set_value("reconstruction error").run()
    assert not at.exception and revision(at) == pca  # a new colour: the same map, the same view
    at.selectbox(key="map_method").set_value("tsne").run()
    assert not at.exception and revision(at) != pca  # a new projection: its own view


def test_map_offers_the_latent_plane_for_a_2d_model(checkpoint_dir, models):
    at = open_app(checkpoint_dir, models["z2"])
    method = at.selectbox(key="map_method")
    assert method.options[0] == "Latent plane (z is 2-D)" and method.value == "latent"
    at.radio(key="map_mode").set_value("Decoded grid").run()
    assert not at.exception and not at.error
    assert len(at.main.image) == at.slider(key="map_cells").value ** 2


# --- training


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_train_starts_reports_takes_a_live_beta_and_stops_with_a_checkpoint(checkpoint_dir):
    at = open_app(checkpoint_dir, page="train")
    by_label(at.main.selectbox, "Dataset").set_value("digits")
    by_label(at.main.selectbox, "Model").set_value("mlp")
    by_label(at.main.selectbox, "Device").set_value("cpu")
    by_label(at.number_input, "Latent size").set_value(2)
    by_label(at.number_input, "Epochs").set_value(1000)  # far more than the test waits for
    by_label(at.text_input, "Hidden sizes").set_value("32")
    by_label(at.button, "Start training").click().run()
    assert not at.exception and not at.error
    job = at.session_state["train_job"]
    try:
        assert (job.config.dataset, job.config.model, job.config.latent_dim) == ("digits", "mlp", 2)
        _wait_for(lambda: job.snapshot().step > 0, timeout=240)  # a child interpreter imports torch first
        at.run()
        assert not at.exception
        progress = at.get("progress")
        assert len(progress) == 1 and "step" in progress[0].proto.text
        assert job.snapshot().status == "running"

        at.slider(key="live_beta").set_value(2.5).run()
        assert not at.exception
        assert job.snapshot().beta == 2.5

        # the controls are drawn with the page and act before it: a press shows the state it leads to
        by_label(at.button, "Pause").click().run()
        assert job.snapshot().status == "paused"
        assert by_label(at.button, "Pause").disabled and not by_label(at.button, "Resume").disabled
        by_label(at.button, "Resume").click().run()
        assert job.snapshot().status == "running" and by_label(at.button, "Resume").disabled

        by_label(at.button, "Stop").click().run()
        assert job.join(timeout=30)
    finally:
        job.stop()
        job.join(timeout=30)
    saved = list(checkpoint_dir.glob("*.pt"))
    assert [p.name for p in saved] == ["digits-mlp-z2-beta1.pt"]
    ckpt = load_checkpoint(saved[0])
    assert ckpt.progress["status"] == "stopped" and ckpt.progress["beta"] == 2.5
    assert ckpt.config.epochs == 1000 and ckpt.latent_dim == 2

    at.run()  # the page reports the saved file, and the sidebar now lists it
    assert not at.exception
    assert any("Saved digits-mlp-z2-beta1.pt" in s.value for s in at.success)
    assert by_label(at.sidebar.selectbox, "Model").value == str(saved[0])


# --- opening a checkpoint from the sidebar


class _OpensAFile:
    """A pickle that would create `path` when loaded without weights_only."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _upload(at: AppTest, name: str, content: bytes) -> AppTest:
    return at.sidebar.file_uploader(key="upload").set_value((name, content, "application/octet-stream")).run()


def test_bad_text_in_the_train_form_is_named_and_the_form_stays_whole(checkpoint_dir):
    at = open_app(checkpoint_dir, page="train")
    by_label(at.text_input, "Hidden sizes").set_value("12, abc")
    by_label(at.button, "Start training").click().run()
    assert not at.exception and "train_job" not in at.session_state  # nothing started
    assert [e.value for e in at.error] == [plain("Hidden sizes: expected comma-separated integers, got '12, abc'")]
    assert by_label(at.number_input, "Epochs") and by_label(at.button, "Start training")  # drawn below it


def test_a_bad_upload_is_refused_and_the_app_keeps_working(checkpoint_dir, models, tmp_path):
    at = open_app(checkpoint_dir, models["z4"])
    before = sorted(checkpoint_dir.glob("*.pt"))

    _upload(at, "notes.pt", b"just some text, not a checkpoint\n")
    assert not at.exception
    kind, message = at.session_state["upload_message"]
    assert kind == "error" and "notes.pt" in message and "upload.pt" not in message
    assert at.sidebar.error[0].value == plain(message)  # shown as plain text: punctuation escaped

    marker = tmp_path / "ran.txt"
    _upload(at, "evil.pt", pickle.dumps(_OpensAFile(marker)))
    kind, message = at.session_state["upload_message"]
    assert kind == "error" and "refused" in message and "evil.pt" in message
    assert not marker.exists()

    assert sorted(checkpoint_dir.glob("*.pt")) == before
    assert at.session_state["checkpoint_path"] == str(before[0])
    at.switch_page("pages/generate.py").run()
    assert not at.exception and at.header[0].value == "Generate"
    assert at.session_state["gen_images"].shape[0] == 32


def test_a_valid_upload_is_this_sessions_own_and_overwrites_nothing(checkpoint_dir, models):
    at = open_app(checkpoint_dir, models["z4"])
    existing = checkpoint_dir / models["z4"].name
    original = existing.read_bytes()
    before = sorted(checkpoint_dir.glob("*.pt"))

    _upload(at, existing.name, models["z2"].read_bytes())  # same name, other model
    assert not at.exception
    kind, message = at.session_state["upload_message"]
    assert kind == "ok", message
    assert existing.read_bytes() == original and sorted(checkpoint_dir.glob("*.pt")) == before
    opened = Path(at.session_state["checkpoint_path"])
    assert opened.parent != checkpoint_dir and opened.stem.startswith("mnist5k-mlp-z4")
    assert load_checkpoint(opened).config.latent_dim == 2
    assert f"{opened.stem} (this session only)" in at.sidebar.selectbox[0].options

    other = open_app(checkpoint_dir, models["z4"])  # another browser session does not see it
    assert not any("this session only" in o for o in other.sidebar.selectbox[0].options)


def test_concurrent_runs_with_the_same_settings_get_their_own_files(checkpoint_dir):
    cfg = VAEConfig(dataset="digits", model="mlp", latent_dim=3)
    first = claim_checkpoint_path(cfg)
    second = claim_checkpoint_path(cfg)  # another session, before the first has written
    assert first != second and first.parent == second.parent == checkpoint_dir
    assert not first.exists() and not second.exists()


def test_anomalies_show_each_original_above_its_reconstruction(checkpoint_dir, models):
    at = open_app(checkpoint_dir, models["z4"], page="anomalies")
    by_label(at.slider, "How many").set_value(16).run()
    assert not at.exception
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    first = next(i for i, c in enumerate(captions) if c.startswith("#"))  # originals carry '#index · score'
    block = captions[first:first + 48]  # 8 originals, their reconstructions and cost maps, then the next 8
    assert len(block) == 48
    assert all(c.startswith("#") for c in block[:8] + block[24:32]), block
    assert not any(block[8:24] + block[32:48]), block
    # any of them opens the Sliders at its code
    third = int(block[2].split()[0].lstrip("#"))
    at.selectbox(key="anom_pick").set_value(third)
    by_label(at.button, "Open in Sliders").click().run()
    assert not at.exception and any(h.value == "Sliders" for h in at.header)
    mu, _ = encoded_codes(checkpoint_dir / models["z4"].name, third)
    assert at.session_state["slider_z"] == pytest.approx(np.clip(mu, -4, 4).tolist(), abs=1e-5)


def test_the_address_names_the_chosen_model_and_a_link_opens_it(checkpoint_dir, models):
    for model in models.values():
        shutil.copyfile(model, checkpoint_dir / model.name)
    first, second = sorted(p.stem for p in models.values())
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params["model"] = second  # a link to the second model opens it
    at.run()
    assert not at.exception
    assert Path(at.session_state[SELECTED]).stem == second
    picker = by_label(at.sidebar.selectbox, "Model")
    picker.set_value(str(checkpoint_dir / f"{first}.pt")).run()
    assert at.query_params["model"] == first  # the address follows the picker, ready to copy or reload

    for wanted in ("../../etc/passwd", "no-such-model"):  # anything else in the address is ignored
        other = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
        other.query_params["model"] = wanted
        other.run()
        assert not other.exception and Path(other.session_state[SELECTED]).stem in (first, second)


def encoded_codes(path: Path, i: int) -> tuple[np.ndarray, np.ndarray]:
    """The posterior mean and log-variance of test image i under the checkpoint at `path`."""
    ckpt = load_checkpoint(path)
    images = load_dataset(ckpt.config.dataset).split("test").images[i:i + 1]
    mu, logvar = encode(ckpt.model, images)
    return mu[0].numpy(), logvar[0].numpy()


def test_a_clicked_map_point_shows_its_image_and_opens_the_sliders_at_its_code(checkpoint_dir, models):
    at = open_app(checkpoint_dir, models["z4"])
    at.session_state["map_chart"] = {"selection": {"points": [{"customdata": [5]}], "point_indices": [5],
                                                   "box": [], "lasso": []}}  # as a click on test image #5
    at.run()
    assert not at.exception
    assert any("test image #5" in m.value.replace("\\", "") for m in at.markdown)  # (plain text: escaped)
    assert len(at.get("image")) == 2 + 13  # the original and its reconstruction, then it and its 12 neighbours
    by_label(at.button, "Open in Sliders").click().run()
    assert not at.exception
    mu, _ = encoded_codes(checkpoint_dir / models["z4"].name, 5)
    assert at.session_state["slider_z"] == pytest.approx(np.clip(mu, -4, 4).tolist(), abs=1e-5)
    assert any(c.value.startswith(plain("Started from the code of test image #5 · ")) for c in at.caption)
    by_label(at.button, "Zero").click().run()  # the page's own z: no longer that image's
    assert not any("Started from" in c.value for c in at.caption)
    assert any(h.value == "Sliders" for h in at.header)


def test_a_map_selection_can_open_any_shown_image_in_the_sliders(checkpoint_dir, models):
    at = open_app(checkpoint_dir, models["z4"])
    at.session_state["map_chart"] = {"selection": {"points": [{"customdata": [v]} for v in (2, 7, 9)],
                                                   "point_indices": [2, 7, 9], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert [c for c in captions if c] == ["#2", "#7", "#9"]  # under the originals, named as in the picker
    at.selectbox(key="map_pick").set_value(7)
    by_label(at.button, "Open in Sliders").click().run()
    mu, _ = encoded_codes(checkpoint_dir / models["z4"].name, 7)
    assert at.session_state["slider_z"] == pytest.approx(np.clip(mu, -4, 4).tolist(), abs=1e-5)


# --- the first map of a fresh install


def test_a_fresh_servers_first_map_reads_the_shipped_projection_and_loads_no_umap(tmp_path):
    # a fresh process, as a newcomer's server: the default model's map (UMAP, shipped) comes from its
    # shipped file; nothing is fitted or written, and umap-learn / pynndescent (tens of seconds of numba
    # compiling with an empty cache) are not even imported
    folder = tmp_path / "checkpoints"
    shutil.copytree(ROOT / "checkpoints", folder)
    before = sorted(p.name for p in (folder / "projections").iterdir())
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(ROOT / 'app.py')!r}, default_timeout=120).run()\n"
        "assert not at.exception, [e.value for e in at.exception]\n"
        "print(at.header[0].value, '|', at.selectbox(key='map_method').value, '|',"
        " sorted(m for m in ('umap', 'pynndescent') if m in sys.modules))\n"
    )
    env = {**os.environ, "VAE_CHECKPOINT_DIR": str(folder), "VAE_SCRATCH_DIR": str(tmp_path / "scratch")}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "Latent map | umap | []"
    assert sorted(p.name for p in (folder / "projections").iterdir()) == before
