"""The live decoder's pages under AppTest. AppTest runs no JavaScript, so the component is stubbed:
`FakeComponent` replaces `ui.live_decoder._component`, records the data each page sends it, and
plays a gesture's end the way the browser does (the component's state value, then its
`on_<name>_change` callback). What the browser itself does is covered by tests/test_browser.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

import ui.live_decoder
from tests.test_app import ROOT, by_label, open_app
from vae_core import load_checkpoint
from vae_core.latent import encode, kl_ranking, lesson_noise

ort = pytest.importorskip("onnxruntime")


class FakeComponent:
    def __init__(self):
        self.mounts: dict[str, dict] = {}
        self.gesture: tuple[str, str, object] | None = None  # (key, value name, value)

    def __call__(self, *, key, data, **callbacks):
        self.mounts[key] = data
        if self.gesture and self.gesture[0] == key:
            _, name, value = self.gesture
            self.gesture = None
            st.session_state[key] = {name: value}
            callbacks[f"on_{name}_change"]()


@pytest.fixture
def fake(monkeypatch) -> FakeComponent:
    stub = FakeComponent()
    monkeypatch.setattr(ui.live_decoder, "_component", stub)
    return stub


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def test_sliders_page_sends_the_pad_its_model_and_follows_a_drag(checkpoint_dir, models, mnist5k, fake):
    at = open_app(checkpoint_dir, models["z4"], page="sliders")
    assert [s.key for s in at.slider] == ["trav_rows"]  # no per-dimension sliders: the pad replaces them
    data = fake.mounts["slider_pad"]
    ckpt = load_checkpoint(checkpoint_dir / models["z4"].name)
    mu, logvar = encode(ckpt.model, mnist5k.split("test").images)
    _, order = kl_ranking(mu, logvar)
    assert [d["index"] for d in data["dims"]] == order.tolist() and data["z"] == [0.0] * 4
    onnx_file = ui.live_decoder.STATIC / data["model"].removeprefix(data["base"])
    (pixels,) = ort.InferenceSession(str(onnx_file)).run(None, {"z": np.zeros((1, 4), np.float32)})
    assert np.abs(pixels - torch.sigmoid(ckpt.model.decode(torch.zeros(1, 4))).detach().numpy()).max() < 1e-4

    # the sidebar's line warms Streamlit's chart bundle, found by name among Streamlit's static files
    (bundle,) = fake.mounts["live_decoder_status"]["warm"]
    assert bundle.startswith("/static/js/PlotlyChart.") and bundle.endswith(".js")
    assert (Path(st.__file__).parent / "static" / bundle.lstrip("/")).is_file()

    # the map beside it is drawn in the browser and follows the pad: its star at offset + matrix @ z
    # is where the page's projection puts z; no plotly chart is sent on a release
    marker = fake.mounts["slider_map_live"]
    assert marker["mode"] == "marker" and marker["follows"] == "slider_pad" and len(marker["points"]) == len(mu)
    assert not at.get("plotly_chart")
    from ui.loaders import model_key, projection
    from vae_core.projection import linear_method

    proj = projection(mu.numpy(), model_key(ckpt), "test", linear_method(4))
    z = np.array([1.0, -2.0, 0.5, 0.0], np.float32)
    star = np.array(marker["offset"]) + np.array(marker["matrix"]) @ z
    np.testing.assert_allclose(star, proj.transform(z)[0], atol=1e-4)
    np.testing.assert_allclose([p[:2] for p in marker["points"]], proj.coords, atol=1e-3)

    # the traversal grid below is decoded in the browser too: rows in KL order, the server's grid as
    # its first picture, following the pad
    grid = fake.mounts["slider_traversal"]
    assert grid["mode"] == "traversal" and grid["follows"] == "slider_pad" and grid["z"] == [0.0] * 4
    assert grid["dims"] == order.tolist()[: at.slider(key="trav_rows").value] and grid["span"] == 3.0
    assert grid["poster"].startswith("data:image/png;base64,") and grid["steps"] == 9
    at.slider(key="trav_rows").set_value(2).run()
    assert fake.mounts["slider_traversal"]["dims"] == order.tolist()[:2]
    assert fake.mounts["slider_traversal"]["version"] != grid["version"]

    fake.mounts.clear()
    fake.gesture = ("slider_pad", "z", [1.0, -2.0, 0.5, 0.0])  # a drag ends in the browser
    at.run()
    assert "z = [1.00, -2.00, 0.50, 0.00]" in captions(at)
    assert fake.mounts["slider_map_live"]["version"] == marker["version"]  # the map is not redrawn
    assert fake.mounts["slider_pad"]["version"] == data["version"]  # the pad keeps what it shows

    at.number_input(key="slider_index").set_value(3)
    by_label(at.button, "Encode it").click().run()
    sent = fake.mounts["slider_pad"]
    assert sent["version"] == data["version"] + 1
    assert sent["z"] == pytest.approx(np.clip(mu[3].numpy(), -4, 4).tolist(), abs=1e-5)


def test_sliders_fall_back_to_server_decoding_when_the_browser_cannot(checkpoint_dir, models, fake):
    at = open_app(checkpoint_dir, models["z4"], page="sliders")
    at.session_state[ui.live_decoder.FAILED] = "WebAssembly is turned off"
    at.run()
    assert not at.exception and len(at.slider) >= 4
    assert any("Decoding on the server" in c and "WebAssembly is turned off" in c for c in captions(at))
    assert at.get("plotly_chart")  # the fallback marks z on a chart the server draws
    before = at.session_state["slider_z"].copy()
    at.slider(key="z_1").set_value(2.5).run()
    assert at.session_state["slider_z"][1] == pytest.approx(2.5) and before[1] == 0.0


def test_interpolate_scrubber_and_corner_pad_get_the_encoded_codes(checkpoint_dir, models, mnist5k, fake):
    at = open_app(checkpoint_dir, models["z4"], page="interpolate")
    ckpt = load_checkpoint(checkpoint_dir / models["z4"].name)
    test = mnist5k.split("test")
    varied = test.varied(4)  # the defaults: A, B and the corners are of four different classes
    assert len(set(test.labels[varied].tolist())) == 4
    assert at.text_input(key="corners").value == ", ".join(map(str, varied))
    mu, _ = encode(ckpt.model, test.images[varied])
    path = fake.mounts["interp_scrub"]
    assert path["mode"] == "path" and path["method"] == "slerp"
    assert path["a"] == pytest.approx(mu[0].tolist(), abs=1e-5) and path["b"] == pytest.approx(mu[1].tolist(), abs=1e-5)
    plane = fake.mounts["corner_pad"]
    origin, du, dv, duv = (np.asarray(plane[k]) for k in ("origin", "du", "dv", "duv"))
    corners = {(0, 1): 0, (1, 1): 1, (0, 0): 2, (1, 0): 3}  # (u, v) of each corner code
    for (u, v), i in corners.items():
        assert origin + u * du + v * dv + u * v * duv == pytest.approx(mu[i].numpy(), abs=1e-5)
    by_label(at.radio, "Path").set_value("linear").run()
    assert fake.mounts["interp_scrub"]["method"] == "linear"
    assert fake.mounts["interp_scrub"]["version"] != path["version"]


def test_map_decodes_under_the_pointer_on_the_latent_plane(checkpoint_dir, models, fake):
    at = open_app(checkpoint_dir, models["z2"])
    view = by_label(at.radio, "View")
    assert "Decode under the pointer" in view.options
    view.set_value("Decode under the pointer").run()
    assert not at.exception
    plane = fake.mounts["map_pointer"]
    assert plane["origin"] == pytest.approx([0, 0], abs=1e-6)  # the latent plane: z = (u, v)
    assert plane["du"] == pytest.approx([1, 0], abs=1e-6) and plane["dv"] == pytest.approx([0, 1], abs=1e-6)
    assert len(plane["points"]) == 1000 and plane["legend"] == [str(d) for d in range(10)]
    u0, u1, v0, v1 = plane["extent"]
    assert u0 < u1 and v0 < v1


def test_sliders_pad_mounts_before_the_data_loads_and_paints_the_servers_picture_first(
        checkpoint_dir, models, fake, monkeypatch):
    """On a fresh server loading and encoding the data takes seconds: the pad is ordered by the KL the
    checkpoint stores and mounts first, carrying decoder(z) as a PNG to show until the browser's
    runtime has compiled; the sidebar's line starts that runtime on this same model's decoder."""
    import base64
    import io

    from PIL import Image

    import ui.session
    from vae_core.images import to_display
    from vae_core.latent import stored_kl_ranking

    at = open_app(checkpoint_dir, models["z4"])
    loads = []  # for each data request: had the pad been mounted already?
    real = ui.session.get_data
    monkeypatch.setattr(ui.session, "get_data", lambda ckpt: loads.append("slider_pad" in fake.mounts) or real(ckpt))
    fake.mounts.clear()
    at.switch_page("pages/sliders.py").run()
    assert not at.exception
    assert loads and loads[0]  # the first data request came after the pad was sent
    ckpt = load_checkpoint(checkpoint_dir / models["z4"].name)
    assert stored_kl_ranking(ckpt) is not None
    data = fake.mounts["slider_pad"]
    assert [d["index"] for d in data["dims"]] == stored_kl_ranking(ckpt)[1].tolist()

    png = base64.b64decode(data["poster"].removeprefix("data:image/png;base64,"))
    shown = np.asarray(Image.open(io.BytesIO(png)))
    expected = to_display(torch.sigmoid(ckpt.model.decode(torch.zeros(1, 4))).detach()[0])
    assert shown.shape[:2] == expected.shape[:2] and np.abs(shown.astype(int) - expected.astype(int)).max() <= 1

    status = fake.mounts["live_decoder_status"]
    assert status["mode"] == "status" and status["model"] == data["model"]


def test_generate_sends_the_prior_draws_and_follows_the_temperature_drag(checkpoint_dir, models, fake):
    from vae_core.latent import decode, prior_noise

    at = open_app(checkpoint_dir, models["z4"], page="generate")
    assert not at.exception and "gen_t" not in [s.key for s in at.slider]  # the browser's range replaces it
    grid = fake.mounts["gen_live"]
    assert grid["mode"] == "samples" and grid["t"] == 1.0 and grid["per_row"] == 8
    np.testing.assert_allclose(grid["eps"], prior_noise(32, 4, 0).numpy(), atol=1e-5)
    assert grid["poster"].startswith("data:image/png;base64,")

    fake.gesture = ("gen_live", "t", 0.25)  # a drag of the temperature ends in the browser
    at.run().run()  # the stub calls back as the grid mounts, below the samples; a browser calls back first
    ckpt = load_checkpoint(checkpoint_dir / models["z4"].name)
    assert torch.allclose(at.session_state["gen_images"], decode(ckpt.model, prior_noise(32, 4, 0) * 0.25))
    assert fake.mounts["gen_live"]["version"] == grid["version"]  # the grid keeps what it shows
    at.number_input(key="gen_seed").set_value(1).run()
    assert fake.mounts["gen_live"]["version"] != grid["version"] and fake.mounts["gen_live"]["t"] == 0.25
    np.testing.assert_allclose(fake.mounts["gen_live"]["eps"], prior_noise(32, 4, 1).numpy(), atol=1e-5)


def test_generate_without_webassembly_keeps_the_servers_temperature_slider(checkpoint_dir, models, fake):
    from vae_core.latent import decode, prior_noise

    at = open_app(checkpoint_dir, models["z4"], page="generate")
    at.session_state[ui.live_decoder.FAILED] = "WebAssembly is turned off"
    fake.mounts.clear()
    at.run()
    assert any("Decoding on the server" in c and "WebAssembly is turned off" in c for c in captions(at))
    at.slider(key="gen_t").set_value(0.5).run()
    assert not at.exception and len(at.get("image")) == 32 and "gen_live" not in fake.mounts
    ckpt = load_checkpoint(checkpoint_dir / models["z4"].name)
    assert torch.allclose(at.session_state["gen_images"], decode(ckpt.model, prior_noise(32, 4, 0) * 0.5))


def test_how_it_works_sends_the_steps_their_input_and_hears_the_gestures(checkpoint_dir, models, mnist5k, fake):
    at = open_app(checkpoint_dir, models["z4"], page="how-it-works")
    sent = fake.mounts["hiw"]
    x = mnist5k.split("test").images[0]
    assert sent["mode"] == "explain" and sent["encoder"].endswith(".encoder.onnx") and "computed" not in sent
    assert sent["x"] == pytest.approx(x.reshape(-1).tolist(), abs=1e-6) and len(sent["eps"]) == 4
    assert sorted(sent["kl_order"]) == [0, 1, 2, 3] and sent["likelihood"]["kind"] == "bernoulli"
    assert sent["draw"]["side"] % 28 == 0 and sent["draw"]["normalize"] == "mnist" and sent["step"] == 0
    fake.gesture = ("hiw", "beta", 3.5)
    at.run()
    at.run()  # the next view carries the address's β
    assert at.query_params["beta"] in ("3.5", ["3.5"]) and fake.mounts["hiw"]["beta"] == 3.5
    drawn = [0.0] * (28 * 28)
    drawn[100] = 1.0
    fake.gesture = ("hiw", "x", drawn)
    at.run()
    at.run()  # the next view starts from the finished stroke
    assert fake.mounts["hiw"]["x"][100] == 1.0 and sum(fake.mounts["hiw"]["x"]) == 1.0


def test_the_sidebars_line_starts_the_encoder_loading_only_for_how_it_works(checkpoint_dir, models, fake):
    at = open_app(checkpoint_dir, models["z4"], page="sliders")
    assert "encoder" not in fake.mounts["live_decoder_status"]  # a page that only decodes
    at.switch_page("pages/how-it-works.py").run()
    status, page = fake.mounts["live_decoder_status"], fake.mounts["hiw"]
    assert status["encoder"] == page["encoder"] and status["encoder"].endswith(".encoder.onnx")


def test_how_it_works_without_webassembly_computes_each_view_on_the_server(checkpoint_dir, models, fake):
    at = open_app(checkpoint_dir, models["z4"], page="how-it-works")
    at.session_state[ui.live_decoder.FAILED] = "WebAssembly is turned off"
    at.run()
    sent = fake.mounts["hiw"]
    assert not at.exception and sent["encoder"] is None
    assert any("computed on the server" in c and "WebAssembly is turned off" in c for c in captions(at))
    model = load_checkpoint(checkpoint_dir / models["z4"].name).model
    mu, logvar = encode(model, torch.tensor(sent["x"]).reshape(1, 1, 28, 28))
    assert sent["computed"]["mu"] == pytest.approx(mu[0].tolist(), abs=1e-5)
    assert sent["computed"]["logvar"] == pytest.approx(logvar[0].tolist(), abs=1e-5)
    z = mu[0] + torch.exp(0.5 * logvar[0]) * torch.tensor(sent["eps"])
    from vae_core.latent import decode
    assert sent["computed"]["image"] == pytest.approx(decode(model, z[None])[0].reshape(-1).tolist(), abs=1e-5)
    fake.gesture = ("hiw", "use_mu", True)
    at.run()
    at.run()
    image = fake.mounts["hiw"]["computed"]["image"]
    assert image == pytest.approx(decode(model, mu)[0].reshape(-1).tolist(), abs=1e-5)  # σ = 0: z = μ


def test_how_it_works_draws_a_2d_models_posterior_on_its_latent_plane(checkpoint_dir, models, mnist5k, fake):
    open_app(checkpoint_dir, models["z2"], page="how-it-works")
    plane = fake.mounts["hiw"]["plane"]
    test = mnist5k.split("test")
    mu, _ = encode(load_checkpoint(checkpoint_dir / models["z2"].name).model, test.images)
    assert len(plane["codes"]) == len(test) <= 1000  # every test code, as the map draws them
    assert np.allclose(plane["codes"], mu.numpy(), atol=1e-3)
    assert len(set(plane["colors"])) == len(set(test.labels.tolist())) and 3.0 <= plane["span"] <= 8.0
    (checkpoint_dir / models["z2"].name).unlink()
    open_app(checkpoint_dir, models["z4"], page="how-it-works")
    assert fake.mounts["hiw"]["plane"] is None  # only a 2-D model has a plane to draw


def test_why_the_kl_term_matters_sets_the_model_beside_the_shipped_autoencoder(checkpoint_dir, models, fake):
    at = open_app(checkpoint_dir, models["z4"], page="how-it-works")
    assert any("not in the library" in c for c in captions(at))  # no autoencoder here: said, not broken
    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "mnist5k-ae-z16.pt"
    shutil.copyfile(shipped, checkpoint_dir / shipped.name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params["model"] = models["z4"].stem  # the autoencoder sorts first: pick the VAE
    at.run()
    at.switch_page("pages/how-it-works.py").run()
    assert not at.exception
    texts = [m.value for m in at.markdown]
    assert any("mnist5k-mlp-z4" in t and "a VAE, β = 1" in t for t in texts)
    assert any("mnist5k-ae-z16" in t and "plain autoencoder" in t for t in texts)
    assert len(at.get("image")) == 2 * (8 + 8)  # per model: 8 samples of the prior and 8 steps of the line


def _params(at) -> dict[str, str]:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def test_a_lesson_link_carries_the_drawing_and_epsilons_seed_to_a_new_session(checkpoint_dir, models, fake):
    """Issue 33: the address holds the drawing (8-bit levels, deflated) and ε's seed, so another session
    opening it sends its browser the sender's x and ε; a bad drawing in an address is one line."""
    at = open_app(checkpoint_dir, models["z4"], page="how-it-works")
    drawn = [0.0] * (28 * 28)
    drawn[300:310] = [0.5] * 10
    fake.gesture = ("hiw", "x", drawn)
    at.run()
    fake.gesture = ("hiw", "seed", 987654)
    at.run()
    fake.gesture = ("hiw", "use_mu", True)
    at.run()
    at.run()
    sent = fake.mounts["hiw"]
    params = _params(at)
    assert params["seed"] == "987654" and params["mu"] == "1" and "draw" in params and len(params["draw"]) < 400
    assert sent["eps"] == pytest.approx(lesson_noise(987654, 1, 4)[0].tolist(), abs=1e-6)
    assert sent["x"][300] == pytest.approx(round(0.5 * 255) / 255, abs=1e-6)
    fake.mounts.clear()
    other = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    other.run()
    for name, value in params.items():
        other.query_params[name] = value
    other.switch_page("pages/how-it-works.py").run()
    got = fake.mounts["hiw"]
    assert not other.exception
    assert got["x"] == pytest.approx(sent["x"], abs=1e-6) and got["eps"] == pytest.approx(sent["eps"], abs=1e-6)
    assert got["use_mu"] is True and np.allclose(got["strip"], sent["strip"], atol=1e-6)
    other.query_params["draw"] = "not-an-image"
    other.run()
    shown = [c.replace("\\", "") for c in captions(other)]  # plain text: Markdown's characters escaped
    assert any("Ignored ?draw=not-an-image in the address: not an image" in c for c in shown)
    assert not other.exception
