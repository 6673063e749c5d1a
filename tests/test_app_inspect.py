"""Inspecting in the app (issue 26), through AppTest: the map's neighbours of a point, the anomaly page's
per-pixel cost maps and flagged list, the Sliders' attribute directions and neighbours of z, and each
page's view in the address (a copied address reopens it; a bad value is one line, never an error)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from vae_core import load_checkpoint, load_dataset
from vae_core.inspection import LatentIndex
from vae_core.latent import encode

ROOT = Path(__file__).resolve().parents[1]


def opened(folder: Path, model: Path, page: str | None = None, **params: str) -> AppTest:
    """The app in a new session (a browser opening a link) at `page`, with `params` in its address."""
    if not (folder / model.name).exists():
        shutil.copyfile(model, folder / model.name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    if page is not None:
        at.run()
        at.switch_page(f"pages/{page}.py")
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def image_captions(at: AppTest) -> list[str]:
    """The images' captions as a reader sees them (`ui.display.plain` escapes Markdown with backslashes)."""
    return [img.caption.replace("\\", "") for el in at.get("image") for img in el.proto.imgs]


def ignored(at: AppTest) -> list[str]:
    return [c for c in captions(at) if c.startswith("Ignored")]


def test_a_points_neighbours_are_the_nearest_codes_and_the_address_keeps_them(checkpoint_dir, models):
    at = opened(checkpoint_dir, models["z4"], point="5")
    ckpt = load_checkpoint(checkpoint_dir / models["z4"].name)
    mu, logvar = encode(ckpt.model, load_dataset("mnist5k").split("test").images)
    want = LatentIndex(mu, logvar).query(mu[5], 12, exclude=[5])[0][0]
    gallery = [c for c in image_captions(at) if c.startswith("#")][-13:]
    assert gallery[0].startswith("#5") and [int(c.split()[0][1:]) for c in gallery[1:]] == want.tolist()
    distances = [float(c.split("·")[-1]) for c in gallery[1:]]
    assert distances == sorted(distances) and distances[0] > 0
    # a click on another point asks for its neighbours; the address follows
    at.session_state["map_chart"] = {"selection": {"points": [{"customdata": [9]}], "point_indices": [9],
                                                   "box": [], "lasso": []}}
    at.run()
    assert at.session_state["map_point"] == 9 and at.query_params["point"] == "9"
    at.radio(key="map_metric").set_value("symmetric-kl").run()
    gallery = [c for c in image_captions(at) if c.startswith("#")][-13:]
    want = LatentIndex(mu, logvar).query(mu[9], 12, logvar=logvar[9], metric="symmetric-kl", exclude=[9])[0][0]
    assert [int(c.split()[0][1:]) for c in gallery[1:]] == want.tolist() and gallery[1].endswith("nats")
    assert any(f"exact search over all {len(mu):,} codes" in c for c in captions(at))


def test_the_maps_view_reopens_from_its_address(checkpoint_dir, models):
    at = opened(checkpoint_dir, models["z4"])
    at.radio(key="map_split").set_value("train").run()
    at.selectbox(key="map_colour").set_value("reconstruction error").run()
    at.radio(key="map_mode").set_value("Decoded grid").run()
    assert not at.exception
    link = {k: at.query_params[k] for k in ("split", "colour", "view")}
    assert link == {"split": "train", "colour": "reconstruction error", "view": "Decoded grid"}
    again = opened(checkpoint_dir, models["z4"], **link)  # a copied address in a new browser
    assert again.radio(key="map_split").value == "train"
    assert again.selectbox(key="map_colour").value == "reconstruction error"
    assert again.radio(key="map_mode").value == "Decoded grid" and not ignored(again)
    bad = opened(checkpoint_dir, models["z4"], split="validation", point="99999", view="Scatter", n_neighbors="30")
    assert bad.radio(key="map_split").value == "test"
    lines = ignored(bad)
    assert len(lines) == 2 and "split" in lines[0] and "point" in lines[1]
    assert "split" not in bad.query_params and "point" not in bad.query_params  # dropped: a clean link
    assert "n_neighbors" not in bad.query_params  # UMAP's parameter, while the map is PCA


