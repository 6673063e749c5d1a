"""The film on the Train page under AppTest (issue 25): the live latent map of a running job with the
samples and reconstructions of that moment, one step and one epoch while paused, slow motion; the
replay of the sidebar's model ("How it learned") whose frames are all sent at once (the scrubber and
Play run in plotly.js, no custom component, no WebAssembly), its GIF; a model without a film opens
everywhere as before."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np

from vae_core import Trainer, load_checkpoint

from .browser import ROOT
from .conftest import tiny_config
from .test_app import _wait_for, by_label, open_app


def _values(v) -> np.ndarray:
    """A trace's array as plotly sends it: a list, or base64 typed-array data."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v)


def _figures(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_the_train_page_replays_the_sidebar_models_film(checkpoint_dir, models):
    at = open_app(checkpoint_dir, models["z4"], page="train")
    assert not at.exception and not at.error
    assert [e.label for e in at.expander if e.label.startswith("How it learned")] == [
        "How it learned: mnist5k-mlp-z4"]
    replays = [f for f in _figures(at) if f.get("frames")]
    assert len(replays) == 1
    fig = replays[0]
    film = load_checkpoint(models["z4"]).film
    # before the first step, after steps 1, 2, 4, 8, 16 (the first epoch moves most) and at the epoch's end
    assert len(fig["frames"]) == len(film["frames"]) == 7
    # the slider and Play are plotly's: each position animates to a frame the browser already has
    steps = fig["layout"]["sliders"][0]["steps"]
    assert [s["args"][0] for s in steps] == [[f["name"]] for f in fig["frames"]]
    assert fig["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"
    first, last = fig["frames"][0]["data"][0], fig["frames"][-1]["data"][0]
    x0, x1 = _values(first["x"]), _values(last["x"])
    assert len(x0) == len(x1) == len(film["indices"]) and not np.array_equal(x0, x1)  # the codes moved
    by_label(at.button, "Make a GIF of the film").click().run()
    assert not at.exception
    gif = [b for b in at.get("download_button") if "GIF" in b.proto.label]
    assert len(gif) == 1


def test_a_model_without_a_film_opens_everywhere_as_before(checkpoint_dir, digits):
    path = checkpoint_dir / "digits-nofilm.pt"
    Trainer(tiny_config(epochs=1, film_frames=0), bundle=digits, out_path=path).fit()
    at = open_app(checkpoint_dir, page="train")
    at.sidebar.selectbox(key=by_label(at.sidebar.selectbox, "Model").key).set_value(str(path)).run()
    assert not at.exception
    assert any("has no film" in i.value for i in at.info)
    assert not [f for f in _figures(at) if f.get("frames")]
    for page in ("map", "sliders", "interpolate"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception and not at.error, page


def test_the_live_map_follows_the_run_and_one_step_advances_it(checkpoint_dir):
    at = open_app(checkpoint_dir, page="train")
    by_label(at.main.selectbox, "Dataset").set_value("digits")
    by_label(at.main.selectbox, "Model").set_value("mlp")
    by_label(at.main.selectbox, "Device").set_value("cpu")
    by_label(at.number_input, "Latent size").set_value(3)
    by_label(at.number_input, "Epochs").set_value(1000)
    by_label(at.text_input, "Hidden sizes").set_value("32")
    by_label(at.button, "Start training").click().run()
    job = at.session_state["train_job"]
    try:
        _wait_for(lambda: job.snapshot().frames_recorded >= 2, timeout=240)  # a child interpreter imports torch first
        at.run()
        assert not at.exception
        live = [f for f in _figures(at) if str(f["layout"].get("title", {}).get("text", "")).startswith(
            "Latent space, live")]
        assert len(live) == 1
        points = sum(len(t["x"]) for t in live[0]["data"])
        assert points == len(job.snapshot().frame["codes"]) == 360  # the digits test split, all of it
        assert len(live[0]["data"]) == 10  # one colour per digit
        assert by_label(at.button, "One step").disabled  # only while paused
        by_label(at.button, "Pause").click().run()
        _wait_for(lambda: job.snapshot().status == "paused")
        time.sleep(0.5)  # the step in flight when it paused lands
        before = job.snapshot().step
        at.run()
        assert not by_label(at.button, "One step").disabled
        by_label(at.button, "One step").click().run()
        _wait_for(lambda: job.snapshot().frame["step"] == before + 1)
        time.sleep(0.5)
        assert job.snapshot().step == before + 1 and job.snapshot().status == "paused"
        at.run()
        live = [f for f in _figures(at) if "live" in str(f["layout"].get("title", {}).get("text", ""))]
        assert f"step {before + 1} " in live[0]["layout"]["title"]["text"]
        at.select_slider(key="live_delay").set_value(0.25).run()
        assert not at.exception and job.snapshot().delay_s == 0.25
        by_label(at.button, "Stop").click().run()
        assert job.join(timeout=120)
    finally:
        job.stop()
        job.join(timeout=30)
    # the finished run's film, replayed on the page
    at.run()
    assert not at.exception
    assert [h.value for h in at.subheader] == ["Replay of this run"]
    replays = [f for f in _figures(at) if f.get("frames")]
    saved = load_checkpoint(job.snapshot().checkpoint_path)
    assert len(replays) == 1 and len(replays[0]["frames"]) == len(saved.film["frames"]) >= 3


def test_the_maps_legend_names_the_labels_the_film_knows(digits):
    from ui.film_figures import map_figure, replay_legend
    from vae_core.film import Film
    from vae_core.images import label_hex

    trainer = Trainer(tiny_config(epochs=1), bundle=digits)
    trainer.fit()
    film = Film.from_dict({**trainer.film.to_dict(), "class_names": [f"digit {d}" for d in range(10)]})
    legend = replay_legend(film)  # drawn over the replay, in the map's colours
    assert [name for name, _ in legend] == [f"digit {d}" for d in range(10)]
    assert [colour for _, colour in legend] == [label_hex(d) for d in range(10)]
    frame = film.frames[-1]
    live = map_figure(frame["codes"].float().numpy()[:, :2], film.labels, 3.0, "live", 2, ("zero",))
    assert [t.name for t in live.data][:2] == ["zero", "1"]  # a label past the names keeps its number


def test_each_replay_frame_carries_every_panel_and_its_title():
    """Issue 33: during Play the samples and reconstructions blanked (image traces, whose source loads
    asynchronously on every redraw) and the title ran behind. Every frame now carries its title and
    its two pictures (layout images: a data: URI paints at once) beside its codes; Play's pace is set."""
    from ui.film_figures import FRAME_MS, REPLAY_META, replay_figure, set_speed
    from vae_core.film import film_of, plane_frames

    ckpt = load_checkpoint(ROOT / "checkpoints" / "mnist5k-conv-z16.pt")
    film = film_of(ckpt.film)
    fig = replay_figure(film, plane_frames(film.frames), ckpt.history, ckpt.latent_dim).to_plotly_json()
    assert fig["layout"]["meta"] == REPLAY_META
    assert not [t for t in fig["data"] if t["type"] == "image"]
    sources = set()
    for frame, f in zip(fig["frames"], film.frames, strict=True):
        assert frame["layout"]["title"]["text"].startswith(f"step {f['step']} ")
        images = frame["layout"]["images"]
        assert len(images) == 2 and all(im["source"].startswith("data:image/png;base64,") for im in images)
        assert [(im["xref"], im["yref"]) for im in images] == [("x2", "y2"), ("x3", "y3")]
        sources.update(im["source"] for im in images)
    assert len(sources) > len(film.frames)  # each frame its own samples (the originals row is the same)
    assert fig["layout"]["images"] == fig["frames"][-1]["layout"]["images"]  # shown before Play: the last
    play = fig["layout"]["updatemenus"][0]["buttons"][0]["args"][1]
    assert play["frame"] == {"duration": FRAME_MS, "redraw": True} and FRAME_MS * len(film.frames) >= 10_000
    slow = set_speed(replay_figure(film, plane_frames(film.frames), ckpt.history, ckpt.latent_dim), 2000)
    assert slow.layout.updatemenus[0].buttons[0].args[1]["frame"]["duration"] == 2000


def test_the_replays_speed_and_its_presentation_gif_on_the_page(checkpoint_dir, models):
    from PIL import Image

    at = open_app(checkpoint_dir, models["z4"], page="train")
    speed = at.select_slider(key="selected_speed")
    assert speed.value == 0.5

    def duration() -> int:
        fig = [f for f in _figures(at) if f.get("frames")][0]
        return fig["layout"]["updatemenus"][0]["buttons"][0]["args"][1]["frame"]["duration"]

    assert duration() == 500
    speed.set_value(2.0).run()
    assert not at.exception and duration() == 2000
    assert any("__vaeReplayKeys" in h.proto.body for h in at.get("html"))  # ← → step a frame
    assert at.radio(key="selected_gif_size").value == "presentation"
    by_label(at.button, "Make a GIF of the film").click().run()
    assert not at.exception
    [button] = [b for b in at.get("download_button") if "GIF" in b.proto.label]
    assert "1280×720" in button.proto.label
    at.radio(key="selected_gif_size").set_value("web").run()
    by_label(at.button, "Make a GIF of the film").click().run()
    [button] = [b for b in at.get("download_button") if "GIF" in b.proto.label]
    assert "240 px" in button.proto.label
    from ui.loaders import film_gif_bytes

    ckpt = load_checkpoint(checkpoint_dir / models["z4"].name)
    assert Image.open(io.BytesIO(film_gif_bytes(ckpt, "presentation"))).size[0] >= 1080
