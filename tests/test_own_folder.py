"""A practitioner's own folder of images (issue 32): transparent images composited onto a background the
model keeps, a warning when many images are nearly blank, a folder model that stores where its folder
is, and a folder's files held to the allowed data folders (a link out of them skipped, and counted)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core import VAEConfig, VAEError, load_checkpoint, load_dataset
from vae_core.data import load_for_config, read_image
from vae_core.train import Trainer

SIDE = 32


def glyph(colour=(46, 52, 54), *, seed: int = 0, side: int = SIDE) -> Image.Image:
    """A desktop theme's symbolic icon: a dark shape on transparent pixels (whose stored colour is black)."""
    g = np.random.default_rng(seed)
    pixels = np.zeros((side, side, 4), np.uint8)
    top, left = g.integers(4, 10, 2)
    pixels[top:top + 14, left:left + 14, :3] = colour
    pixels[top:top + 14, left:left + 14, 3] = 255
    pixels[top + 4:top + 10, left + 4:left + 10, 3] = 128  # a half-transparent middle
    return Image.fromarray(pixels, "RGBA")


def icon_folder(folder: Path, n: int = 12, colour=(46, 52, 54)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        glyph(colour, seed=i).save(folder / f"icon{i:02d}.png")
    return folder


def tiny(dataset: str, **changes) -> VAEConfig:
    base = dict(dataset=dataset, image_size=SIDE, model="mlp", latent_dim=2, hidden_sizes=(16,), epochs=1,
                batch_size=8, device="cpu", film_frames=0)
    return VAEConfig(**{**base, **changes})


# --- 6: transparent images


@pytest.mark.parametrize(("background", "level"), [(None, 1.0), ("white", 1.0), ("grey", 128 / 255),
                                                   ("black", 0.0), ("none", 0.0)])
def test_transparent_pixels_become_the_background(tmp_path, background, level):
    folder = icon_folder(tmp_path / "icons", n=3)
    options = {} if background is None else {"background": background}
    images = load_dataset(f"folder:{folder}", image_size=SIDE, **options).images  # default: white
    assert images.shape[1] == 3
    corner = images[:, :, 0, 0]  # transparent in every icon
    assert torch.allclose(corner, torch.full_like(corner, level), atol=1e-6)
    if background in (None, "white"):  # half transparency blends the glyph with the background
        g = np.random.default_rng(0)
        top, left = g.integers(4, 10, 2)
        middle = images[0, 0, top + 6, left + 6].item()
        assert middle == pytest.approx((46 + 255) / 2 / 255, abs=0.01)


def test_grey_and_palette_images_with_transparency_are_composited_too(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    la = np.zeros((SIDE, SIDE, 2), np.uint8)
    la[8:20, 8:20] = (30, 255)
    Image.fromarray(la, "LA").save(folder / "grey.png")
    palette = glyph().convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=4)
    black = next(i for i, rgb in enumerate(np.asarray(palette.getpalette()).reshape(-1, 3)) if not rgb.any())
    palette.save(folder / "palette.gif", transparency=black)
    grey = load_dataset(f"folder:{folder}", image_size=SIDE, channels=1).images
    assert torch.allclose(grey[:, 0, 0, 0], torch.ones(2))  # both images' transparent corners: white


def test_an_upload_is_read_as_the_model_was_trained(tmp_path):
    buffer = io.BytesIO()
    glyph().save(buffer, "PNG")
    data = buffer.getvalue()
    assert read_image(data, (3, SIDE, SIDE))[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]
    assert read_image(data, (3, SIDE, SIDE), "black")[0, :, 0, 0].tolist() == [0.0, 0.0, 0.0]
    assert read_image(data, (1, SIDE, SIDE), "grey")[0, 0, 0, 0].item() == pytest.approx(128 / 255, abs=1e-6)


def test_the_background_is_a_config_option_kept_in_the_checkpoint(tmp_path):
    from vae_core.cli import build_parser
    from vae_core.config import config_fields

    field = next(f for f in config_fields() if f.name == "background")
    assert field.default == "white" and set(field.option.choices) == {"white", "grey", "black", "none"}
    args = build_parser().parse_args(["train", "--background", "black"])
    assert args.background == "black"
    with pytest.raises(VAEError, match="background must be one of"):
        VAEConfig(background="pink")
    folder = icon_folder(tmp_path / "icons", n=6)
    path = tmp_path / "icons.pt"
    Trainer(tiny(f"folder:{folder}", background="grey"), out_path=path).fit()
    ckpt = load_checkpoint(path)
    assert ckpt.config.background == "grey"
    assert torch.allclose(load_for_config(ckpt.config).images[:, :, 0, 0], torch.tensor(128 / 255))
    # a checkpoint saved before the option: its runs dropped the alpha channel, and it opens as it was trained
    old = ckpt.config.to_dict()
    del old["background"]
    assert VAEConfig.from_dict(old).background == "none"


def test_a_folder_of_nearly_blank_images_says_so_in_one_line(tmp_path, capsys):
    from vae_core.cli import main

    folder = icon_folder(tmp_path / "icons", n=10)  # dark glyphs, drawn for a light background
    dark = load_dataset(f"folder:{folder}", image_size=SIDE, background="black")
    [warning] = dark.spec["warnings"]
    assert "10 of 10 images are nearly blank" in warning and "background" in warning and "\n" not in warning
    assert load_dataset(f"folder:{folder}", image_size=SIDE).spec["warnings"] == []  # on white: fine
    flat = icon_folder(tmp_path / "flat", n=10, colour=(250, 250, 250))  # white glyphs on white: near-constant
    assert "10 of 10 images are nearly blank" in load_dataset(f"folder:{flat}", image_size=SIDE).spec["warnings"][0]

    out = tmp_path / "dark.pt"
    assert main(["train", "--dataset", f"folder:{folder}", "--background", "black", "--image-size", str(SIDE),
                 "--latent-dim", "2", "--hidden-sizes", "16", "--epochs", "1", "--device", "cpu", "--quiet",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("images are nearly blank") == 1  # said once, before training
    assert any("nearly blank" in w for w in load_checkpoint(out).metrics["warnings"])  # and kept with the model


# --- 7: a folder model stores where its folder is


def test_a_folder_model_trained_by_the_cli_stores_its_folder_absolute(tmp_path, monkeypatch, capsys):
    from vae_core.cli import main

    project = tmp_path / "project"
    folder = icon_folder(project / "data" / "icons", n=6)
    monkeypatch.chdir(project)
    out = tmp_path / "models" / "icons.pt"
    assert main(["train", "--dataset", "folder:data/icons", "--image-size", str(SIDE), "--latent-dim", "2",
                 "--hidden-sizes", "16", "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    assert load_checkpoint(out).config.dataset == f"folder:{folder}"
    monkeypatch.chdir(tmp_path)  # anywhere else, its data is found
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    assert '"n_test": 1' in capsys.readouterr().out


def test_a_relative_folder_is_taken_in_the_project_only_where_that_is_allowed(tmp_path, monkeypatch):
    import vae_core.hosting as hosting

    project = tmp_path / "project"
    icon_folder(project / "data" / "icons", n=2)
    (project / "static").mkdir()  # a project folder outside the allowed roots
    icon_folder(project / "data" / "static", n=2)
    monkeypatch.setattr(hosting, "PROJECT_DIR", project)
    monkeypatch.setenv(hosting.ROOTS_ENV, str(project / "data"))  # as the default: the project's data/
    assert hosting.confine_config_data(tiny("folder:data/icons")).dataset == f"folder:{project}/data/icons"
    assert hosting.confine_config_data(tiny("folder:static")).dataset == f"folder:{project}/data/static"
    with pytest.raises(VAEError, match="data folders must be inside"):
        hosting.confine_config_data(tiny("folder:../project"))


def test_the_default_model_kind_says_why_it_differs_between_the_cli_and_the_train_page():
    from vae_core.cli import build_parser

    model = next(a for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions
                 if a.dest == "model")
    assert "default mlp" in model.help and "Train page starts from conv" in model.help


# --- 11: a folder's files held to the allowed data folders


@pytest.fixture
def linked_folder(tmp_path):
    """An allowed root holding a folder of 6 icons and 2 links to icons outside the root."""
    root, elsewhere = tmp_path / "allowed", tmp_path / "private"
    folder = icon_folder(root / "icons", n=6)
    icon_folder(elsewhere, n=2, colour=(200, 0, 0))
    for f in sorted(elsewhere.iterdir()):
        os.symlink(f, folder / f"link-{f.name}")
    return root, folder


def test_files_linking_outside_the_allowed_roots_are_skipped_and_counted(linked_folder):
    root, folder = linked_folder
    mine = load_dataset(f"folder:{folder}", image_size=SIDE)  # the command line: any path, any file
    assert len(mine.images) == 8 and mine.spec["warnings"] == []
    confined = load_dataset(f"folder:{folder}", image_size=SIDE, roots=[root])
    assert len(confined.images) == 6 and confined.spec["outside_roots"] == 2
    assert not any("link-" in p for p in confined.paths)
    assert confined.spec["warnings"] == ["2 files of the folder skipped: they link outside the allowed data folders"]
    only_links = root / "links"
    only_links.mkdir()
    os.symlink(folder.parent.parent / "private" / "icon00.png", only_links / "a.png")
    linked = r"\(1 file of the folder skipped: it links outside the allowed data folders\)"
    with pytest.raises(VAEError, match=r"no images .* " + linked):
        load_dataset(f"folder:{only_links}", image_size=SIDE, roots=[root])


def test_a_run_started_by_a_page_trains_only_on_files_inside_the_roots(linked_folder, monkeypatch, tmp_path):
    from vae_core.hosting import ROOTS_ENV, confine_config_data

    root, folder = linked_folder
    monkeypatch.setenv(ROOTS_ENV, str(root))
    config = confine_config_data(tiny(f"folder:{folder}"))  # what start_run trains
    assert config.extra["data_roots"] == [str(root.resolve())]
    path = tmp_path / "run.pt"
    trainer = Trainer(config, out_path=path)
    assert len(trainer.bundle.images) == 6
    trainer.fit()
    ckpt = load_checkpoint(path)
    assert len(load_for_config(ckpt.config).images) == 6  # as trained, wherever it is opened
    assert any("2 files of the folder skipped" in w for w in ckpt.metrics["warnings"])


def test_scoring_a_folder_skips_links_out_of_the_roots(linked_folder, tmp_path):
    from vae_core.anomaly import score_folder

    root, folder = linked_folder
    path = tmp_path / "m.pt"
    Trainer(tiny(f"folder:{folder}", background="black"), out_path=path).fit()
    ckpt = load_checkpoint(path)
    bundle, scores = score_folder(ckpt, folder, roots=[root])
    assert len(scores) == 6 and bundle.spec["outside_roots"] == 2
    assert torch.allclose(bundle.images[:, :, 0, 0], torch.tensor(0.0))  # the model's own background