def test_anomalies_show_cost_maps_and_keep_score_and_threshold_in_the_address(checkpoint_dir, models):
    at = opened(checkpoint_dir, models["z4"], page="anomalies", threshold="90", score="recon")
    assert at.slider(key="anom_pct").value == 90.0 and at.radio(key="anom_score").value == "recon"
    assert any("per pixel" in c and "nats per pixel" in c for c in captions(at))
    block = image_captions(at)
    first = next(i for i, c in enumerate(block) if c.startswith("#"))
    assert len(block[first:first + 24]) == 24  # 8 originals, 8 reconstructions, 8 cost maps
    flagged = [b for b in at.get("download_button") if "flagged" in b.proto.label]
    assert len(flagged) == 1 and "100 flagged" in flagged[0].proto.label  # 10% of the 1,000 test images
    at.slider(key="anom_pct").set_value(97.5).run()
    assert at.query_params["threshold"] == "97.5" and at.query_params["score"] == "recon"
    bad = opened(checkpoint_dir, models["z4"], page="anomalies", threshold="120", score="recon")
    assert bad.slider(key="anom_pct").value == 95.0 and len(ignored(bad)) == 1


@pytest.mark.parametrize("values, expected_lines", [({"seed": "17", "t": "0.5", "n": "12"}, 0),
                                                    ({"seed": "-3", "t": "abc"}, 2)])
def test_generate_reopens_seed_and_temperature(checkpoint_dir, models, values, expected_lines):
    at = opened(checkpoint_dir, models["z4"], page="generate", **values)
    assert len(ignored(at)) == expected_lines
    if expected_lines == 0:
        assert at.number_input(key="gen_seed").value == 17 and at.session_state["gen_t"] == 0.5
        assert at.slider(key="gen_n").value == 12
    else:
        assert at.number_input(key="gen_seed").value == 0 and at.session_state["gen_t"] == 1.0
    at.number_input(key="gen_seed").set_value(4).run()
    assert at.query_params["seed"] == "4"


def test_interpolate_reopens_images_path_and_steps(checkpoint_dir, models):
    at = opened(checkpoint_dir, models["z4"], page="interpolate", a="3", b="42", path="linear", steps="7")
    assert at.number_input(key="A_index").value == 3 and at.number_input(key="B_index").value == 42
    assert at.radio(key="interp_method").value == "linear" and at.slider(key="interp_steps").value == 7
    at.slider(key="interp_steps").set_value(12).run()
    assert [at.query_params[k] for k in ("a", "b", "path", "steps")] == ["3", "42", "linear", "12"]
    bad = opened(checkpoint_dir, models["z4"], page="interpolate", a="1000000", path="cubic")
    assert len(ignored(bad)) == 2 and bad.radio(key="interp_method").value == "slerp"


@pytest.fixture
def fake(monkeypatch):
    import ui.live_decoder
    from tests.test_app_live import FakeComponent

    stub = FakeComponent()
    monkeypatch.setattr(ui.live_decoder, "_component", stub)
    return stub


def test_sliders_take_z_from_the_address_and_offer_attribute_directions_to_the_pad(checkpoint_dir, models, fake):
    z = [0.5, -1.25, 2.0, 0.0]
    at = opened(checkpoint_dir, models["z4"], page="sliders", z=",".join(map(str, z)))
    assert at.session_state["slider_z"].tolist() == pytest.approx(z) and at.query_params["z"] == "0.5,-1.25,2,0"
    pad = fake.mounts["slider_pad"]
    assert pad["z"] == pytest.approx(z)
    names = [d["label"] for d in pad["directions"]]
    assert names == [f"more like {'an' if d == 8 else 'a'} {d}" for d in range(10)]
    ckpt = load_checkpoint(checkpoint_dir / models["z4"].name)
    test = load_dataset("mnist5k").split("test")
    mu, _ = encode(ckpt.model, test.images)
    eights = (test.labels == 8).numpy()
    want = mu.numpy()[eights].mean(0) - mu.numpy()[~eights].mean(0)
    assert pad["directions"][8]["vector"] == pytest.approx(want.tolist(), abs=1e-4)
    fake.gesture = ("slider_pad", "z", [1.0, 1.0, 1.0, 1.0])  # a drag of "more like an 8" ends in the browser
    at.run()
    assert at.query_params["z"] == "1,1,1,1"
    bad = opened(checkpoint_dir, models["z4"], page="sliders", z="1,2")
    assert len(ignored(bad)) == 1 and np.allclose(bad.session_state["slider_z"], 0) and "z" not in bad.query_params


