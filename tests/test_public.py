"""The public demo (`VAE_EXPLORER_PUBLIC=1`) driven through AppTest, one test per promise of issue 11:
no saves to the shared library, no server paths (offline datasets and a size-capped image upload
only), training capped in size and time and limited to one run per session and N at once, nothing
written outside the scratch folder, and every limit shown on the page. Each test first checks that
what it forbids is there without the switch, so a refusal is the switch's doing."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.test_app import _upload, _wait_for, by_label, open_app
from vae_core.data import DATASETS
from vae_core.limits import describe_limits

pytestmark = pytest.mark.usefixtures("default_limits")  # the public defaults, whatever the environment says

SAVE = "Save to the shared library"


@pytest.fixture
def public(monkeypatch):
    """The public demo turned on; `public.off()` turns it off again."""
    monkeypatch.setenv("VAE_EXPLORER_PUBLIC", "1")
    return SimpleNamespace(off=lambda: monkeypatch.delenv("VAE_EXPLORER_PUBLIC"))


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below `folder`: relative path → (size, modification time in ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def texts(elements) -> str:
    """The text of page elements as a reader sees it (`ui.display.plain` escapes Markdown with backslashes)."""
    return "\n".join(e.value.replace("\\", "") for e in elements)


def start(at, *, epochs: int, batch: int = 128):
    """Press Start on the Train page for a small digits MLP; the job it started (None if refused)."""
    by_label(at.main.selectbox, "Dataset").set_value("digits")
    by_label(at.main.selectbox, "Model").set_value("mlp")
    by_label(at.main.selectbox, "Device").set_value("cpu")
    by_label(at.number_input, "Latent size").set_value(2)
    by_label(at.number_input, "Epochs").set_value(epochs)
    by_label(at.number_input, "Batch size").set_value(batch)
    by_label(at.text_input, "Hidden sizes").set_value("32")
    by_label(at.button, "Start training").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at.session_state["train_job"] if "train_job" in at.session_state else None


def finish(job) -> None:
    job.stop()
    assert job.join(timeout=60)


# --- no checkpoint uploads to the shared library


def test_an_upload_stays_in_the_session_and_cannot_be_saved_to_the_library(checkpoint_dir, models, public):
    at = open_app(checkpoint_dir, models["z4"])
    library = files_under(checkpoint_dir)
    _upload(at, "mine.pt", models["z2"].read_bytes())
    assert at.session_state["upload_message"][0] == "ok"
    opened = Path(at.session_state["checkpoint_path"])
    assert opened.parent.parent.name == "sessions" and "this session only" in at.sidebar.selectbox[0].options[-1]
    assert SAVE not in [b.label for b in at.sidebar.button]
    assert files_under(checkpoint_dir) == library

    public.off()  # the same session on a local server is offered the copy
    at.run()
    assert SAVE in [b.label for b in at.sidebar.button]


# --- no server paths: offline datasets and a size-capped image upload only


def test_the_train_page_offers_only_the_shipped_datasets_and_no_path(checkpoint_dir, public):
    at = open_app(checkpoint_dir, page="train")
    offered = by_label(at.main.selectbox, "Dataset").options
    assert offered and all(DATASETS[name].offline and DATASETS[name].size <= 60_000 for name in offered)
    assert "folder" not in offered and "sprites-full" not in offered and "mnist" not in offered
    assert "Folder or data root" not in [t.label for t in at.text_input]

    public.off()
    at.run()
    assert "folder" in by_label(at.main.selectbox, "Dataset").options
    assert "Folder or data root" in [t.label for t in at.text_input]


def test_an_image_upload_is_capped_in_size(checkpoint_dir, models, public):
    at = open_app(checkpoint_dir, models["z4"], page="anomalies")
    uploader = at.get("file_uploader")
    image = next(u for u in uploader if u.proto.label == "Image file")
    assert image.proto.max_upload_size_mb == 10  # the browser refuses a larger file before sending it
    assert by_label(at.sidebar.get("file_uploader"), "Checkpoint (.pt)").proto.max_upload_size_mb == 10
    at.file_uploader(key="anom_upload").set_value(("big.png", b"\0" * (11 * 2**20), "image/png")).run()
    assert not at.exception  # and the server refuses what a browser sent past that check
    assert "big.png is too large (size of an upload (checkpoint or image) 11 MB; the limit is 10 MB in the " \
           "public demo, set VAE_MAX_UPLOAD_MB to change it)" in texts(at.error)


# --- training capped in size and time, one run per session and N at once


def test_a_model_over_the_public_size_is_refused_before_it_starts(checkpoint_dir, public):
    at = open_app(checkpoint_dir, page="train")
    assert by_label(at.number_input, "Epochs").max == 20 and by_label(at.number_input, "Batch size").max == 512
    by_label(at.text_input, "Hidden sizes").set_value("4096,4096")
    by_label(at.button, "Start training").click().run()
    assert "train_job" not in at.session_state
    assert re.search(r"model too large \(model parameters [\d,]+; the limit is 5,000,000 in the public demo, "
                     r"set VAE_MAX_PARAMETERS", texts(at.error))


def test_a_run_stops_at_the_time_limit_and_writes_only_to_scratch(checkpoint_dir, public, monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_MAX_TRAIN_MINUTES", "0.002")  # 0.12 s
    at = open_app(checkpoint_dir, page="train")
    before = files_under(tmp_path)
    job = start(at, epochs=20, batch=8)
    assert job.join(timeout=120)
    assert job.snapshot().status == "stopped" and job.snapshot().epoch < 20
    at.run()
    assert "Stopped at the time limit of 0.002 minutes per run" in texts(at.info)

    written = {p for p, stat in files_under(tmp_path).items() if before.get(p) != stat}
    assert written and all(p.startswith("scratch/") for p in written), written
    assert files_under(checkpoint_dir) == {}
    assert job.out_path.parent.parent == tmp_path / "scratch" / "sessions"


def test_one_run_per_session_and_n_at_once(checkpoint_dir, public, monkeypatch):
    monkeypatch.setenv("VAE_MAX_CONCURRENT_RUNS", "1")
    first = open_app(checkpoint_dir, page="train")
    job = start(first, epochs=20, batch=8)
    try:
        _wait_for(lambda: job.snapshot().step > 0)
        job.pause()  # it stays alive until stopped, however fast this machine trains
        first.run()
        assert by_label(first.button, "Start training").disabled  # this session's one run goes on
        other = open_app(checkpoint_dir, page="train")
        assert start(other, epochs=1) is None
        assert re.search(r"too many training runs at once: 1 going on this server, the limit is 1 in the public "
                         r"demo \(VAE_MAX_CONCURRENT_RUNS\)", texts(other.error))
    finally:
        finish(job)
    _wait_for(lambda: not job.alive)
    assert start(other, epochs=1) is not None  # a slot is free again
    finish(other.session_state["train_job"])


# --- every limit shown


def test_every_limit_is_shown_as_text_on_the_page(checkpoint_dir, models, public):
    at = open_app(checkpoint_dir, models["z4"])
    shown = "\n".join(t.value for t in at.sidebar.text)
    lines = describe_limits()
    assert all(line in shown for line in lines)
    assert "epochs: 20 (VAE_MAX_EPOCHS)" in lines and "training runs at once on this server: 2" in shown
    at.switch_page("pages/train.py").run()
    assert all(line in "\n".join(t.value for t in at.main.text) for line in lines)


# --- the live decoder writes no file for a session's own model


def test_an_uploaded_model_decodes_on_the_server_and_exports_nothing(checkpoint_dir, models, public, monkeypatch,
                                                                     tmp_path):
    import ui.live_decoder

    monkeypatch.setattr(ui.live_decoder, "DECODERS", tmp_path / "decoders")
    at = open_app(checkpoint_dir, models["z4"], page="sliders")
    library_decoders = files_under(tmp_path / "decoders")  # the library model's: a bounded cache
    assert len([f for f in library_decoders if f.endswith(".onnx")]) == 1  # (beside the map's sprite sheets)
    _upload(at, "mine.pt", models["z2"].read_bytes())
    assert at.session_state["upload_message"][0] == "ok"
    at.run()
    assert not at.exception
    shown = "\n".join(c.value for c in at.caption)
    assert "Decoding on the server" in shown and "decodes on the server" in shown
    assert files_under(tmp_path / "decoders") == library_decoders  # nothing for the upload

    public.off()  # on a local server the same upload decodes in the browser
    at.run()
    assert "decodes on the server" not in "\n".join(c.value for c in at.caption)
    assert len([f for f in files_under(tmp_path / "decoders") if f.endswith(".onnx")]) == 2