def test_server_sliders_move_z_along_a_direction_and_show_its_neighbours(checkpoint_dir, models):
    import ui.live_decoder

    shutil.copyfile(models["z4"], checkpoint_dir / models["z4"].name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state[ui.live_decoder.FAILED] = "WebAssembly is turned off"
    at.run()
    at.switch_page("pages/sliders.py").run()
    assert not at.exception
    eight = next(s for s in at.slider if s.label == "more like an 8")
    eight.set_value(1.5).run()
    ckpt = load_checkpoint(checkpoint_dir / models["z4"].name)
    test = load_dataset("mnist5k").split("test")
    mu = encode(ckpt.model, test.images)[0].numpy()
    eights = (test.labels == 8).numpy()
    want = 1.5 * (mu[eights].mean(0) - mu[~eights].mean(0))
    assert at.session_state["slider_z"] == pytest.approx(np.clip(want, -4, 4).tolist(), abs=1e-4)
    at.toggle(key="slider_nb").set_value(True).run()
    shown = [c for c in [img.caption for el in at.get("image") for img in el.proto.imgs] if c and c.startswith("#")]
    nearest = np.argsort(((mu - at.session_state["slider_z"]) ** 2).sum(1), kind="stable")[:8]
    assert [int(c.split()[0][1:]) for c in shown] == nearest.tolist()


def test_attribute_axes_place_each_code_along_two_class_directions(checkpoint_dir, models):
    import json

    at = opened(checkpoint_dir, models["z4"], view="Attribute axes", x="more like a 1", y="more like a 7")
    assert at.radio(key="map_mode").value == "Attribute axes" and not ignored(at)
    assert at.selectbox(key="map_axis_x").value == "more like a 1"
    ckpt = load_checkpoint(checkpoint_dir / models["z4"].name)
    test = load_dataset("mnist5k").split("test")
    mu = encode(ckpt.model, test.images)[0].numpy()
    labels = test.labels.numpy()
    unit = [(d := mu[labels == c].mean(0) - mu[labels != c].mean(0)) / np.linalg.norm(d) for c in (1, 7)]
    spec = json.loads(next(c for c in at.get("plotly_chart") if c.proto.id and "map_axes" in c.proto.id).proto.spec)
    ones = next(t for t in spec["data"] if t.get("name") == "1")  # the trace of the 1s (decoded from plotly's arrays)
    index = np.asarray(_plotly_array(ones["customdata"]), dtype=int)
    assert np.allclose(_plotly_array(ones["x"]), mu[index] @ unit[0], atol=1e-4)
    assert np.allclose(_plotly_array(ones["y"]), mu[index] @ unit[1], atol=1e-4)
    assert np.mean(mu[labels == 1] @ unit[0]) > np.mean(mu[labels != 1] @ unit[0])  # the 1s lie further along x


def _plotly_array(value) -> np.ndarray:
    """A plotly JSON array: a list, or {"dtype", "bdata"} (base64 typed array)."""
    import base64

    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def test_the_map_sends_its_images_once_as_sprite_sheets_for_hover(checkpoint_dir, models, fake):

    from PIL import Image

    import ui.live_decoder

    shutil.copyfile(models["z4"], checkpoint_dir / models["z4"].name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    assert not at.exception
    hover = fake.mounts["map_hover"]
    assert hover["mode"] == "hover" and hover["chart"] == "map_chart" and hover["n"] == 1000
    test = load_dataset("mnist5k").split("test")
    assert hover["labels"] == test.labels.tolist() and hover["classes"] == [str(d) for d in range(10)]
    ckpt = load_checkpoint(checkpoint_dir / models["z4"].name)
    from vae_core.latent import reconstruct

    for kind, want in (("images", test.images), ("reconstructions", reconstruct(ckpt.model, test.images))):
        sheet = hover[kind]
        pixels = np.asarray(Image.open(ui.live_decoder.STATIC / sheet["url"]), dtype=np.float32) / 255
        side, cols = sheet["side"], sheet["cols"]
        assert side == 28 and cols == 32
        for i in (0, 7, 999):
            r, c = divmod(i, cols)
            assert np.abs(pixels[r * side:(r + 1) * side, c * side:(c + 1) * side] - want[i, 0].numpy()).max() < 0.003
    first = hover["images"]["url"]
    at.selectbox(key="map_colour").set_value("reconstruction error").run()
    assert fake.mounts["map_hover"]["images"]["url"] == first  # written once, sent by name


def test_anomalies_score_a_folder_inside_the_allowed_roots(checkpoint_dir, models, tmp_path, monkeypatch):
    from PIL import Image

    root = tmp_path / "data"
    g = np.random.default_rng(0)
    for kind in ("plain", "noisy"):
        (root / "shapes" / kind).mkdir(parents=True)
        for i in range(12):
            pixels = g.integers(0, 255, (28, 28), dtype=np.uint8) if kind == "noisy" else np.zeros((28, 28), np.uint8)
            Image.fromarray(pixels).save(root / "shapes" / kind / f"{kind[0]}{i:02d}.png")
    monkeypatch.setenv("VAE_ALLOWED_DATA_ROOTS", str(root))
    at = opened(checkpoint_dir, models["z4"], page="anomalies")
    at.text_input(key="anom_folder").input("shapes").run()
    assert not at.exception and not at.error
    assert any(c.startswith("24 images, most anomalous first") for c in captions(at))
    names = [c.split(" · ")[0] for c in image_captions(at) if c and c.endswith(tuple("0123456789")) and ".png" in c]
    assert len(names) == 8 and all(n.startswith("n") for n in names)  # noise is what an MNIST model finds odd
    assert any(b.proto.label == "Download all 24 ranked (CSV)" for b in at.get("download_button"))
    at.text_input(key="anom_folder").input("/etc").run()
    assert len(at.error) == 1 and "data folders must be inside" in at.error[0].value


def test_in_the_public_demo_a_sessions_own_model_writes_no_sprite_sheet(checkpoint_dir, models, tmp_path,
                                                                         monkeypatch, default_limits):
    import ui.live_decoder
    from tests.test_app import _upload
    from tests.test_public import files_under

    monkeypatch.setenv("VAE_EXPLORER_PUBLIC", "1")
    monkeypatch.setattr(ui.live_decoder, "DECODERS", tmp_path / "decoders")
    at = opened(checkpoint_dir, models["z4"])  # the library's model: its sheets are a bounded cache
    library = files_under(tmp_path / "decoders")
    assert any(name.endswith(".images.png") for name in library)
    _upload(at, "mine.pt", models["z2"].read_bytes())
    at.run()
    assert not at.exception and "mine" in at.session_state["checkpoint_path"]
    assert files_under(tmp_path / "decoders") == library  # nothing written for the session's own model


def test_an_anomalous_image_opens_its_neighbours_on_the_map(checkpoint_dir, models):
    at = opened(checkpoint_dir, models["z4"], page="anomalies")
    picked = at.selectbox(key="anom_pick").options[2]
    index = int(picked.split()[0].lstrip("#"))
    at.selectbox(key="anom_pick").set_value(index)
    at.button(key="anom_neighbours").click().run()
    assert not at.exception and at.session_state["map_point"] == index
    assert any(h.value == "Latent map" for h in at.header)
    gallery = [c for c in image_captions(at) if c.startswith("#")][-13:]
    assert gallery[0].startswith(f"#{index}") and at.query_params["point"] == str(index)
